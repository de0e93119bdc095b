// Package harness measures jobs side by side on every engine and host
// Ferry runs them on — plain Go (the physical reference), wazero's
// compiler and interpreter, wasmtime (with the wasmtime build tag), the
// HTTP host (`ferry host serve`), AWS Lambda (the local Lambda running the
// real bootstrap) and Cloudflare Workers (a local workerd running Ferry's
// Worker) — and reports, for each job on each target:
//
//   - compile time, cold and from the disk cache (engines), or the time to
//     deploy (hosts);
//   - instantiate time (engines: a fresh instance plus the guest's
//     _initialize, what the warm pool hides);
//   - the cold call (engines: a call on a fresh instance; hosts: the first
//     call after deploying, a new process, environment or isolate);
//   - warm call latency, p50 and p99, calls one after another;
//   - throughput and latency at concurrency 1, 8 and 32 (closed loop);
//   - memory per instance (engines: resident memory per live instance;
//     ferry host serve: its process's growth per instance warmed;
//     Lambda: the environment's Max Memory Used; workerd: its process's
//     growth across the first call, which makes the isolate's instance).
//
// `make bench` runs it on the example jobs (benchmarks/cmd/bench) and
// `ferry bench BUNDLE` on a user's bundle. Every target answers the same
// input, and the harness checks each answer against the first target's,
// so a target that computes something else fails instead of looking fast.
package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/engine"
	"github.com/ferryrun/ferry/runtime/modstore"
)

// Target names. Engines are named as engine.Names gives them.
const (
	TargetNative  = "native"
	TargetHTTP    = "http"
	TargetLambda  = "lambda"
	TargetWorkerd = "workerd"
)

// Kinds of target.
const (
	KindNative = "native"
	KindEngine = "engine"
	KindHost   = "host"
)

// Job is one job to measure.
type Job struct {
	Name   string
	Module []byte
	// Input is what every call sends.
	Input []byte
	// Native is the same job as a plain Go function, the reference for
	// wasm/native ratios; nil when there is none.
	Native func([]byte) ([]byte, error)
	// Limits apply on every target; zero values take the defaults.
	Limits host.Limits
}

// Options tune a run. Zero values take the defaults.
type Options struct {
	// Targets to measure, in order; default: native, every engine this
	// build has, and the hosts whose prerequisites are given.
	Targets []string
	// Warm is how many calls, one after another, give warm p50 and p99;
	// default 1,000.
	Warm int
	// Duration is how long each concurrency level runs; default 1 s.
	Duration time.Duration
	// Concurrency lists the levels for throughput; default 1, 8, 32.
	Concurrency []int
	// Samples is how many cold compiles, cached compiles and host cold
	// starts are taken (the median is reported); default 3.
	Samples int
	// Instances is how many live instances memory per instance is
	// measured over; default 8.
	Instances int
	// WorkDir holds compilation caches and host data; default a new
	// temporary directory, removed at the end.
	WorkDir string

	// FerryBinary is a ferry executable, for the http target (`ferry
	// host serve`).
	FerryBinary string
	// LambdaBootstrap is the ferry-lambda bootstrap (linux, this
	// machine's architecture), for the lambda target.
	LambdaBootstrap []byte
	// WorkerdBinary is workerd, for the workerd target.
	WorkerdBinary string

	// Progress receives one line per step; nil: silent.
	Progress func(string)
}

func (o *Options) withDefaults() {
	if o.Warm <= 0 {
		o.Warm = 1000
	}
	if o.Duration <= 0 {
		o.Duration = time.Second
	}
	if len(o.Concurrency) == 0 {
		o.Concurrency = []int{1, 8, 32}
	}
	if o.Samples <= 0 {
		o.Samples = 3
	}
	if o.Instances <= 0 {
		o.Instances = 8
	}
	if len(o.Targets) == 0 {
		o.Targets = DefaultTargets(*o)
	}
}

// DefaultTargets is native, every engine of this build, and each host
// whose prerequisite o gives.
func DefaultTargets(o Options) []string {
	t := append([]string{TargetNative}, engine.Names()...)
	if o.FerryBinary != "" {
		t = append(t, TargetHTTP)
	}
	if o.LambdaBootstrap != nil {
		t = append(t, TargetLambda)
	}
	if o.WorkerdBinary != "" {
		t = append(t, TargetWorkerd)
	}
	return t
}

// KnownTargets lists every target name this build understands.
func KnownTargets() []string {
	return append(append([]string{TargetNative}, engine.Names()...), TargetHTTP, TargetLambda, TargetWorkerd)
}

// Result is one job measured on one target. Zero means not measured
// (not applicable to the target's kind).
type Result struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
	Job    string `json:"job"`
	// Error is why the job could not be measured here; the other fields
	// are then zero.
	Error string `json:"error,omitempty"`

	CompileColdMs   float64 `json:"compile_cold_ms,omitempty"`
	CompileCachedMs float64 `json:"compile_cached_ms,omitempty"`
	DeployMs        float64 `json:"deploy_ms,omitempty"`
	InstantiateUs   float64 `json:"instantiate_us,omitempty"`
	ColdMs          float64 `json:"cold_ms,omitempty"`
	WarmP50Us       float64 `json:"warm_p50_us,omitempty"`
	WarmP99Us       float64 `json:"warm_p99_us,omitempty"`
	// Load is one closed-loop run per concurrency level.
	Load []Load `json:"load,omitempty"`
	// Fresh is the pool check (engines): a fresh instance for every call
	// at concurrency 8, with the warm pool and without it.
	Fresh *Fresh `json:"fresh,omitempty"`
	// MemoryPerInstanceKB is resident memory per live instance: see the
	// package comment for how each kind of target measures it.
	MemoryPerInstanceKB float64 `json:"memory_per_instance_kb,omitempty"`
	// LinearMemoryKB is the guest's linear memory after a call.
	LinearMemoryKB float64 `json:"linear_memory_kb,omitempty"`
}

