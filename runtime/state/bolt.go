package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bolt is a persistent Store in one bbolt file: a bucket per namespace.
// Writes are durable (fsynced) when Set returns.
type Bolt struct {
	db   *bolt.DB
	path string
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens or creates the store at path, creating its directory. If
// another process holds the file it gives up after a second with ErrLocked.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open state store %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	return &Bolt{db: db, path: path}, nil
}

// Path is the file backing the store.
func (b *Bolt) Path() string { return b.path }

// Get implements Store.
func (b *Bolt) Get(_ context.Context, ns, key string) (value []byte, ok bool, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(ns))
		if bk == nil {
			return nil
		}
		if v := bk.Get([]byte(key)); v != nil {
			value, ok = append([]byte{}, v...), true
		}
		return nil
	})
	if err != nil {
		return nil, false, b.wrap("get", ns, key, err)
	}
	return value, ok, nil
}

// Set implements Store.
func (b *Bolt) Set(_ context.Context, ns, key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("set %s/%q: empty key", ns, key)
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists([]byte(ns))
		if err != nil {
			return err
		}
		if value == nil {
			value = []byte{}
		}
		return bk.Put([]byte(key), value)
	})
	return b.wrap("set", ns, key, err)
}

// Delete implements Store.
func (b *Bolt) Delete(_ context.Context, ns, key string) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(ns))
		if bk == nil {
			return nil
		}
		return bk.Delete([]byte(key))
	})
	return b.wrap("delete", ns, key, err)
}

// Close implements Store.
func (b *Bolt) Close() error { return b.db.Close() }

func (b *Bolt) wrap(op, ns, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	return fmt.Errorf("state %s %s/%q in %s: %w", op, ns, key, b.path, err)
}
