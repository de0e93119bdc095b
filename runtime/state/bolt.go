package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bolt is a persistent Store in one bbolt file. Each namespace's entries
// live in a bucket named after it; its idempotency records in a bucket
// named "\x00done/" + namespace, which no job name can be. Writes are
// durable (fsynced) when Set, Delete or Commit returns.
//
// Expired idempotency records are invisible at once and removed lazily:
// every commit that records one first removes a few expired ones, found
// through an index ordered by expiry, so the file holds at most a bounded
// number of dead records per live one without a background goroutine.
// Expire removes all of them at once.
type Bolt struct {
	db   *bolt.DB
	path string
	now  func() time.Time
}

var _ Store = (*Bolt)(nil)

// The file's layout. A file without the meta bucket was written before
// entries carried versions; OpenBolt converts it.
var (
	metaBucket   = []byte("\x00meta")
	formatKey    = []byte("format")
	expiryBucket = []byte("\x00expiry")
)

const (
	boltFormat = 1
	// entryHeader is an entry's 8-byte big-endian version and its flag
	// byte (1: found, 0: tombstone), before the value.
	entryHeader = 9
	// doneHeader is a record's 8-byte big-endian expiry in Unix
	// nanoseconds, before the output.
	doneHeader = 8
	// sweepPerCommit is how many expired records a commit that records
	// one removes: more than one, so a backlog shrinks.
	sweepPerCommit = 4
	// sweepBatch bounds how long Expire holds the write lock at a time.
	sweepBatch = 10_000
)

func doneBucket(ns string) []byte { return []byte("\x00done/" + ns) }

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
	if err := db.Update(upgrade); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	return &Bolt{db: db, path: path, now: time.Now}, nil
}

// upgrade marks a new file with the current format and converts one
// written before entries had versions: each value becomes a found entry
// at version 1.
func upgrade(tx *bolt.Tx) error {
	if m := tx.Bucket(metaBucket); m != nil {
		if f := m.Get(formatKey); len(f) != 1 || f[0] != boltFormat {
			return fmt.Errorf("unknown state file format %x; this ferry reads %d", f, boltFormat)
		}
		return nil
	}
	type kv struct{ ns, k, v []byte }
	var old []kv
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if len(name) > 0 && name[0] == 0 {
			return nil
		}
		ns := bytes.Clone(name)
		// Collected first: a bucket must not change under ForEach.
		return b.ForEach(func(k, v []byte) error {
			if v != nil {
				old = append(old, kv{ns, bytes.Clone(k), encodeEntry(1, Write{Value: v})})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, e := range old {
		if err := tx.Bucket(e.ns).Put(e.k, e.v); err != nil {
			return err
		}
	}
	m, err := tx.CreateBucket(metaBucket)
	if err != nil {
		return err
	}
	return m.Put(formatKey, []byte{boltFormat})
}

// Path is the file backing the store.
func (b *Bolt) Path() string { return b.path }

// Get implements Store.
func (b *Bolt) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	e, err := b.read(ctx, "get", ns, key)
	return e.Value, e.Found, err
}

// Read implements Store.
func (b *Bolt) Read(ctx context.Context, ns, key string) (Entry, error) {
	return b.read(ctx, "read", ns, key)
}

func (b *Bolt) read(ctx context.Context, op, ns, key string) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, b.wrap(op, ns, key, err)
	}
	var e Entry
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(ns))
		if bk == nil {
			return nil
		}
		v := bk.Get([]byte(key))
		if v == nil {
			return nil
		}
		var err error
		e, err = decodeEntry(v)
		return err
	})
	if err != nil {
		return Entry{}, b.wrap(op, ns, key, err)
	}
	return e, nil
}

// Set implements Store.
func (b *Bolt) Set(ctx context.Context, ns, key string, value []byte) error {
	return b.wrap("set", ns, key, b.commit(ctx, ns, &Commit{Writes: map[string]Write{key: {Value: value}}}))
}

