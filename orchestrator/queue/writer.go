package queue

import bolt "go.etcd.io/bbolt"

// maxBatch bounds the writes one commit carries.
const maxBatch = 256

// write is one transaction's worth of work for the writer. fn may run more
// than once (see commit), so it resets whatever it reports before doing
// anything, and it reports a refusal (ErrFull…) through its closure, not as
// an error, which would fail the writes it shares a commit with.
type write struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// writer commits the queue's writes, group-commit style: it takes every
// write waiting while the last commit was being fsynced and commits them
// together. One write alone commits at once, and under load a commit (two
// fsyncs) carries many. bbolt's own db.Batch waits up to MaxBatchDelay
// (10 ms) for company instead, which a lone Submit would pay in full.
func (q *Queue) writer() {
	defer close(q.writerDone)
	batch := make([]write, 0, maxBatch)
	for w := range q.writes {
		batch = append(batch[:0], w)
	more:
		for len(batch) < maxBatch {
			select {
			case w, ok := <-q.writes:
				if !ok {
					break more
				}
				batch = append(batch, w)
			default:
				break more
			}
		}
		q.commit(batch)
	}
}

// commit runs batch in one transaction. When it fails, each write runs
// again in its own, so that one write's error is not the others'.
func (q *Queue) commit(batch []write) {
	err := q.db.Update(func(tx *bolt.Tx) error {
		for _, w := range batch {
			if err := w.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(batch) == 1 {
		for _, w := range batch {
			w.done <- err
		}
		return
	}
	for _, w := range batch {
		w.done <- q.db.Update(w.fn)
	}
}

// update runs fn in a write transaction and returns once it is committed;
// after Close it fails with ErrClosed.
func (q *Queue) update(fn func(*bolt.Tx) error) error {
	w := write{fn: fn, done: make(chan error, 1)}
	q.writeMu.RLock()
	if q.abandoned {
		q.writeMu.RUnlock()
		return ErrClosed
	}
	q.writes <- w
	q.writeMu.RUnlock()
	return <-w.done
}

// stopWriter makes later writes fail with ErrClosed and waits until the
// ones already handed to the writer are committed.
func (q *Queue) stopWriter() {
	q.writeMu.Lock()
	if !q.abandoned {
		q.abandoned = true
		close(q.writes)
	}
	q.writeMu.Unlock()
	<-q.writerDone
}
