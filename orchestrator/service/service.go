// Package service assembles Ferry's orchestrator from a bundle and a
// policy: it plans, pre-deploys every eligible job to the local host and
// to the remote hosts the policy names (through the deployment registry,
// so a restart redeploys nothing unchanged), and builds the router and
// executor that run calls. `ferry serve` and embedders start it the same
// way.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/hosts/local"
	"github.com/ferryrun/ferry/orchestrator/plan"
	"github.com/ferryrun/ferry/orchestrator/policy"
	"github.com/ferryrun/ferry/orchestrator/queue"
	"github.com/ferryrun/ferry/orchestrator/registry"
	"github.com/ferryrun/ferry/orchestrator/route"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// Config configures a Service.
type Config struct {
	// Bundle holds the jobs; Policy the operator's deployment policy (nil:
	// the defaults, serverless off).
	Bundle *bundle.Bundle
	Policy *policy.Policy
	// DataDir keeps the registry (and the queue); required. A second
	// orchestrator on the same directory is refused.
	DataDir string
	// Runtime runs local calls; required, owned by the caller.
	Runtime *wasmrt.Runtime
	// HostToken is the bearer token sent to custom FaaS hosts.
	HostToken string
	// NoHedge turns hedged calls off (they are on for the jobs the plan
	// allows).
	NoHedge bool
	// NoBatch sends every remote call alone; by default small concurrent
	// calls to a host that takes batches share round trips
	// (route.BatchConfig).
	NoBatch bool
	// FreshInstances gives every local call a fresh instance; by default
	// pure reactors keep theirs, as on every remote host.
	FreshInstances bool
	// LocalCapacity is the number of local calls in flight that counts as
	// full load; 0: 4 × GOMAXPROCS.
	LocalCapacity int
	// MemoryLimitBytes is the resident size that counts as full memory
	// pressure; 0: 400 MiB (a t4g.nano's share).
	MemoryLimitBytes uint64
	// NewHost makes the host for a provider. Returning an error that
	// wraps ErrNoHost (or a nil NewHost) leaves the provider to the
	// defaults: custom providers get the HTTP client host, and other kinds
	// are skipped. cmd/ferry makes AWS Lambda hosts here, since they need
	// credentials and the bootstrap executable.
	NewHost func(p policy.Provider) (host.Host, error)
	// Logger and Progress (one line per deployment) may be nil.
	Logger   *slog.Logger
	Progress io.Writer
	// CallsPerSecond is the rate the plan's monthly figures assume.
	CallsPerSecond float64
	// Queue tunes the durable queue of submitted calls (its Logger is
	// this Logger); zero values are its defaults, except Workers: 0 is
	// DefaultQueueWorkers.
	Queue queue.Config
}

// DefaultQueueWorkers is how many submitted calls run at once by default:
// more than the CPUs, since a remote call mostly waits.
const DefaultQueueWorkers = 32

// ErrNoHost marks a provider whose kind has no host implementation yet.
var ErrNoHost = errors.New("no host for this provider kind yet")

// Service is a running orchestrator.
type Service struct {
	Plan     *plan.Plan
	Router   *route.Router
	Exec     *route.Executor
	Local    *local.Host
	Registry *registry.Registry
	Sampler  *Sampler
	// Queue holds submitted calls (POST /v1/jobs/{job}/submit); its
	// workers run them through Exec.
	Queue *queue.Queue
	// Skipped lists providers the plan names but that have no host here,
	// with why; their jobs run on the other targets.
	Skipped map[string]string

	cfg    Config
	db     *bolt.DB
	hosts  map[string]host.Host
	cancel context.CancelFunc
	log    *slog.Logger
}