// Delete implements Store.
func (b *Bolt) Delete(ctx context.Context, ns, key string) error {
	return b.wrap("delete", ns, key, b.commit(ctx, ns, &Commit{Writes: map[string]Write{key: {Delete: true}}}))
}

// Commit implements Store. It is one bbolt transaction, fsynced before it
// returns.
func (b *Bolt) Commit(ctx context.Context, ns string, c *Commit) error {
	return b.wrap("commit", ns, "", b.commit(ctx, ns, c))
}

func (b *Bolt) commit(ctx context.Context, ns string, c *Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ns == "" || ns[0] == 0 {
		// Names starting with a zero byte hold the file's own buckets.
		return fmt.Errorf("invalid namespace %q", ns)
	}
	if len(c.Writes) == 0 && c.Done == "" {
		// Only validating reads: a read transaction sees one snapshot and
		// spares the fsync of a write transaction.
		return b.db.View(func(tx *bolt.Tx) error { return checkReads(tx, ns, c.Reads) })
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		now := b.now()
		if c.Done != "" {
			if d := tx.Bucket(doneBucket(ns)); d != nil {
				if r := d.Get([]byte(c.Done)); r != nil && now.UnixNano() < recordExpiry(r) {
					return ErrDuplicate
				}
			}
		}
		if err := checkReads(tx, ns, c.Reads); err != nil {
			return err
		}
		if len(c.Writes) > 0 {
			bk, err := tx.CreateBucketIfNotExists([]byte(ns))
			if err != nil {
				return err
			}
			for k, w := range c.Writes {
				var version uint64
				if v := bk.Get([]byte(k)); v != nil {
					if version, err = entryVersion(v); err != nil {
						return err
					}
				}
				if err := bk.Put([]byte(k), encodeEntry(version+1, w)); err != nil {
					return fmt.Errorf("write %q: %w", k, err)
				}
			}
		}
		if c.Done == "" {
			return nil
		}
		if _, err := expire(tx, now, sweepPerCommit); err != nil {
			return err
		}
		return record(tx, ns, c.Done, c.Output, now.Add(doneTTL(c.TTL)))
	})
}

// checkReads returns ErrConflict unless every key in reads has the
// version read.
func checkReads(tx *bolt.Tx, ns string, reads map[string]uint64) error {
	bk := tx.Bucket([]byte(ns))
	for k, want := range reads {
		var cur uint64
		if bk != nil {
			if v := bk.Get([]byte(k)); v != nil {
				var err error
				if cur, err = entryVersion(v); err != nil {
					return err
				}
			}
		}
		if cur != want {
			return ErrConflict
		}
	}
	return nil
}

// record stores idempotency key id's output with its expiry, and indexes
// it by expiry for the sweep. An expired record with the same id may be
// overwritten; its index entry then no longer matches and the sweep drops
// only the index entry.
func record(tx *bolt.Tx, ns, id string, output []byte, expires time.Time) error {
	d, err := tx.CreateBucketIfNotExists(doneBucket(ns))
	if err != nil {
		return err
	}
	exp := uint64(expires.UnixNano())
	r := make([]byte, doneHeader, doneHeader+len(output))
	binary.BigEndian.PutUint64(r, exp)
	if err := d.Put([]byte(id), append(r, output...)); err != nil {
		return fmt.Errorf("record %q: %w", id, err)
	}
	idx, err := tx.CreateBucketIfNotExists(expiryBucket)
	if err != nil {
		return err
	}
	if len(ns) > 0xffff {
		return fmt.Errorf("namespace of %d bytes is too long", len(ns))
	}
	// expiry, namespace length, namespace, id: ordered by expiry, and
	// the id may hold any byte.
	k := make([]byte, 0, 10+len(ns)+len(id))
	k = binary.BigEndian.AppendUint64(k, exp)
	k = binary.BigEndian.AppendUint16(k, uint16(len(ns)))
	k = append(append(k, ns...), id...)
	return idx.Put(k, nil)
}

