// Package local is the in-process host: jobs run in this process's Ferry
// runtime (runtime/wasmrt), with the same ABI, limits and host functions as
// every remote host. It is the host the orchestrator always has.
package local

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/engine"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/telemetry"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// Config configures a local host.
type Config struct {
	// Runtime runs the modules; required. The host does not close it.
	Runtime *wasmrt.Runtime
	// Name is the host's name; default "local".
	Name string
	// PoolSize is each module's pool of ready instances (see
	// wasmrt.ModuleConfig); 0: GOMAXPROCS.
	PoolSize int
	// ReusePure lets pure reactor jobs keep their instance between
	// invocations, as Lambda keeps a warm environment (docs/abi.md: only
	// pure reactors may). A failed instance is never reused. Off: a fresh
	// instance per invocation.
	ReusePure bool
}

// Host runs jobs in process. It is safe for concurrent use.
type Host struct {
	rt    *wasmrt.Runtime
	name  string
	pool  int
	reuse bool

	mu     sync.RWMutex
	deps   map[string]*deployment // by job name
	closed bool
	retire sync.WaitGroup // old modules closing after a redeploy
}

type deployment struct {
	d   host.Deployment
	req host.Limits // as asked for, to tell a redeploy with new limits
	mod *wasmrt.Module

	invocations, errors, colds atomic.Int64
	busy                       atomic.Int64 // ns
	last                       atomic.Int64 // unix ns of the last invocation
}

var (
	_ host.Host          = (*Host)(nil)
	_ host.HealthChecker = (*Host)(nil)
	_ host.StatsReporter = (*Host)(nil)
	_ host.BatchInvoker  = (*Host)(nil)
	_ host.Warmer        = (*Host)(nil)
)

// New returns a local host.
func New(cfg Config) (*Host, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("local host: no runtime")
	}
	name := cfg.Name
	if name == "" {
		name = "local"
	}
	return &Host{rt: cfg.Runtime, name: name, pool: cfg.PoolSize, reuse: cfg.ReusePure, deps: map[string]*deployment{}}, nil
}

// Name implements host.Host.
func (h *Host) Name() string { return h.name }

// jobNameRE is what a job (or function) name may be: blueprint job names
// are [a-z0-9_-]{1,64}; hosts that name functions themselves (the HTTP
// host's function ids) use the wider set.
var jobNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Deploy loads (checks and compiles) the module. A redeploy with the same
// module is a no-op; with a changed one the new module takes calls at once
// and the old one is closed when its in-flight calls finish.
func (h *Host) Deploy(ctx context.Context, job host.Job) (*host.Deployment, error) {
	fail := func(kind error, format string, args ...any) (*host.Deployment, error) {
		return nil, host.Errorf(kind, "deploy", h.name, job.Name, format, args...)
	}
	if !jobNameRE.MatchString(job.Name) {
		return fail(host.ErrHost, "invalid job name %q: want a letter or digit, then up to 127 of [A-Za-z0-9._-]", job.Name)
	}
	digest := modstore.Digest(job.Module)
	if job.Digest != "" && job.Digest != digest {
		return fail(host.ErrHost, "module bytes hash to %s, not %s", digest, job.Digest)
	}
	h.mu.RLock()
	old, ok := h.deps[job.Name]
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return fail(host.ErrHost, "host closed")
	}
	if ok && old.d.Digest == digest && old.req == job.Limits {
		d := old.d
		return &d, nil
	}
	lim, err := wasmLimits(job.Limits)
	if err != nil {
		return fail(host.ErrHost, "%v", err)
	}
	reuse := false
	if h.reuse {
		info, err := abi.Describe(job.Module)
		if err != nil {
			return fail(host.ErrHost, "%w", err)
		}
		reuse = info.Pure() && info.Shape == abi.Reactor
	}
	mod, err := h.rt.Load(ctx, job.Module, wasmrt.ModuleConfig{
		Name: job.Name, StateNamespace: job.StateNamespace, Limits: lim, AllowHosts: job.AllowHosts, Reuse: reuse, PoolSize: h.pool,
	})
	if err != nil {
		return fail(host.ErrHost, "%w", err)
	}
	dep := &deployment{mod: mod, req: job.Limits, d: host.Deployment{
		ID: job.Name + "@" + digest, Job: job.Name, Digest: digest, Host: h.name,
		Limits: applied(mod.Limits()), Pure: mod.Info().Pure(),
	}}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = mod.Close(context.WithoutCancel(ctx))
		return fail(host.ErrHost, "host closed")
	}
	old = h.deps[job.Name]
	h.deps[job.Name] = dep
	h.mu.Unlock()
	if old != nil {
		h.retireModule(ctx, old.mod)
	}
	d := dep.d
	return &d, nil
}

