package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sweepBatch bounds the invocations one janitor transaction deletes, so
// that a sweep never holds Submits up for long.
const sweepBatch = 1000

// writeRetry is how long a worker waits after a write failed.
const writeRetry = time.Second

// Start recovers from a crash and starts the workers and the janitor; it
// returns once they run.
//
// Invocations the last process left running were interrupted. Those whose
// job rerunSafe approves (pure jobs, and stateful jobs whose state store
// takes the invocation ID as an idempotency key) are queued again, first
// in line, with Recovered set. The others are failed with KindInterrupted:
// they may or may not have taken effect, and running them twice is not
// safe. A nil rerunSafe approves none.
//
// ctx's values reach every Runner call; its cancellation does not stop the
// queue — Close does, so that a shutdown can drain the running work.
// Start fails if the queue is closed or started, or if recovery cannot be
// written.
func (q *Queue) Start(ctx context.Context, run Runner, rerunSafe func(job string) bool) error {
	q.lifeMu.Lock()
	defer q.lifeMu.Unlock()
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("queue: start: %w", ErrClosed)
	case q.started:
		return errors.New("queue: start: already started")
	case run == nil:
		return errors.New("queue: start: nil runner")
	}
	if err := q.recoverInterrupted(rerunSafe); err != nil {
		return fmt.Errorf("queue: start: recover interrupted invocations: %w", err)
	}
	q.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q.cancelRuns = cancel
	q.wg.Add(q.cfg.Workers + 1)
	for range q.cfg.Workers {
		go q.work(runCtx, run)
	}
	go q.janitor()
	return nil
}

// Close stops taking work: Submit fails with ErrClosed and workers take no
// more invocations. It waits for the running ones to finish until ctx is
// done; then it cancels their Runners' ctx and returns an error, and
// those invocations stay running in the database, so the next Start
// treats them as interrupted. Once Close returns the queue does not write
// to the database, and the caller may close it. Close is needed even when
// Start was not called (Open starts the goroutine that writes); later
// calls return nil.
func (q *Queue) Close(ctx context.Context) error {
	q.lifeMu.Lock()
	defer q.lifeMu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stop)

	var err error
	if q.started {
		done := make(chan struct{})
		go func() { q.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			select {
			case <-done: // finished just in time
			default:
				_, running := q.Depth()
				err = fmt.Errorf("queue: close: %d invocations left running: %w", running, context.Cause(ctx))
			}
		}
	}
	// Stop writing first: a Runner that fails because it was cancelled
	// must not have that failure stored.
	q.stopWriter()
	if q.cancelRuns != nil {
		q.cancelRuns()
	}
	return err
}

const interruptedMsg = "the orchestrator stopped while the invocation was running, and job %q is not safe to run twice: it may or may not have taken effect"

// recoverInterrupted requeues or fails what a crash left running.
func (q *Queue) recoverInterrupted(rerunSafe func(job string) bool) error {
	var requeued, failed []*Invocation
	var found int
	err := q.update(func(tx *bolt.Tx) error {
		requeued, failed, found = nil, nil, 0
		b := bucketsIn(tx)
		var ids []string
		if err := b.running.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		}); err != nil {
			return err
		}
		found = len(ids)
		now := q.now()
		expires := now.Add(q.cfg.TTL)
		for _, id := range ids {
			inv, err := b.get(id)
			if err != nil {
				return err
			}
			if inv == nil { // cannot happen; do not let it block the queue
				if err := b.running.Delete([]byte(id)); err != nil {
					return err
				}
				continue
			}
			if rerunSafe != nil && rerunSafe(inv.Job) {
				inv.Status, inv.Recovered, inv.StartedAt = StatusQueued, true, nil
				if err := b.put(inv); err != nil {
					return err
				}
				if err := b.running.Delete([]byte(id)); err != nil {
					return err
				}
				if err := b.pending.Put([]byte(id), nil); err != nil {
					return err
				}
				requeued = append(requeued, inv)
				continue
			}
			inv.Status, inv.ErrorKind = StatusFailed, KindInterrupted
			inv.Error = fmt.Sprintf(interruptedMsg, inv.Job)
			inv.FinishedAt, inv.ExpiresAt = &now, &expires
			if err := b.finish(inv); err != nil {
				return err
			}
			failed = append(failed, inv)
		}
		return nil
	})
	if err != nil {
		return err
	}
	q.count(len(requeued), -found)
	for _, inv := range requeued {
		q.log.Warn("interrupted invocation queued again", "invocation_id", inv.ID, "job", inv.Job, "attempts", inv.Attempts)
	}
	for _, inv := range failed {
		q.log.Warn("interrupted invocation failed; its job is not safe to run twice", "invocation_id", inv.ID, "job", inv.Job)
	}
	return nil
}

