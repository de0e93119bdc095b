package route

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/runtime/telemetry"
)

// BatchConfig tunes adaptive batching: small calls to a remote target
// whose host takes batches (host.BatchInvoker) share one round trip when
// they arrive together.
//
// A call is sent at once while fewer than MaxInflight round trips to the
// target are under way, so a lightly loaded target sees no added latency.
// When all are busy, calls gather until a round trip returns, the batch is
// full, or the oldest has waited the adaptive wait — a fraction of the
// target's observed latency, at most MaxWait. The batch size adapts too:
// it grows while full batches come back within the latency budget (twice
// the round trip of a lone call, plus 5 ms) and halves when one does not.
type BatchConfig struct {
	// Enabled turns batching on.
	Enabled bool
	// MaxSize is the largest batch; default 64, at most 256 (the HTTP
	// host's limit).
	MaxSize int
	// MaxWait bounds how long a call waits for company; default 2 ms.
	MaxWait time.Duration
	// MaxInputBytes is the largest input batched; default 16 KiB. Larger
	// calls go alone: batching helps small calls, whose round trip is
	// mostly overhead.
	MaxInputBytes int
	// MaxInflight is how many round trips to one target may be under way
	// before calls start to gather; default 4.
	MaxInflight int
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.MaxSize <= 0 {
		c.MaxSize = 64
	}
	c.MaxSize = min(c.MaxSize, 256)
	if c.MaxWait <= 0 {
		c.MaxWait = 2 * time.Millisecond
	}
	if c.MaxInputBytes <= 0 {
		c.MaxInputBytes = 16 << 10
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 4
	}
	return c
}

// batcher gathers one target's small calls into batches.
type batcher struct {
	t   *Target
	bi  host.BatchInvoker
	cfg BatchConfig

	mu       sync.Mutex
	pending  []*batchCall
	timer    *time.Timer
	inflight int
	size     int  // the adaptive batch size
	lone     ewma // round trip of a batch of one or two, ms: the baseline

	batches, batched atomic.Int64 // round trips of two or more, and the calls in them
}

type batchCall struct {
	req      host.Request
	span     trace.SpanContext // the caller's attempt, linked from the round trip's span
	done     chan batchResult
	canceled atomic.Bool
}

type batchResult struct {
	resp *host.Response
	err  error
	n    int // calls in the round trip
}

func newBatcher(t *Target, bi host.BatchInvoker, cfg BatchConfig) *batcher {
	b := &batcher{t: t, bi: bi, cfg: cfg, size: min(16, cfg.MaxSize)}
	b.lone.init(t.lat.mean())
	return b
}

// takes reports whether a call of n input bytes may be batched.
func (b *batcher) takes(n int) bool { return b != nil && n <= b.cfg.MaxInputBytes }