// applied is what a deployment reports: the limits the runtime enforces,
// defaults filled in.
func applied(l wasmrt.Limits) host.Limits {
	return host.Limits{
		MemoryMB:       int(l.MaxMemoryBytes >> 20),
		Timeout:        l.Timeout,
		MaxInputBytes:  l.MaxInputBytes,
		MaxOutputBytes: l.MaxOutputBytes,
	}
}

func wasmLimits(l host.Limits) (wasmrt.Limits, error) {
	if l.MemoryMB < 0 || l.Timeout < 0 || l.MaxInputBytes < 0 || l.MaxOutputBytes < 0 {
		return wasmrt.Limits{}, fmt.Errorf("negative limit in %+v", l)
	}
	return wasmrt.Limits{
		MaxMemoryBytes: uint64(l.MemoryMB) << 20, Timeout: l.Timeout,
		MaxInputBytes: l.MaxInputBytes, MaxOutputBytes: l.MaxOutputBytes,
	}, nil
}

func (h *Host) retireModule(ctx context.Context, m *wasmrt.Module) {
	h.retire.Add(1)
	go func() {
		defer h.retire.Done()
		_ = m.Close(context.WithoutCancel(ctx))
	}()
}

func (h *Host) lookup(op string, d *host.Deployment) (*deployment, error) {
	if d == nil {
		return nil, host.Errorf(host.ErrNotFound, op, h.name, "", "nil deployment")
	}
	h.mu.RLock()
	dep, ok := h.deps[d.Job]
	h.mu.RUnlock()
	if !ok || dep.d.Digest != d.Digest {
		return nil, host.Errorf(host.ErrNotFound, op, h.name, d.Job, "%s is not deployed here", d.ID)
	}
	return dep, nil
}

// Invoke implements host.Host.
func (h *Host) Invoke(ctx context.Context, d *host.Deployment, req host.Request) (*host.Response, error) {
	dep, err := h.lookup("invoke", d)
	if err != nil {
		return nil, err
	}
	var opts []wasmrt.InvokeOption
	if req.InvocationID != "" {
		opts = append(opts, wasmrt.WithInvocationID(req.InvocationID))
	}
	if req.IdempotencyKey != "" {
		opts = append(opts, wasmrt.WithIdempotencyKey(req.IdempotencyKey))
	}
	start := time.Now()
	ctx, span := telemetry.Start(ctx, "ferry.run")
	res, err := dep.mod.Invoke(ctx, req.Input, opts...)
	if span.IsRecording() {
		span.SetAttributes(telemetry.String("ferry.job", d.Job), telemetry.String("ferry.host", h.name))
		if res != nil {
			span.SetAttributes(telemetry.Bool("ferry.cold", res.Instantiate > 0), telemetry.Int("ferry.attempts", res.Attempts),
				telemetry.Bool("ferry.replayed", res.Replayed), telemetry.Int("ferry.memory_bytes", int(res.PeakMemoryBytes)))
		}
		telemetry.End(span, err)
	}
	dep.invocations.Add(1)
	dep.last.Store(time.Now().UnixNano())
	dep.busy.Add(int64(time.Since(start)))
	if err != nil {
		dep.errors.Add(1)
		return nil, h.invokeErr(d.Job, err)
	}
	cold := res.Instantiate > 0
	if cold {
		dep.colds.Add(1)
	}
	out := &host.Response{
		Output: res.Output, Duration: res.Duration, Billed: res.Duration, MemoryUsedBytes: res.PeakMemoryBytes,
		Cold: cold, Host: h.name, InvocationID: res.InvocationID,
	}
	for _, l := range res.Logs {
		out.Logs = append(out.Logs, l.Msg)
	}
	return out, nil
}