// Start plans and deploys. Deploying to a remote host that fails is
// logged, and the job runs without that target; a job with no target left
// is an error.
func Start(ctx context.Context, cfg Config) (s *Service, err error) {
	if cfg.Bundle == nil || cfg.Runtime == nil || cfg.DataDir == "" {
		return nil, errors.New("service: a bundle, a runtime and a data directory are required")
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.Default()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	db, err := bolt.Open(filepath.Join(cfg.DataDir, "ferry.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("service: %s is in use by another ferry serve", cfg.DataDir)
		}
		return nil, fmt.Errorf("service: %w", err)
	}
	s = &Service{cfg: cfg, db: db, hosts: map[string]host.Host{}, Skipped: map[string]string{}, log: log}
	defer func() {
		if err != nil {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}()
	if s.Registry, err = registry.Open(db); err != nil {
		return nil, err
	}
	if s.Local, err = local.New(local.Config{Runtime: cfg.Runtime, ReusePure: !cfg.FreshInstances}); err != nil {
		return nil, err
	}

	m := cfg.Bundle.Manifest
	jobs, prefs := plan.FromManifest(m)
	s.Plan = plan.Make(plan.Input{Blueprint: m.Blueprint, Jobs: jobs, Policy: cfg.Policy, Prefs: prefs, CallsPerSecond: cfg.CallsPerSecond})

	providers := map[string]policy.Provider{}
	for _, p := range cfg.Policy.Providers() {
		providers[p.ID()] = p
	}
	var routes []*route.Job
	rerunSafe := map[string]bool{}
	for _, mj := range m.Jobs {
		// A call interrupted by a crash may run again when that cannot
		// take effect twice: a pure job, or a stateful one whose state
		// commit carries the call's idempotency key — unless it also
		// reaches the network, which the key does not cover.
		rerunSafe[mj.Name] = mj.IsPure || (mj.RequiresState && len(mj.NetworkCalls) == 0)
		jp, _ := s.Plan.Job(mj.Name)
		wasm, err := cfg.Bundle.Module(mj.Name)
		if err != nil {
			return nil, err
		}
		deterministic := mj.IsDeterministic && (mj.Profile == nil || mj.Profile.Deterministic)
		rj := &route.Job{Name: mj.Name, Pure: mj.IsPure, Deterministic: deterministic, Stateful: mj.RequiresState,
			Force: mj.Overrides.ForceServerless, PlanHedge: jp.Hedge}
		if jp.Local.Eligible || jp.Placement == plan.Local {
			d, err := s.Local.Deploy(ctx, HostJob(mj, wasm, jp.Local))
			if err != nil {
				return nil, fmt.Errorf("service: deploy %s locally: %w", mj.Name, err)
			}
			pr := route.Priors(jp, route.LocalID)
			rj.Local = route.NewTarget(route.LocalID, s.Local, d, true, pr.CostUSD, pr.WarmMs, pr.ColdMs)
			fmt.Fprintf(progress, "  deployed  %-16s local\n", mj.Name)
		}
		for _, id := range jp.Deploy {
			t := target(jp, id)
			if t == nil || !t.Eligible {
				continue
			}
			h, err := s.host(providers[id])
			if err != nil {
				if _, seen := s.Skipped[id]; !seen {
					s.Skipped[id] = err.Error()
					log.Warn("provider skipped", "provider", id, "err", err)
					fmt.Fprintf(progress, "  skipped   %-16s %s: %v\n", "", id, err)
				}
				continue
			}
			d, reused, err := s.deploy(ctx, id, h, HostJob(mj, wasm, *t))
			if err != nil {
				log.Error("deploy failed; the job runs without this target", "job", mj.Name, "provider", id, "err", err)
				fmt.Fprintf(progress, "  FAILED    %-16s %s: %v\n", mj.Name, id, err)
				continue
			}
			verb := "deployed"
			if reused {
				verb = "unchanged"
			}
			fmt.Fprintf(progress, "  %-9s %-16s %s\n", verb, mj.Name, id)
			pr := route.Priors(jp, id)
			rt := route.NewTarget(id, h, d, false, pr.CostUSD, pr.WarmMs, pr.ColdMs)
			if lim := policyLimits(providers[id]); lim > 0 && (rt.MaxInputBytes == 0 || lim < rt.MaxInputBytes) {
				rt.MaxInputBytes = lim
			}
			rj.Remote = append(rj.Remote, rt)
		}
		if rj.Local == nil && len(rj.Remote) == 0 {
			return nil, fmt.Errorf("service: job %s has nowhere to run: not locally (%s) and no remote target deployed",
				mj.Name, reasonText(jp.Local.Reasons))
		}
		routes = append(routes, rj)
	}

	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	// The sampler starts now and reads the executor and the queue, set
	// below, through atomic pointers.
	var exec *route.Executor
	var execP atomic.Pointer[route.Executor]
	var queueP atomic.Pointer[queue.Queue]
	s.Sampler = NewSampler(func() int64 {
		if e := execP.Load(); e != nil {
			return e.LocalInFlight()
		}
		return 0
	}, func() int {
		if q := queueP.Load(); q != nil {
			queued, _ := q.Depth()
			return queued
		}
		return 0
	}, cfg.LocalCapacity, cfg.MemoryLimitBytes)
	go s.Sampler.Run(sctx, 250*time.Millisecond)
	knobs := route.Knobs{
		Serverless: s.Plan.Serverless, FallbackToVM: s.Plan.FallbackToVM, Hedge: !cfg.NoHedge,
		CostThresholdUSD: s.Plan.CostThresholdUSD, LatencyThresholdMs: s.Plan.LatencyThresholdMs,
		Batch: route.BatchConfig{Enabled: !cfg.NoBatch},
	}
	if s.Router, err = route.NewRouter(knobs, s.Sampler, routes); err != nil {
		return nil, err
	}
	if exec, err = route.NewExecutor(route.ExecutorConfig{Router: s.Router, Logger: log}); err != nil {
		return nil, err
	}
	s.Exec = exec
	execP.Store(exec)

	qc := cfg.Queue
	qc.Logger = log
	if qc.Workers == 0 {
		qc.Workers = DefaultQueueWorkers
	}
	if s.Queue, err = queue.Open(db, qc); err != nil {
		return nil, err
	}
	queueP.Store(s.Queue)
	run := func(ctx context.Context, inv *queue.Invocation, input []byte) queue.Outcome {
		// The invocation id is the idempotency key: a re-run after a
		// crash finds a stateful call's committed effect and output.
		res, err := exec.Execute(ctx, inv.Job, input, route.WithInvocationID(inv.ID), route.WithIdempotencyKey(inv.ID))
		out := queue.Outcome{Err: err}
		var ce *route.CallError
		if errors.As(err, &ce) {
			out.DecisionID = ce.DecisionID
		}
		if err != nil {
			out.ErrorKind = ErrorKind(err)
			return out
		}
		out.Output, out.RanOn, out.DecisionID = res.Output, res.Target, res.DecisionID
		return out
	}
	if err := s.Queue.Start(sctx, run, func(job string) bool { return rerunSafe[job] }); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrorKind names what kind of failure err is, for callers and stored
// results: job (the guest failed), timeout, limit, not_found, no_target,
// or host (the infrastructure failed).
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, route.ErrUnknownJob), errors.Is(err, host.ErrNotFound):
		return "not_found"
	case errors.Is(err, host.ErrTimeout):
		return "timeout"
	case errors.Is(err, host.ErrLimit):
		return "limit"
	case errors.Is(err, host.ErrJob):
		return "job"
	case errors.Is(err, route.ErrNoTarget):
		return "no_target"
	}
	return "host"
}

