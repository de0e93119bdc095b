package queue

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The queue's buckets in the orchestrator's bbolt file. Keys are
// invocation IDs unless said otherwise; IDs sort by submission, so a
// cursor over pending is the FIFO.
var (
	// id → Invocation as JSON.
	invocationsBucket = []byte("queue/invocations")
	// id → input, until the invocation finishes.
	inputsBucket = []byte("queue/inputs")
	// id → nothing: queued, in submission order.
	pendingBucket = []byte("queue/pending")
	// id → nothing: marked running; after a crash, interrupted.
	runningBucket = []byte("queue/running")
	// idempotencyKey(job, key) → sha256(input) ‖ id.
	idempotencyBucket = []byte("queue/idempotency")
	// expiryKey(ExpiresAt, id) → nothing: finished, oldest expiry first.
	expiryBucket = []byte("queue/expiry")

	allBuckets = [][]byte{invocationsBucket, inputsBucket, pendingBucket, runningBucket, idempotencyBucket, expiryBucket}
)

// buckets is the queue's buckets in one transaction.
type buckets struct {
	invocations, inputs, pending, running, idempotency, expiry *bolt.Bucket
}

func bucketsIn(tx *bolt.Tx) buckets {
	return buckets{
		invocations: tx.Bucket(invocationsBucket),
		inputs:      tx.Bucket(inputsBucket),
		pending:     tx.Bucket(pendingBucket),
		running:     tx.Bucket(runningBucket),
		idempotency: tx.Bucket(idempotencyBucket),
		expiry:      tx.Bucket(expiryBucket),
	}
}

// newID is the sequence number, big-endian, then 8 random bytes, in hex:
// sortable by submission, and unguessable and unique even if the file is
// replaced and the sequence starts again.
func newID(seq uint64) (string, error) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seq)
	if _, err := rand.Read(b[8:]); err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// idempotencyKey scopes key to job; the length prefix keeps ("a", "bc")
// and ("ab", "c") apart.
func idempotencyKey(job, key string) []byte {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(job)+len(key)), uint64(len(job)))
	return append(append(b, job...), key...)
}

// expiryKey sorts by expiry time, then by id.
func expiryKey(at time.Time, id string) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(max(at.UnixNano(), 0)))
	return append(b, id...)
}

func expiryTime(key []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(key[:8]))).UTC()
}

// get returns the invocation with id, or nil.
func (b buckets) get(id string) (*Invocation, error) {
	if id == "" {
		return nil, nil
	}
	v := b.invocations.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	inv := &Invocation{}
	if err := json.Unmarshal(v, inv); err != nil {
		return nil, fmt.Errorf("decode invocation %s: %w", id, err)
	}
	return inv, nil
}

// byKey returns the invocation job's idempotency key points at, with the
// digest of its input; nil if there is none.
func (b buckets) byKey(job, key string) (*Invocation, []byte, error) {
	v := b.idempotency.Get(idempotencyKey(job, key))
	if v == nil {
		return nil, nil, nil
	}
	if len(v) < 32 {
		return nil, nil, fmt.Errorf("corrupt idempotency entry for %s %q", job, key)
	}
	inv, err := b.get(string(v[32:]))
	if err != nil || inv == nil {
		return nil, nil, err
	}
	return inv, bytes.Clone(v[:32]), nil
}

func (b buckets) put(inv *Invocation) error {
	v, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encode invocation %s: %w", inv.ID, err)
	}
	return b.invocations.Put([]byte(inv.ID), v)
}

// insert stores a new queued invocation; digest is sha256(input) when it
// has an idempotency key.
func (b buckets) insert(inv *Invocation, input, digest []byte) error {
	id := []byte(inv.ID)
	if err := b.put(inv); err != nil {
		return err
	}
	if err := b.inputs.Put(id, input); err != nil {
		return err
	}
	if err := b.pending.Put(id, nil); err != nil {
		return err
	}
	if inv.IdempotencyKey == "" {
		return nil
	}
	return b.idempotency.Put(idempotencyKey(inv.Job, inv.IdempotencyKey), append(digest, id...))
}

// finish stores a running invocation's final state and schedules its
// expiry; inv.ExpiresAt must be set.
func (b buckets) finish(inv *Invocation) error {
	id := []byte(inv.ID)
	if err := b.put(inv); err != nil {
		return err
	}
	if err := b.running.Delete(id); err != nil {
		return err
	}
	if err := b.inputs.Delete(id); err != nil {
		return err
	}
	return b.expiry.Put(expiryKey(*inv.ExpiresAt, inv.ID), nil)
}

// delete removes every trace of a finished invocation. (Queued and
// running ones are never deleted: Depth's counters would go wrong.)
func (b buckets) delete(inv *Invocation) error {
	if err := b.invocations.Delete([]byte(inv.ID)); err != nil {
		return err
	}
	if err := b.expiry.Delete(expiryKey(*inv.ExpiresAt, inv.ID)); err != nil {
		return err
	}
	if inv.IdempotencyKey == "" {
		return nil
	}
	// The key may already name a newer invocation; leave that one's.
	k := idempotencyKey(inv.Job, inv.IdempotencyKey)
	if v := b.idempotency.Get(k); len(v) >= 32 && string(v[32:]) == inv.ID {
		return b.idempotency.Delete(k)
	}
	return nil
}