// expire removes up to limit idempotency records that expired by now,
// earliest first, and reports how many index entries it removed.
func expire(tx *bolt.Tx, now time.Time, limit int) (int, error) {
	idx := tx.Bucket(expiryBucket)
	if idx == nil {
		return 0, nil
	}
	c := idx.Cursor()
	n := 0
	// Seek to the first entry again after each deletion: a bbolt
	// cursor may skip an entry when one is deleted under it.
	for k, _ := c.First(); k != nil && n < limit; k, _ = c.First() {
		if len(k) < 10 {
			return n, fmt.Errorf("corrupt expiry index entry %x", k)
		}
		exp := binary.BigEndian.Uint64(k)
		if int64(exp) > now.UnixNano() {
			break
		}
		nsLen := int(binary.BigEndian.Uint16(k[8:]))
		if len(k) < 10+nsLen {
			return n, fmt.Errorf("corrupt expiry index entry %x", k)
		}
		ns, id := string(k[10:10+nsLen]), bytes.Clone(k[10+nsLen:])
		if d := tx.Bucket(doneBucket(ns)); d != nil {
			if r := d.Get(id); r != nil && uint64(recordExpiry(r)) == exp {
				if err := d.Delete(id); err != nil {
					return n, err
				}
			}
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Expire removes every idempotency record that expired by now and
// reports how many it removed. Commits already remove a few at a time;
// this is for a store that stopped recording, or for tests.
func (b *Bolt) Expire(now time.Time) (int, error) {
	total := 0
	for {
		var n int
		err := b.db.Update(func(tx *bolt.Tx) error {
			var err error
			n, err = expire(tx, now, sweepBatch)
			return err
		})
		total += n
		if err != nil {
			return total, b.wrap("expire", "", "", err)
		}
		if n < sweepBatch {
			return total, nil
		}
	}
}

// Done implements Store.
func (b *Bolt) Done(ctx context.Context, ns, id string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, b.wrap("done", ns, id, err)
	}
	var out []byte
	var ok bool
	err := b.db.View(func(tx *bolt.Tx) error {
		d := tx.Bucket(doneBucket(ns))
		if d == nil {
			return nil
		}
		r := d.Get([]byte(id))
		if r == nil {
			return nil
		}
		if len(r) < doneHeader {
			return fmt.Errorf("corrupt idempotency record %q", id)
		}
		if b.now().UnixNano() < recordExpiry(r) {
			out, ok = bytes.Clone(r[doneHeader:]), true
		}
		return nil
	})
	if err != nil {
		return nil, false, b.wrap("done", ns, id, err)
	}
	return out, ok, nil
}

// Close implements Store.
func (b *Bolt) Close() error { return b.db.Close() }

func doneTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return DefaultDoneTTL
	}
	return ttl
}

func encodeEntry(version uint64, w Write) []byte {
	v := make([]byte, entryHeader, entryHeader+len(w.Value))
	binary.BigEndian.PutUint64(v, version)
	if w.Delete {
		return v
	}
	v[8] = 1
	return append(v, w.Value...)
}

func decodeEntry(v []byte) (Entry, error) {
	version, err := entryVersion(v)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Version: version, Found: v[8] == 1}
	if e.Found {
		e.Value = append([]byte{}, v[entryHeader:]...)
	}
	return e, nil
}

// entryVersion is an entry's version, without copying its value.
func entryVersion(v []byte) (uint64, error) {
	if len(v) < entryHeader || v[8] > 1 {
		return 0, fmt.Errorf("corrupt entry of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// recordExpiry is a record's expiry in Unix nanoseconds; a record too
// short to hold one counts as expired.
func recordExpiry(r []byte) int64 {
	if len(r) < doneHeader {
		return 0
	}
	return int64(binary.BigEndian.Uint64(r))
}

func (b *Bolt) wrap(op, ns, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	return fmt.Errorf("state %s in %s: %w", describe(op, ns, key), b.path, err)
}