// invoke runs req, alone or in a batch; n is the number of calls in the
// round trip it rode.
func (b *batcher) invoke(ctx context.Context, req host.Request) (*host.Response, int, error) {
	if err := ctx.Err(); err != nil {
		// The caller gave up already: never sent. (Without this check a
		// call flushed at once could answer before the select below saw
		// ctx.Done(), and a canceled caller would get a result.)
		return nil, 0, err
	}
	c := &batchCall{req: req, span: trace.SpanContextFromContext(ctx), done: make(chan batchResult, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	switch {
	case len(b.pending) >= b.size || b.inflight < b.cfg.MaxInflight:
		b.flushLocked()
	case b.timer == nil:
		b.timer = time.AfterFunc(b.waitLocked(), b.onTimer)
	}
	b.mu.Unlock()
	select {
	case r := <-c.done:
		return r.resp, r.n, r.err
	case <-ctx.Done():
		// Still pending: it will not be sent. Already sent: its answer
		// is dropped (only a hedge's loser or a caller that gave up gets
		// here).
		c.canceled.Store(true)
		return nil, 0, ctx.Err()
	}
}

// waitLocked is how long gathered calls may wait: an eighth of a lone
// round trip, between 50 µs and MaxWait.
func (b *batcher) waitLocked() time.Duration {
	w := time.Duration(b.lone.mean() / 8 * float64(time.Millisecond))
	return min(max(w, 50*time.Microsecond), b.cfg.MaxWait)
}

func (b *batcher) onTimer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer = nil
	if len(b.pending) > 0 {
		b.flushLocked() // the wait bound: even past MaxInflight
	}
}

// flushLocked sends up to size pending calls in one round trip.
func (b *batcher) flushLocked() {
	calls := make([]*batchCall, 0, min(len(b.pending), b.size))
	rest := b.pending
	for len(rest) > 0 && len(calls) < b.size {
		if c := rest[0]; !c.canceled.Load() {
			calls = append(calls, c)
		}
		rest = rest[1:]
	}
	b.pending = append(b.pending[:0:0], rest...)
	if len(b.pending) == 0 && b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(calls) == 0 {
		return
	}
	b.inflight++
	go b.send(calls)
}

// send makes one round trip for calls and hands each its own answer.
func (b *batcher) send(calls []*batchCall) {
	start := time.Now()
	n := len(calls)
	// Round trips outlive the callers who started them: each caller
	// waits on its own context, and the host bounds the call by the
	// job's timeout.
	if n == 1 {
		// One call: its own trace continues on the host.
		ctx := trace.ContextWithSpanContext(context.Background(), calls[0].span)
		resp, err := b.t.Host.Invoke(ctx, b.t.Dep, calls[0].req)
		calls[0].done <- batchResult{resp, err, 1}
	} else {
		// A round trip for many calls: its span links to each caller's.
		links := make([]trace.Link, 0, n)
		for _, c := range calls {
			if c.span.IsValid() {
				links = append(links, trace.Link{SpanContext: c.span})
			}
		}
		ctx, span := telemetry.Start(context.Background(), "ferry.batch", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithLinks(links...), trace.WithAttributes(telemetry.String("ferry.target", b.t.ID), telemetry.Int("ferry.batch", n)))
		reqs := make([]host.Request, n)
		for i, c := range calls {
			reqs[i] = c.req
		}
		results := b.bi.InvokeBatch(ctx, b.t.Dep, reqs)
		for i, c := range calls {
			r := batchResult{n: n}
			if i < len(results) {
				r.resp, r.err = results[i].Response, results[i].Err
			} else {
				r.err = host.Errorf(host.ErrHost, "invoke", b.t.ID, b.t.Dep.Job, "batch answer has %d results for %d calls", len(results), n)
			}
			c.done <- r
		}
		span.End()
		b.batches.Add(1)
		b.batched.Add(int64(n))
	}
	took := float64(time.Since(start)) / float64(time.Millisecond)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight--
	b.adaptLocked(n, took)
	if len(b.pending) > 0 && (b.inflight < b.cfg.MaxInflight || len(b.pending) >= b.size) {
		b.flushLocked()
	}
}

// adaptLocked tunes the batch size from a round trip of n calls that took
// ms: additive growth while full batches stay within budget,
// multiplicative decrease when one does not.
func (b *batcher) adaptLocked(n int, ms float64) {
	if n <= 2 {
		b.lone.add(ms)
		return
	}
	base := b.lone.mean()
	budget := 2*base + 5
	switch {
	case ms > budget:
		b.size = max(b.size/2, 2)
	case n >= b.size:
		b.size = min(b.size+max(b.size/4, 1), b.cfg.MaxSize)
	}
}

// BatchStats is a target's batching so far.
type BatchStats struct {
	Batches int64   `json:"batches"`
	Calls   int64   `json:"calls"`
	Size    int     `json:"size"`
	WaitMs  float64 `json:"wait_ms"`
}

func (b *batcher) stats() *BatchStats {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return &BatchStats{Batches: b.batches.Load(), Calls: b.batched.Load(), Size: b.size,
		WaitMs: float64(b.waitLocked()) / float64(time.Millisecond)}
}
