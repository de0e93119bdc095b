package wasmrt

import (
	"context"
	"sync"
	"time"
)

// A call's timeout and its caller's cancellation stop the guest through
// engine.Interrupter: one timer per instance, reset for every call. The
// alternative, a context.WithTimeout per call which the engine then
// watches with an AfterFunc per guest call, was more than half of a warm
// call's cost (benchmarks/RESULTS.md, "What the harness says").
//
// A caller's context that can end (a server request's) is watched only
// once the call has run for parentGrace: the timer first fires then,
// registers an AfterFunc on the context and re-arms for the deadline.
// Registering on every call cost about a quarter of a sub-microsecond
// call; a short call on a canceled context finishes anyway, within
// parentGrace.
const parentGrace = time.Millisecond

// watch is an instance's arming state. Calls on one instance do not
// overlap, so arm and disarm are not concurrent with each other; the timer
// and the caller's AfterFunc may fire at any time, and gen, armed and
// deadline tell them whether the call they were set for is still running.
type watch struct {
	mu       sync.Mutex
	armed    bool
	gen      uint64          // bumped by arm: which call a late firing was for
	deadline time.Time       // the armed call's
	ctx      context.Context // the armed call's caller, if it can end
	cause    error           // why the armed call was interrupted; nil if it was not
	parent   func() bool     // stops the AfterFunc on ctx, once registered
	timer    *time.Timer     // made by the first arm; used under mu
}

// arm watches the call about to run on inst: it is interrupted at the
// deadline, or when ctx ends. It returns the deadline.
func (inst *instance) arm(ctx context.Context, timeout time.Duration) time.Time {
	w := &inst.watch
	deadline := time.Now().Add(timeout)
	first := timeout
	if ctx.Done() == nil {
		ctx = nil
	} else {
		first = min(timeout, parentGrace)
	}
	canceled := ctx != nil && ctx.Err() != nil
	w.mu.Lock()
	w.gen++
	w.armed, w.deadline, w.ctx, w.cause = true, deadline, ctx, nil
	gen := w.gen
	switch {
	case canceled:
	case w.timer == nil:
		w.timer = time.AfterFunc(first, inst.onTimer)
	default:
		w.timer.Reset(first)
	}
	w.mu.Unlock()
	if canceled {
		inst.interrupt(gen, ctx.Err()) // the first guest call returns at once
	}
	return deadline
}

// onTimer runs when the timer fires: at the deadline, or parentGrace into
// a call whose caller can give up. A firing meant for an earlier call on
// this instance acts for the armed one, which is harmless: it finds the
// deadline not reached, or watches the armed call's caller early.
func (inst *instance) onTimer() {
	w := &inst.watch
	w.mu.Lock()
	if !w.armed || w.cause != nil {
		w.mu.Unlock()
		return
	}
	gen, ctx, left := w.gen, w.ctx, time.Until(w.deadline)
	if left > 0 {
		if ctx != nil && w.parent == nil {
			w.parent = context.AfterFunc(ctx, func() { inst.interrupt(gen, ctx.Err()) })
		}
		w.timer.Reset(left)
	}
	w.mu.Unlock()
	if left <= 0 {
		inst.interrupt(gen, context.DeadlineExceeded)
	}
}

// interrupt stops call gen if it is still the armed one.
func (inst *instance) interrupt(gen uint64, cause error) {
	w := &inst.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed || w.gen != gen || w.cause != nil {
		return
	}
	w.cause = cause
	inst.intr.Interrupt(cause)
}

// disarm ends the watch of the call that has returned. It reports the
// cause if the call was interrupted, even after the guest had finished:
// such an instance must not be called again.
func (inst *instance) disarm() error {
	w := &inst.watch
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.armed, w.ctx = false, nil
	parent, cause := w.parent, w.cause
	w.parent = nil
	w.mu.Unlock()
	if parent != nil {
		parent()
	}
	return cause
}