// invokeErr translates the runtime's errors to the contract's kinds.
func (h *Host) invokeErr(job string, err error) error {
	kind := host.ErrHost
	switch {
	case errors.Is(err, wasmrt.ErrClosed):
		kind = host.ErrNotFound
	case errors.Is(err, wasmrt.ErrTimeout):
		kind = host.ErrTimeout
	case errors.Is(err, wasmrt.ErrMemoryLimit), errors.Is(err, wasmrt.ErrInputLimit), errors.Is(err, wasmrt.ErrOutputLimit):
		kind = host.ErrLimit
	case errors.Is(err, wasmrt.ErrTrap), errors.Is(err, wasmrt.ErrExit), errors.Is(err, wasmrt.ErrGuestError), errors.Is(err, wasmrt.ErrABIViolation):
		kind = host.ErrJob
	case errors.Is(err, wasmrt.ErrCanceled), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller gave up: neither the job's fault nor the host's, but
		// retrying would be the caller's call; report it as a host error
		// carrying the context's error.
		kind = host.ErrHost
	}
	return &host.Error{Kind: kind, Op: "invoke", Host: h.name, Job: job, Err: err}
}

// InvokeBatch implements host.BatchInvoker: the requests run concurrently.
func (h *Host) InvokeBatch(ctx context.Context, d *host.Deployment, reqs []host.Request) []host.Result {
	out := make([]host.Result, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Response, out[i].Err = h.Invoke(ctx, d, r)
		}()
	}
	wg.Wait()
	return out
}

// Remove implements host.Host; it waits for in-flight calls to finish.
func (h *Host) Remove(ctx context.Context, d *host.Deployment) error {
	if d == nil {
		return host.Errorf(host.ErrNotFound, "remove", h.name, "", "nil deployment")
	}
	h.mu.Lock()
	dep, ok := h.deps[d.Job]
	if ok && dep.d.Digest == d.Digest {
		delete(h.deps, d.Job)
	}
	h.mu.Unlock()
	if !ok || dep.d.Digest != d.Digest {
		return host.Errorf(host.ErrNotFound, "remove", h.name, d.Job, "%s is not deployed here", d.ID)
	}
	if err := dep.mod.Close(ctx); err != nil {
		return host.Errorf(host.ErrHost, "remove", h.name, d.Job, "close module: %w", err)
	}
	return nil
}

// Warm implements host.Warmer: it fills the deployment's pool of ready
// instances up to n (at most the pool size).
func (h *Host) Warm(ctx context.Context, d *host.Deployment, n int) (int, error) {
	dep, err := h.lookup("warm", d)
	if err != nil {
		return 0, err
	}
	ready, err := dep.mod.Warm(ctx, n)
	if err != nil {
		return ready, host.Errorf(host.ErrHost, "warm", h.name, d.Job, "%w", err)
	}
	return ready, nil
}

// Health implements host.HealthChecker.
func (h *Host) Health(ctx context.Context, d *host.Deployment) (host.Health, error) {
	dep, err := h.lookup("health", d)
	if err != nil {
		return host.Health{}, err
	}
	hl := host.Health{Healthy: true, TotalInvocations: dep.invocations.Load()}
	if ns := dep.last.Load(); ns > 0 {
		hl.LastInvocation = time.Unix(0, ns).UTC()
	}
	return hl, nil
}

// Stats implements host.StatsReporter.
func (h *Host) Stats(ctx context.Context, d *host.Deployment) (host.Stats, error) {
	dep, err := h.lookup("stats", d)
	if err != nil {
		return host.Stats{}, err
	}
	return host.Stats{Invocations: dep.invocations.Load(), Errors: dep.errors.Load(),
		ColdStarts: dep.colds.Load(), Busy: time.Duration(dep.busy.Load())}, nil
}

// Close removes every deployment and waits for in-flight calls. The
// runtime stays open (it belongs to the caller).
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	deps := h.deps
	h.deps = map[string]*deployment{}
	h.mu.Unlock()
	var errs []error
	for _, dep := range deps {
		errs = append(errs, dep.mod.Close(ctx))
	}
	h.retire.Wait()
	return errors.Join(errs...)
}

// IsModuleError reports whether a Deploy error came from the module itself
// (not wasm, wrong ABI, does not compile) rather than from the host.
func IsModuleError(err error) bool {
	for _, s := range []error{abi.ErrNotWasm, abi.ErrMalformed, abi.ErrABIVersion, abi.ErrMissingExport,
		abi.ErrBadSignature, abi.ErrUnsupportedImport, engine.ErrCompile} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
