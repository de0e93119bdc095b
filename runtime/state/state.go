// Package state holds job state outside the guest: the Store interface the
// runtime's state host functions call, an in-memory store for tests and
// ephemeral use, a persistent bbolt store (the default when everything
// runs on one machine) and a Redis store that every host of a job can
// reach.
//
// Keys live in namespaces, one per job, so two jobs never see each other's
// state. Size limits on keys and values are enforced by the caller (the
// runtime), which knows the job's limits.
//
// Every invocation of a stateful job is an optimistic transaction (see
// Tx): reads record the version they saw, writes are buffered, and Commit
// applies them atomically only if nothing read has changed since. A
// conflicting invocation is run again by the runtime, so concurrent
// get-then-set updates — on one host or across many sharing a store — lose
// nothing. A commit may also record the invocation's idempotency key with
// its output, atomically with the writes, so an invocation that is
// delivered twice (a retry after a crash) takes effect once.
package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store is a key-value store for job state. Implementations are safe for
// concurrent use.
type Store interface {
	// Get returns the value of key in namespace ns; ok is false when absent.
	Get(ctx context.Context, ns, key string) (value []byte, ok bool, err error)
	// Set stores value under key (unconditionally, outside any
	// transaction).
	Set(ctx context.Context, ns, key string, value []byte) error
	// Delete removes key; removing an absent key is not an error.
	Delete(ctx context.Context, ns, key string) error

	// Read returns key's entry with its version. A key that was never
	// written has version 0; every write (set or delete) raises it, and a
	// deleted key keeps its version, so a version is never reused.
	Read(ctx context.Context, ns, key string) (Entry, error)
	// Commit applies c atomically: if every key in c.Reads still has the
	// version read, all of c.Writes take effect (and c.Done is recorded);
	// otherwise nothing does and the error is ErrConflict. If c.Done names
	// an idempotency key already recorded in ns, nothing takes effect and
	// the error is ErrDuplicate.
	Commit(ctx context.Context, ns string, c *Commit) error
	// Done returns the output recorded by the commit that carried
	// idempotency key id in ns; ok is false when there is none (never
	// committed, or expired).
	Done(ctx context.Context, ns, id string) (output []byte, ok bool, err error)

	Close() error
}

// Bounded is a Store whose backend caps what one entry or one commit may
// hold (DynamoDB's 400 KB items). The runtime lowers a job's state limits
// to these, so an oversized value is refused when the job writes it, as
// "too large", instead of failing the commit as the host's fault.
type Bounded interface {
	StoreLimits() Limits
}

// Limits are a store's own bounds; 0 means none.
type Limits struct {
	// MaxValueBytes bounds one value; MaxCommitBytes the keys and values
	// one commit writes.
	MaxValueBytes  int
	MaxCommitBytes int
}

// Entry is a key's value and version.
type Entry struct {
	Value   []byte
	Found   bool
	Version uint64
}

// Write is one buffered change: a new value, or a deletion.
type Write struct {
	Value  []byte
	Delete bool
}

// Commit is a transaction's outcome, applied by Store.Commit.
type Commit struct {
	// Reads maps each key read to the version seen (0: never written).
	Reads map[string]uint64
	// Writes maps each key written to its new value or deletion.
	Writes map[string]Write
	// Done, when set, records that the invocation with this idempotency
	// key has committed, with Output, for TTL (DefaultDoneTTL when 0).
	Done   string
	Output []byte
	TTL    time.Duration
}

// DefaultDoneTTL is how long an idempotency record is kept by default.
const DefaultDoneTTL = 24 * time.Hour

var (
	// ErrClosed is returned by a store used after Close.
	ErrClosed = errors.New("state store is closed")
	// ErrLocked is returned by OpenBolt when another process holds the file.
	ErrLocked = errors.New("state store is locked by another process")
	// ErrConflict is returned by Commit when a key read has changed since.
	ErrConflict = errors.New("state changed since it was read")
	// ErrDuplicate is returned by Commit when the idempotency key has
	// already committed.
	ErrDuplicate = errors.New("invocation already committed")
)

// describe names an operation for an error: "get job/\"k\"".
func describe(op, ns, key string) string {
	if ns != "" {
		op += " " + ns
	}
	if key != "" {
		op += fmt.Sprintf("/%q", key)
	}
	return op
}
