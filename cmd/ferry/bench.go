package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/benchmarks/harness"
	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/hosts/lambda"
	"github.com/ferryrun/ferry/hosts/workers/workerd"
)

type benchFlags struct {
	targets, jobs, inputs, inputFiles []string
	concurrency                       []int
	warm, samples, instances          int
	duration                          time.Duration
	raw, bootstrap, workerd           string
	jsonOut, quick                    bool
}

// maxBenchInput bounds an input given to ferry bench.
const maxBenchInput = 64 << 20

func newBenchCmd(e *env) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench BUNDLE",
		Short: "Measure a bundle's jobs on every engine and host",
		Long: `Measure every job of a bundle on every engine this build has (wazero's
compiler and interpreter; wasmtime when built with -tags wasmtime) and on
the hosts it can start on this machine: the HTTP host ("ferry host serve",
this executable), AWS Lambda (a local Lambda running the ferry-lambda
bootstrap, when "make lambda" built it or --lambda-bootstrap names it) and
Cloudflare Workers (a local workerd, when installed). Nothing leaves this
machine.

For each job and target it reports compile time cold and from the cache
(engines) or the time to deploy (hosts), instantiation, the cold call, warm
p50 and p99, throughput and latency at each --concurrency, and memory per
instance. Every target must give the same answer for the same input; one
that does not is reported as failed.

Each job gets its --input (default: empty). The table goes to stdout,
progress to stderr; --json prints the full report instead and --raw writes
benchstat-readable lines ("benchstat old.txt new.txt" compares two runs).`,
		Example: `  ferry bench app.bundle
  ferry bench --input square=12345 --input-file checksum=data.bin app.bundle
  ferry bench --target wazero --target wasmtime --quick --json app.bundle > bench.json
  ferry bench --raw new.txt app.bundle && benchstat old.txt new.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runBench(cmd.Context(), e, f, args[0]) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.targets, "target", nil, "measure only on `TARGET` (repeatable): "+strings.Join(harness.KnownTargets(), ", "))
	fl.StringSliceVar(&f.jobs, "job", nil, "measure only these jobs (repeatable)")
	fl.StringArrayVar(&f.inputs, "input", nil, "`JOB=TEXT`: the input every call of JOB sends (repeatable)")
	fl.StringArrayVar(&f.inputFiles, "input-file", nil, "`JOB=FILE`: read JOB's input from FILE (repeatable)")
	fl.IntSliceVar(&f.concurrency, "concurrency", []int{1, 8, 32}, "callers for the throughput runs")
	fl.IntVar(&f.warm, "warm", 1000, "warm calls one after another for p50 and p99")
	fl.DurationVar(&f.duration, "duration", time.Second, "how long each throughput run lasts")
	fl.IntVar(&f.samples, "samples", 3, "cold compiles, cached compiles and cold deploys to take the median of")
	fl.IntVar(&f.instances, "instances", 8, "live instances to measure memory per instance over")
	fl.BoolVar(&f.quick, "quick", false, "a fast, rough run: 200 warm calls, 0.3 s per level, 1 sample")
	fl.StringVar(&f.raw, "raw", "", "also write benchstat-readable results to `FILE`")
	fl.StringVar(&f.bootstrap, "lambda-bootstrap", "", "ferry-lambda `BINARY` for the lambda target (default: $"+envLambdaBootstrap+", beside ferry, ./bin)")
	fl.StringVar(&f.workerd, "workerd", "", "workerd `BINARY` for the workerd target (default: $FERRY_WORKERD, .cache/npm, PATH)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON instead of a table")
	return cmd
}

func runBench(ctx context.Context, e *env, f *benchFlags, path string) error {
	o, err := f.options()
	if err != nil {
		return withCode(exitUsage, err)
	}
	b, err := bundle.Open(path)
	if err != nil {
		code := exitHost
		if errors.Is(err, bundle.ErrInvalid) || errors.Is(err, bundle.ErrSchema) || errors.Is(err, bundle.ErrModule) {
			code = exitModule
		}
		return withCode(code, err)
	}
	inputs, err := f.readInputs(b)
	if err != nil {
		return withCode(exitUsage, err)
	}
	for _, j := range f.jobs {
		if _, ok := b.Manifest.Job(j); !ok {
			return withCode(exitUsage, fmt.Errorf("--job %s: the bundle has no such job", j))
		}
	}
	var jobs []harness.Job
	for _, mj := range b.Manifest.Jobs {
		if len(f.jobs) > 0 && !slices.Contains(f.jobs, mj.Name) {
			continue
		}
		wasm, err := b.Module(mj.Name)
		if err != nil {
			return withCode(exitModule, err)
		}
		j := harness.Job{Name: mj.Name, Module: wasm, Input: inputs[mj.Name]}
		if v := mj.Overrides.MemoryMB; v != nil {
			j.Limits.MemoryMB = *v
		}
		if v := mj.Overrides.TimeoutSecs; v != nil {
			j.Limits.Timeout = time.Duration(*v) * time.Second
		}
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return withCode(exitUsage, errors.New("no jobs to measure"))
	}

	// The hosts this machine can run: this executable serves the HTTP
	// host; the others need their binaries.
	explicit := len(f.targets) > 0
	wants := func(t string) bool { return !explicit || slices.Contains(f.targets, t) }
	if wants(harness.TargetHTTP) {
		if exe, err := os.Executable(); err == nil {
			o.FerryBinary = exe
		}
	}
	if wants(harness.TargetLambda) {
		arch := lambda.ArchX86
		if runtime.GOARCH == "arm64" {
			arch = lambda.ArchARM64
		}
		boot, _, err := findBootstrap(f.bootstrap, arch)
		switch {
		case err == nil:
			o.LambdaBootstrap = boot
		case explicit || f.bootstrap != "":
			return withCode(exitUsage, err)
		}
	}
	if wants(harness.TargetWorkerd) {
		bin := f.workerd
		if bin == "" {
			bin, err = workerd.Find()
		}
		switch {
		case err == nil:
			o.WorkerdBinary = bin
		case explicit:
			return withCode(exitUsage, err)
		}
	}
	o.Targets = f.targets
	if !explicit {
		o.Targets = slices.DeleteFunc(harness.DefaultTargets(o), func(t string) bool { return t == harness.TargetNative })
	}
	o.Progress = func(line string) { fmt.Fprintln(e.stderr, "bench:", line) }

	results, err := harness.Run(ctx, jobs, o)
	if err != nil {
		return withCode(exitUsage, err)
	}
	rep := harness.NewReport(results, o, o.WorkerdBinary)
	if f.raw != "" {
		if err := writeFileWith(f.raw, func(w io.Writer) error { return harness.WriteBenchstat(w, rep) }); err != nil {
			return withCode(exitHost, fmt.Errorf("--raw: %w", err))
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return withCode(exitHost, err)
		}
	} else if err := writeBenchTable(e.stdout, rep); err != nil {
		return withCode(exitHost, err)
	}
	for _, r := range results {
		if r.Error != "" {
			return withCode(exitJobError, fmt.Errorf("%s on %s: %s", r.Job, r.Target, r.Error))
		}
	}
	return nil
}

func (f *benchFlags) options() (harness.Options, error) {
	o := harness.Options{Warm: f.warm, Duration: f.duration, Concurrency: f.concurrency, Samples: f.samples, Instances: f.instances}
	if f.quick {
		o.Warm, o.Duration, o.Samples = 200, 300*time.Millisecond, 1
	}
	switch {
	case o.Warm < 1 || o.Warm > 1_000_000:
		return o, fmt.Errorf("--warm %d: want 1 to 1,000,000", o.Warm)
	case o.Duration < 10*time.Millisecond || o.Duration > 10*time.Minute:
		return o, fmt.Errorf("--duration %s: want 10ms to 10m", o.Duration)
	case o.Samples < 1 || o.Samples > 100:
		return o, fmt.Errorf("--samples %d: want 1 to 100", o.Samples)
	case o.Instances < 1 || o.Instances > 1024:
		return o, fmt.Errorf("--instances %d: want 1 to 1024", o.Instances)
	case len(o.Concurrency) == 0:
		return o, errors.New("--concurrency: give at least one level")
	}
	for _, c := range o.Concurrency {
		if c < 1 || c > 1024 {
			return o, fmt.Errorf("--concurrency %d: want 1 to 1024", c)
		}
	}
	for _, t := range f.targets {
		if !slices.Contains(harness.KnownTargets(), t) {
			return o, fmt.Errorf("--target %s: this build knows %s", t, strings.Join(harness.KnownTargets(), ", "))
		}
		if t == harness.TargetNative {
			return o, errors.New("--target native: a bundle's jobs have no native Go version; make bench compares the examples with theirs")
		}
	}
	return o, nil
}

// readInputs parses --input and --input-file against the bundle's jobs.
func (f *benchFlags) readInputs(b *bundle.Bundle) (map[string][]byte, error) {
	in := map[string][]byte{}
	set := func(flag, spec string, read func(string) ([]byte, error)) error {
		job, v, ok := strings.Cut(spec, "=")
		if !ok || job == "" {
			return fmt.Errorf("%s %q: want JOB=VALUE", flag, spec)
		}
		if _, ok := b.Manifest.Job(job); !ok {
			return fmt.Errorf("%s %s: the bundle has no such job", flag, job)
		}
		if _, dup := in[job]; dup {
			return fmt.Errorf("%s %s: the job's input is given twice", flag, job)
		}
		data, err := read(v)
		if err != nil {
			return fmt.Errorf("%s %s: %w", flag, job, err)
		}
		in[job] = data
		return nil
	}
	for _, s := range f.inputs {
		if err := set("--input", s, func(v string) ([]byte, error) { return []byte(v), nil }); err != nil {
			return nil, err
		}
	}
	for _, s := range f.inputFiles {
		if err := set("--input-file", s, readBounded); err != nil {
			return nil, err
		}
	}
	return in, nil
}

func readBounded(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxBenchInput+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBenchInput {
		return nil, fmt.Errorf("%s is over %d MiB", path, maxBenchInput>>20)
	}
	return data, nil
}

func writeFileWith(path string, write func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// writeBenchTable prints one row per job and target.
func writeBenchTable(w io.Writer, rep harness.Report) error {
	m := rep.Machine
	fmt.Fprintf(w, "%s, %d cores, %s, %s\n\n", m.CPU, m.Cores, m.Kernel, m.Versions["go"])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	levels := rep.Options.Concurrency
	head := "JOB\tTARGET\tCOMPILE/DEPLOY\tCACHED\tINSTANTIATE\tCOLD\tWARM P50\tWARM P99"
	for _, c := range levels {
		head += fmt.Sprintf("\tCALLS/S @%d", c)
	}
	fmt.Fprintln(tw, head+"\tMEM/INSTANCE\tLINEAR MEM")
	for _, r := range rep.Results {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\tfailed: %s\n", r.Job, r.Target, firstLine(r.Error))
			continue
		}
		row := []string{r.Job, r.Target, msOr(r.CompileColdMs + r.DeployMs), msOr(r.CompileCachedMs),
			usOr(r.InstantiateUs), msOr(r.ColdMs), usOr(r.WarmP50Us), usOr(r.WarmP99Us)}
		for _, c := range levels {
			cell := "-"
			if l, ok := r.LoadAt(c); ok {
				cell = fmt.Sprintf("%.0f", l.CallsPerSec)
			} else if r.LoadError(c) != "" {
				cell = "failed"
			}
			row = append(row, cell)
		}
		fmt.Fprintln(tw, strings.Join(append(row, kbOr(r.MemoryPerInstanceKB), kbOr(r.LinearMemoryKB)), "\t"))
	}
	return tw.Flush()
}

func msOr(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3g ms", v)
}

func usOr(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 1000:
		return fmt.Sprintf("%.3g ms", v/1000)
	}
	return fmt.Sprintf("%.3g µs", v)
}

func kbOr(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f KB", v)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
