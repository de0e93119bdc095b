package state

import (
	"context"
	"time"
)

// Tx is one invocation's view of a namespace: reads go to the store (or to
// the transaction's own earlier writes) and record the version seen;
// writes are buffered until Commit. A Tx is used by one invocation at a
// time and is not safe for concurrent use.
type Tx struct {
	s      Store
	ns     string
	reads  map[string]uint64
	writes map[string]Write
}

// Begin starts a transaction on namespace ns of s.
func Begin(s Store, ns string) *Tx { return &Tx{s: s, ns: ns} }

// Get returns key's value as this transaction sees it.
func (t *Tx) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if w, ok := t.writes[key]; ok {
		if w.Delete {
			return nil, false, nil
		}
		return append([]byte(nil), w.Value...), true, nil
	}
	e, err := t.s.Read(ctx, t.ns, key)
	if err != nil {
		return nil, false, err
	}
	if t.reads == nil {
		t.reads = map[string]uint64{}
	}
	if _, seen := t.reads[key]; !seen {
		// The first version read is the one the commit checks: a later
		// read of a newer version cannot hide a change in between.
		t.reads[key] = e.Version
	}
	return e.Value, e.Found, nil
}

// Set buffers a write of key.
func (t *Tx) Set(key string, value []byte) {
	if t.writes == nil {
		t.writes = map[string]Write{}
	}
	t.writes[key] = Write{Value: append([]byte{}, value...)}
}

// Delete buffers a deletion of key.
func (t *Tx) Delete(key string) {
	if t.writes == nil {
		t.writes = map[string]Write{}
	}
	t.writes[key] = Write{Delete: true}
}

// Dirty reports whether the transaction has buffered writes.
func (t *Tx) Dirty() bool { return len(t.writes) > 0 }

// Commit applies the transaction. done, when not empty, is the
// invocation's idempotency key, recorded with output for ttl. A
// transaction that wrote nothing, needs no record and read at most one key
// has nothing to check: one read is always consistent. Reads of several
// keys are validated even without writes, so a read-only call never sees
// half of another call's update.
func (t *Tx) Commit(ctx context.Context, done string, output []byte, ttl time.Duration) error {
	if len(t.writes) == 0 && done == "" && len(t.reads) <= 1 {
		return nil
	}
	return t.s.Commit(ctx, t.ns, &Commit{Reads: t.reads, Writes: t.writes, Done: done, Output: output, TTL: ttl})
}
