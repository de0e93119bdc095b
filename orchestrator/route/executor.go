package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/runtime/telemetry"
)

// CallError is a failed call's error with the decision that routed it;
// errors.Is and errors.As see through it to the host's typed error.
type CallError struct {
	DecisionID string
	Err        error
}

func (e *CallError) Error() string { return e.Err.Error() }
func (e *CallError) Unwrap() error { return e.Err }

// Result is a call's answer and where it came from.
type Result struct {
	Output []byte
	// Target is where the answer came from; Host and Region as the host
	// reported them.
	Target, Host, Region string
	// Latency is the call's time as the caller saw it (routing, failover
	// and hedging included); Duration the job's own time on the target.
	Latency, Duration time.Duration
	Cold              bool
	CostUSD           float64
	DecisionID        string
	InvocationID      string
	Attempts          int
}

// Observer is told about every finished call (for metrics). It must be
// cheap and safe for concurrent use.
type Observer interface {
	Call(d *Decision, res *Result, err error)
}

// Executor runs calls where the router says. It is the library API for
// embedding: Execute runs a job locally or remotely, and the caller need
// not know which.
type Executor struct {
	router    *Router
	log       *slog.Logger
	decisions *DecisionLog
	obs       atomic.Pointer[Observer]
	inflight  atomic.Int64 // local calls running
}

// ExecutorConfig configures an Executor.
type ExecutorConfig struct {
	Router *Router
	// Logger gets one debug line per call and warnings for failovers.
	Logger *slog.Logger
	// Decisions keeps recent decisions for /v1/decisions; nil: a log of
	// DefaultDecisionLogSize.
	Decisions *DecisionLog
	Observer  Observer
}