// work runs invocations until Close.
func (q *Queue) work(ctx context.Context, run Runner) {
	defer q.wg.Done()
	var ran *Invocation // run, with its outcome not yet stored
	for {
		claim := !q.stopping()
		if !claim && ran == nil {
			return
		}
		next, input, err := q.advance(ran, claim)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return
			}
			// ran stays running in the database; the next Start recovers it.
			q.log.Error("could not store an outcome or take the next invocation", "err", err)
			ran = nil
			select {
			case <-time.After(writeRetry):
			case <-q.stop:
				return
			}
			continue
		}
		ran = nil
		if next == nil {
			if !claim {
				return
			}
			select {
			case <-q.wake:
			case <-q.stop:
			}
			continue
		}
		q.settle(next, q.call(ctx, run, next, input))
		ran = next
	}
}

func (q *Queue) stopping() bool {
	select {
	case <-q.stop:
		return true
	default:
		return false
	}
}

// advance stores ran's outcome (when ran is not nil) and, when claim is
// set, marks the oldest queued invocation running and returns it with its
// input; nil when nothing is queued. Marking it before it runs is what
// lets the next Start tell that a crash interrupted it. Both go in one
// transaction, so a busy worker waits for one commit per invocation.
func (q *Queue) advance(ran *Invocation, claim bool) (*Invocation, []byte, error) {
	var next *Invocation
	var input []byte
	var orphans int
	err := q.update(func(tx *bolt.Tx) error {
		next, input, orphans = nil, nil, 0
		b := bucketsIn(tx)
		if ran != nil {
			if err := b.finish(ran); err != nil {
				return err
			}
		}
		if !claim {
			return nil
		}
		c := b.pending.Cursor()
		var id string
		for k, _ := c.First(); k != nil && next == nil; k, _ = c.First() {
			id = string(k)
			var err error
			if next, err = b.get(id); err != nil {
				return err
			}
			if next == nil { // cannot happen; do not let it block the queue
				if err := b.pending.Delete([]byte(id)); err != nil {
					return err
				}
				orphans++
			}
		}
		if next == nil {
			return nil
		}
		input = bytes.Clone(b.inputs.Get([]byte(id)))
		now := q.now()
		next.Status, next.StartedAt = StatusRunning, &now
		next.Attempts++
		if err := b.put(next); err != nil {
			return err
		}
		if err := b.pending.Delete([]byte(id)); err != nil {
			return err
		}
		return b.running.Put([]byte(id), nil)
	})
	if err != nil {
		return nil, nil, err
	}
	dq, dr := -orphans, 0
	if ran != nil {
		dr--
	}
	if next != nil {
		dq, dr = dq-1, dr+1
	}
	q.count(dq, dr)
	return next, input, nil
}

// call runs the Runner on a copy of inv; a panic becomes a failure so the
// worker lives on.
func (q *Queue) call(ctx context.Context, run Runner, inv *Invocation, input []byte) (out Outcome) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("runner panicked", "invocation_id", inv.ID, "job", inv.Job, "panic", r, "stack", string(debug.Stack()))
			out = Outcome{Err: fmt.Errorf("runner panicked: %v", r), ErrorKind: KindPanic}
		}
	}()
	c := *inv
	if inv.StartedAt != nil {
		started := *inv.StartedAt
		c.StartedAt = &started
	}
	return run(ctx, &c, input)
}

// settle fills in inv's result from out; advance stores it.
func (q *Queue) settle(inv *Invocation, out Outcome) {
	now := q.now()
	expires := now.Add(q.cfg.TTL)
	inv.Output, inv.RanOn, inv.DecisionID = out.Output, out.RanOn, out.DecisionID
	inv.FinishedAt, inv.ExpiresAt = &now, &expires
	if out.Err == nil {
		inv.Status = StatusSucceeded
	} else {
		inv.Status, inv.Error, inv.ErrorKind = StatusFailed, out.Err.Error(), out.ErrorKind
	}
}

// janitor deletes expired invocations now and every SweepInterval, until
// Close.
func (q *Queue) janitor() {
	defer q.wg.Done()
	t := time.NewTicker(q.cfg.SweepInterval)
	defer t.Stop()
	for {
		if n, err := q.sweep(); err != nil && !errors.Is(err, ErrClosed) {
			q.log.Error("could not delete expired invocations", "deleted", n, "err", err)
		} else if n > 0 {
			q.log.Debug("deleted expired invocations", "deleted", n)
		}
		select {
		case <-t.C:
		case <-q.stop:
			return
		}
	}
}

// sweep deletes expired invocations, sweepBatch per transaction, and
// returns how many.
func (q *Queue) sweep() (int, error) {
	total := 0
	for {
		n, err := q.sweepOnce(q.now())
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
		select {
		case <-q.stop:
			return total, nil
		default:
		}
	}
}

func (q *Queue) sweepOnce(now time.Time) (int, error) {
	var n int
	err := q.update(func(tx *bolt.Tx) error {
		n = 0
		b := bucketsIn(tx)
		var keys [][]byte
		c := b.expiry.Cursor()
		// Collect first: deleting under a bbolt cursor can skip keys.
		for k, _ := c.First(); k != nil && len(keys) < sweepBatch && !now.Before(expiryTime(k)); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			inv, err := b.get(string(k[8:]))
			if err != nil {
				return err
			}
			if inv != nil && inv.ExpiresAt != nil {
				if err := b.delete(inv); err != nil {
					return err
				}
			}
			if err := b.expiry.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	return n, err
}
