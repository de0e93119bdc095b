// Package state holds job state outside the guest: the Store interface the
// runtime's state host functions call, an in-memory store for tests and
// ephemeral use, and a persistent bbolt store, the default.
//
// Keys live in namespaces, one per job, so two jobs never see each other's
// state. Size limits on keys and values are enforced by the caller (the
// runtime), which knows the job's limits.
package state

import (
	"context"
	"errors"
)

// Store is a key-value store for job state. Implementations are safe for
// concurrent use.
type Store interface {
	// Get returns the value of key in namespace ns; ok is false when absent.
	Get(ctx context.Context, ns, key string) (value []byte, ok bool, err error)
	// Set stores value under key.
	Set(ctx context.Context, ns, key string, value []byte) error
	// Delete removes key; removing an absent key is not an error.
	Delete(ctx context.Context, ns, key string) error
	Close() error
}

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("state store is closed")

// ErrLocked is returned by OpenBolt when another process holds the file.
var ErrLocked = errors.New("state store is locked by another process")