// NewExecutor returns an executor.
func NewExecutor(cfg ExecutorConfig) (*Executor, error) {
	if cfg.Router == nil {
		return nil, errors.New("executor: no router")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Decisions == nil {
		cfg.Decisions = NewDecisionLog(DefaultDecisionLogSize)
	}
	e := &Executor{router: cfg.Router, log: cfg.Logger, decisions: cfg.Decisions}
	if cfg.Observer != nil {
		e.SetObserver(cfg.Observer)
	}
	return e, nil
}

// SetObserver replaces the observer told about every call.
func (e *Executor) SetObserver(o Observer) { e.obs.Store(&o) }

// Router returns the executor's router.
func (e *Executor) Router() *Router { return e.router }

// Decisions returns the decision log.
func (e *Executor) Decisions() *DecisionLog { return e.decisions }

// LocalInFlight is the number of calls running on the local host now.
func (e *Executor) LocalInFlight() int64 { return e.inflight.Load() }

// Option tunes one call.
type Option func(*callOptions)

type callOptions struct{ invocationID, idempotencyKey string }

// WithInvocationID sets the call's invocation id (for logs across hosts).
func WithInvocationID(id string) Option { return func(o *callOptions) { o.invocationID = id } }

// WithIdempotencyKey makes a stateful call take effect once per key, on
// hosts that run Ferry's runtime (host.Request.IdempotencyKey).
func WithIdempotencyKey(key string) Option { return func(o *callOptions) { o.idempotencyKey = key } }

// Execute runs one call of job. Job failures (host.IsJobFault) come back
// as they are, never retried; host failures move down the decision's
// failover chain while it is safe (host.Retryable), ending on the local
// host when fallback_to_vm allows.
func (e *Executor) Execute(ctx context.Context, job string, input []byte, opts ...Option) (res *Result, err error) {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	start := time.Now()
	d, err := e.router.Decide(job, len(input))
	if err != nil {
		if d != nil {
			d.Error = err.Error()
			e.decisions.Add(d)
		}
		return nil, err
	}
	if o.invocationID == "" {
		o.invocationID = d.ID
	}
	// Attributes only when the span is recorded: with tracing off a call
	// pays for a no-op span and nothing else.
	ctx, span := telemetry.Start(ctx, "ferry.call")
	if span.IsRecording() {
		span.SetAttributes(telemetry.String("ferry.job", job), telemetry.String("ferry.decision_id", d.ID),
			telemetry.String("ferry.invocation_id", o.invocationID), telemetry.String("ferry.strategy", string(d.Strategy)))
		defer func() {
			span.SetAttributes(telemetry.String("ferry.ran_on", d.RanOn), telemetry.Int("ferry.attempts", len(d.Attempts)))
			telemetry.End(span, err)
		}()
	}
	j, _ := e.router.Job(job)
	var mu sync.Mutex // guards d.Attempts across a hedge's two goroutines
	if d.Strategy == Hedged {
		res, err = e.hedged(ctx, j, d, input, &o, &mu)
	} else {
		res, err = e.direct(ctx, j, d, d.Chain, input, &o, &mu)
	}
	lat := time.Since(start)
	d.LatencyMs = float64(lat) / float64(time.Millisecond)
	if err != nil {
		d.Error = err.Error()
		err = &CallError{DecisionID: d.ID, Err: err}
	} else {
		res.Latency, res.DecisionID, res.InvocationID = lat, d.ID, o.invocationID
		d.RanOn, d.CostUSD = res.Target, res.CostUSD
	}
	e.decisions.Add(d)
	if o := e.obs.Load(); o != nil {
		(*o).Call(d, res, err)
	}
	e.log.Debug("call", "job", job, "invocation_id", o.invocationID, "decision", d.ID, "strategy", d.Strategy,
		"ran_on", d.RanOn, "ms", d.LatencyMs, "err", err)
	return res, err
}

// direct tries chain in order until one answers, or a failure is not worth
// trying elsewhere.
func (e *Executor) direct(ctx context.Context, j *Job, d *Decision, chain []Choice, input []byte, o *callOptions, mu *sync.Mutex) (*Result, error) {
	var lastErr error
	for i, c := range chain {
		t := e.router.target(j, c.Target)
		if !t.brk.allow(time.Now()) {
			e.attempt(mu, d, Attempt{Target: t.ID, Outcome: "skipped", Error: "circuit breaker open"})
			continue
		}
		res, err := e.try(ctx, t, d, input, o, mu)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if ctx.Err() != nil || host.IsJobFault(err) || errors.Is(err, host.ErrNotFound) && t.Local {
			return nil, err
		}
		// Another target runs the call again: only when that cannot run
		// a non-idempotent job twice.
		if !host.Retryable(err, j.Pure && !j.Stateful) && !errors.Is(err, host.ErrNotFound) {
			return nil, err
		}
		if i+1 < len(chain) {
			e.log.Warn("failing over", "job", j.Name, "invocation_id", o.invocationID, "from", t.ID, "to", chain[i+1].Target, "err", err)
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%w: every target's circuit breaker is open", ErrNoTarget)
	}
	return nil, lastErr
}

// try runs the call on one target and records the attempt.
func (e *Executor) try(ctx context.Context, t *Target, d *Decision, input []byte, o *callOptions, mu *sync.Mutex) (*Result, error) {
	if t.Local {
		e.inflight.Add(1)
		defer e.inflight.Add(-1)
	}
	kind := trace.SpanKindClient
	if t.Local {
		kind = trace.SpanKindInternal
	}
	ctx, span := telemetry.Start(ctx, "ferry.attempt", trace.WithSpanKind(kind))
	start := time.Now()
	req := host.Request{Input: input, InvocationID: o.invocationID, IdempotencyKey: o.idempotencyKey}
	var resp *host.Response
	var err error
	rode := 1
	if t.batch.takes(len(input)) {
		resp, rode, err = t.batch.invoke(ctx, req)
	} else {
		resp, err = t.Host.Invoke(ctx, t.Dep, req)
	}
	took := time.Since(start)
	a := Attempt{Target: t.ID, Ms: float64(took) / float64(time.Millisecond), Outcome: "ok"}
	if rode > 1 {
		a.Batch = rode
	}
	switch {
	case err == nil:
		a.Cold = resp.Cold
		t.Observe(took, resp.Cold)
	case ctx.Err() != nil:
		a.Outcome, a.Error = "canceled", err.Error()
		t.Abandon()
	case host.IsJobFault(err):
		a.Outcome, a.Error = "job_error", err.Error()
		t.Reached()
	default:
		a.Outcome, a.Error = "host_error", err.Error()
		t.Fail()
	}
	if span.IsRecording() {
		span.SetAttributes(telemetry.String("ferry.target", t.ID), telemetry.String("ferry.outcome", a.Outcome), telemetry.Int("ferry.batch", rode))
		telemetry.End(span, err)
	}
	n := e.attempt(mu, d, a)
	if err != nil {
		return nil, err
	}
	return &Result{Output: resp.Output, Target: t.ID, Host: resp.Host, Region: resp.Region,
		Duration: resp.Duration, Cold: resp.Cold, CostUSD: t.CostUSD, Attempts: n}, nil
}

// attempt records a, returning how many attempts there are now. Once the
// decision is sealed (the call has returned) nothing more is recorded.
func (e *Executor) attempt(mu *sync.Mutex, d *Decision, a Attempt) int {
	mu.Lock()
	defer mu.Unlock()
	if !d.sealed {
		d.Attempts = append(d.Attempts, a)
	}
	return len(d.Attempts)
}

// seal ends recording for d: the attempts still running (a hedge's loser)
// are recorded as canceled, without waiting for them to stop.
func (e *Executor) seal(mu *sync.Mutex, d *Decision, running []string) {
	mu.Lock()
	defer mu.Unlock()
	for _, id := range running {
		d.Attempts = append(d.Attempts, Attempt{Target: id, Outcome: "canceled", Error: "the other copy answered first"})
	}
	d.sealed = true
}

// hedged starts the first target, and the second if the first has not
// answered within the hedge delay (or failed); the first success wins and
// the other is canceled. If both fail, the rest of the chain is tried as
// in direct.
func (e *Executor) hedged(ctx context.Context, j *Job, d *Decision, input []byte, o *callOptions, mu *sync.Mutex) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type out struct {
		res *Result
		err error
		id  string
	}
	// Buffered for both copies: a loser left running never blocks.
	results := make(chan out, 2)
	inflight := map[string]bool{}
	launch := func(c Choice) bool {
		t := e.router.target(j, c.Target)
		if !t.brk.allow(time.Now()) {
			e.attempt(mu, d, Attempt{Target: t.ID, Outcome: "skipped", Error: "circuit breaker open"})
			return false
		}
		inflight[t.ID] = true
		go func() {
			r, err := e.try(ctx, t, d, input, o, mu)
			results <- out{r, err, t.ID}
		}()
		return true
	}
	// finish returns at once: the loser is canceled, recorded as such,
	// and left to stop on its own.
	finish := func() {
		cancel()
		var left []string
		for id := range inflight {
			left = append(left, id)
		}
		e.seal(mu, d, left)
	}
	running := 0
	if launch(d.Chain[0]) {
		running++
	}
	timer := time.NewTimer(time.Duration(d.HedgeAfter * float64(time.Millisecond)))
	defer timer.Stop()
	second := false
	startSecond := func() {
		if !second {
			second = true
			if launch(d.Chain[1]) {
				running++
			}
		}
	}
	if running == 0 {
		startSecond()
	}
	var errs []error
	for running > 0 {
		select {
		case <-timer.C:
			startSecond()
		case o := <-results:
			running--
			delete(inflight, o.id)
			if o.err == nil {
				finish()
				return o.res, nil
			}
			if host.IsJobFault(o.err) {
				// A pure, deterministic job fails the same way anywhere.
				finish()
				return nil, o.err
			}
			errs = append(errs, o.err)
			startSecond()
		}
	}
	if len(d.Chain) > 2 {
		return e.direct(ctx, j, d, d.Chain[2:], input, o, mu)
	}
	return nil, errors.Join(errs...)
}