// Execute runs one call of job wherever the router decides: the library
// API for embedding Ferry.
func (s *Service) Execute(ctx context.Context, job string, input []byte, opts ...route.Option) (*route.Result, error) {
	return s.Exec.Execute(ctx, job, input, opts...)
}

// Close stops sampling, removes nothing remote (deployments stay, recorded
// in the registry for the next start), closes the local host and the
// registry.
func (s *Service) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	var errs []error
	if s.Queue != nil {
		// Running calls get until ctx ends; what is still running stays
		// so in the queue and runs again (if safe) at the next start.
		errs = append(errs, s.Queue.Close(ctx))
	}
	if s.Local != nil {
		errs = append(errs, s.Local.Close(ctx))
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}

// host returns (and caches) the host for a provider.
func (s *Service) host(p policy.Provider) (host.Host, error) {
	id := p.ID()
	if h, ok := s.hosts[id]; ok {
		return h, nil
	}
	var h host.Host
	err := fmt.Errorf("%w: %s", ErrNoHost, p.Type)
	if s.cfg.NewHost != nil {
		h, err = s.cfg.NewHost(p)
	}
	if errors.Is(err, ErrNoHost) && p.Type == policy.Custom {
		h, err = httphost.NewClient(httphost.ClientConfig{BaseURL: p.Endpoint, Name: id, Token: s.cfg.HostToken})
	}
	if err != nil {
		return nil, err
	}
	s.hosts[id] = h
	return h, nil
}

// deploy deploys job to target through the registry: an unchanged job
// whose deployment the host still has is not deployed again.
func (s *Service) deploy(ctx context.Context, target string, h host.Host, job host.Job) (*host.Deployment, bool, error) {
	key := registry.Key(job, job.Digest)
	rec, ok, err := s.Registry.Get(target, job.Name)
	if err != nil {
		return nil, false, err
	}
	if ok && rec.Key == key {
		d := rec.Deployment
		alive := true
		if hc, ok := h.(host.HealthChecker); ok {
			_, herr := hc.Health(ctx, &d)
			alive = herr == nil
		}
		if alive {
			return &d, true, nil
		}
	}
	d, err := h.Deploy(ctx, job)
	if err != nil {
		return nil, false, err
	}
	if err := s.Registry.Put(&registry.Record{Target: target, Job: job.Name, Key: key, Deployment: *d, DeployedAt: time.Now().UTC()}); err != nil {
		return nil, false, err
	}
	return d, false, nil
}

// HostJob is what a host deploys for a bundle job on a plan target.
func HostJob(mj bundle.Job, wasm []byte, t plan.Target) host.Job {
	return host.Job{Name: mj.Name, Module: wasm, Digest: modstore.Digest(wasm), Pure: mj.IsPure, AllowHosts: mj.NetworkCalls,
		Limits: host.Limits{MemoryMB: t.MemoryMB, Timeout: time.Duration(t.TimeoutMs) * time.Millisecond}}
}

func target(jp *plan.JobPlan, id string) *plan.Target {
	for i := range jp.Targets {
		if jp.Targets[i].ID == id {
			return &jp.Targets[i]
		}
	}
	return nil
}

// policyLimits is the largest input a provider takes once encoded for the
// wire, when it publishes a payload limit.
func policyLimits(p policy.Provider) int {
	l := p.EffectiveLimits()
	if l.PayloadBytes <= 0 {
		return 0
	}
	exp := l.PayloadExpansion
	if exp < 1 {
		exp = 1
	}
	return int(float64(l.PayloadBytes) / exp)
}

func reasonText(rs []plan.Reason) string {
	var out []string
	for _, r := range rs {
		if r.Blocking {
			out = append(out, r.Message)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "not eligible"
	}
	return fmt.Sprint(out)
}
