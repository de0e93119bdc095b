package wasmrt

import (
	"context"
	"sync"
	"time"
)

// A call's timeout and its caller's cancellation stop the guest through
// engine.Interrupter: one timer per instance, reset for every call, and an
// AfterFunc on the caller's context only when that context can end. The
// alternative, a context.WithTimeout per call which the engine then
// watches with an AfterFunc per guest call, was more than half of a warm
// call's cost (benchmarks/RESULTS.md, "the 1 µs warm call").

// watch is an instance's arming state. Calls on one instance do not
// overlap, so arm and disarm are not concurrent with each other; the timer
// and the caller's AfterFunc may fire at any time, and gen and armed tell
// them whether the call they were set for is still running.
type watch struct {
	mu       sync.Mutex
	armed    bool
	gen      uint64    // bumped by arm: which call a late firing was for
	deadline time.Time // the armed call's
	cause    error     // why the armed call was interrupted; nil if it was not
	timer    *time.Timer
	parent   func() bool // stops the AfterFunc on the caller's context
}

// arm watches the call about to run on inst: it is interrupted at the
// deadline, or when ctx ends. It returns the deadline.
func (inst *instance) arm(ctx context.Context, timeout time.Duration) time.Time {
	w := &inst.watch
	deadline := time.Now().Add(timeout)
	w.mu.Lock()
	w.gen++
	w.armed, w.deadline, w.cause = true, deadline, nil
	gen := w.gen
	w.mu.Unlock()
	if w.timer == nil {
		w.timer = time.AfterFunc(timeout, inst.onTimer)
	} else {
		w.timer.Reset(timeout)
	}
	if ctx.Done() != nil {
		if err := ctx.Err(); err != nil {
			inst.interrupt(gen, err) // the first guest call returns at once
		} else {
			w.parent = context.AfterFunc(ctx, func() { inst.interrupt(gen, ctx.Err()) })
		}
	}
	return deadline
}

// onTimer runs when the timer fires. A firing meant for an earlier call on
// this instance (it raced that call's end) finds the deadline not reached.
func (inst *instance) onTimer() {
	w := &inst.watch
	w.mu.Lock()
	gen, due := w.gen, w.armed && !time.Now().Before(w.deadline)
	w.mu.Unlock()
	if due {
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
	w.timer.Stop()
	if w.parent != nil {
		w.parent()
		w.parent = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	return w.cause
}