// Load is a closed-loop run at one concurrency.
type Load struct {
	Concurrency int     `json:"concurrency"`
	CallsPerSec float64 `json:"calls_per_sec"`
	P50Us       float64 `json:"p50_us"`
	P99Us       float64 `json:"p99_us"`
	// Error is why a call at this level failed; the numbers are then
	// zero, and no higher level was run.
	Error string `json:"error,omitempty"`
}

// Fresh compares fresh-instance calls at concurrency 8 with and without
// the warm pool, against reused instances.
type Fresh struct {
	PoolP50Us    float64 `json:"pool_p50_us"`
	PoolPerSec   float64 `json:"pool_calls_per_sec"`
	NoPoolP50Us  float64 `json:"no_pool_p50_us"`
	NoPoolPerSec float64 `json:"no_pool_calls_per_sec"`
	// Paced is fresh instances with the pool, 8 callers in an open loop
	// at a quarter and at half the no-pool throughput: what the pool hides
	// when there is CPU to spare for refilling it, and when there is less.
	Paced []Paced `json:"paced"`
}

// Paced is an open-loop run of fresh-instance calls with the warm pool.
type Paced struct {
	// Load is the share of the no-pool throughput offered.
	Load float64 `json:"load"`
	// Rate is the calls per second offered.
	Rate float64 `json:"rate"`
	// P50Us and P99Us count from when each call was due.
	P50Us float64 `json:"p50_us"`
	P99Us float64 `json:"p99_us"`
	// PoolHits is the share of calls that found an instance ready.
	PoolHits float64 `json:"pool_hits"`
}

// LoadAt returns the run at concurrency c, if it was run and succeeded.
func (r Result) LoadAt(c int) (Load, bool) {
	for _, l := range r.Load {
		if l.Concurrency == c {
			return l, l.Error == ""
		}
	}
	return Load{}, false
}

// LoadError is why the run at concurrency c failed; "" if it did not.
func (r Result) LoadError(c int) string {
	for _, l := range r.Load {
		if l.Concurrency == c {
			return l.Error
		}
	}
	return ""
}

// target measures jobs.
type target interface {
	kind() string
	// measure measures j and returns the answer of its calls, which Run
	// checks against the reference.
	measure(ctx context.Context, j *Job) (Result, []byte, error)
	close() error
}

// ErrMismatch is a target whose answer differs from the reference's.
var ErrMismatch = errors.New("output differs from the reference")

// Run measures every job on every target. A target that cannot start
// (a missing binary) or a job that fails on it is reported in its
// Result's Error, and the run goes on; the error returned is for bad
// options only.
func Run(ctx context.Context, jobs []Job, o Options) ([]Result, error) {
	o.withDefaults()
	for _, t := range o.Targets {
		if !slices.Contains(KnownTargets(), t) {
			return nil, fmt.Errorf("unknown target %q (this build knows %s)", t, strings.Join(KnownTargets(), ", "))
		}
	}
	if len(jobs) == 0 {
		return nil, errors.New("no jobs to measure")
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "ferry-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	// The reference answer for each job: the first target's (native
	// comes first by default).
	want := make([][]byte, len(jobs))
	var out []Result
	for _, name := range o.Targets {
		progress("%s: starting", name)
		t, err := newTarget(ctx, name, &o, jobs)
		if err != nil {
			progress("%s: unavailable: %v", name, err)
			for _, j := range jobs {
				out = append(out, Result{Target: name, Job: j.Name, Error: err.Error()})
			}
			continue
		}
		for i := range jobs {
			j := &jobs[i]
			if name == TargetNative && j.Native == nil {
				continue
			}
			progress("%s: %s", name, j.Name)
			r, got, err := t.measure(ctx, j)
			r.Target, r.Kind, r.Job = name, t.kind(), j.Name
			if err == nil {
				err = reference(&want[i], got)
			}
			if err != nil {
				r = Result{Target: name, Kind: t.kind(), Job: j.Name, Error: err.Error()}
				progress("%s: %s: %v", name, j.Name, err)
			}
			out = append(out, r)
		}
		if err := t.close(); err != nil {
			progress("%s: stop: %v", name, err)
		}
	}
	return out, nil
}

// reference computes the answer every target must give, once per job.
func reference(want *[]byte, got []byte) error {
	if *want == nil {
		*want = got
		return nil
	}
	if string(got) != string(*want) {
		return fmt.Errorf("%w: got %q, want %q", ErrMismatch, clip(got), clip(*want))
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

func newTarget(ctx context.Context, name string, o *Options, jobs []Job) (target, error) {
	switch name {
	case TargetNative:
		return &nativeTarget{o: o}, nil
	case TargetHTTP:
		return newHTTPTarget(ctx, o)
	case TargetLambda:
		return newLambdaTarget(ctx, o)
	case TargetWorkerd:
		return newWorkerdTarget(o)
	}
	return newEngineTarget(ctx, name, o)
}

// hostJob is j as the hosts deploy it.
func hostJob(j *Job) (host.Job, error) {
	info, err := abi.Describe(j.Module)
	if err != nil {
		return host.Job{}, fmt.Errorf("job %s: %w", j.Name, err)
	}
	return host.Job{Name: j.Name, Module: j.Module, Digest: modstore.Digest(j.Module), Limits: j.Limits,
		Pure: info.Pure() && info.Shape == abi.Reactor}, nil
}
