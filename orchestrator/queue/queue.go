// Package queue is the durable asynchronous queue of `ferry serve`: a
// submitted invocation is written to the orchestrator's bbolt file before
// Submit returns, runs on one of a fixed set of workers in submission
// order, and keeps its result for a TTL so the caller can fetch it later.
//
// It survives a crash: queued invocations run after the restart, and
// invocations that were running are run again when their job is safe to
// run twice and failed as "interrupted" when it is not. Idempotency keys,
// scoped per job, make a client's retried submission return the first
// one instead of running the job again.
//
// What runs an invocation (routing, hosts, state) is not here: the caller
// passes a Runner to Start. Nor is HTTP: orchestrator/api serves this.
package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Config tunes a Queue. The zero value gives the defaults.
type Config struct {
	// TTL is how long a finished invocation, and its idempotency key, is
	// kept after it finished; 0: 24h.
	TTL time.Duration
	// MaxPending caps queued plus running invocations; Submit beyond it
	// fails with ErrFull. 0: 10,000.
	MaxPending int
	// MaxInputBytes caps an input; Submit beyond it fails with
	// ErrTooLarge. 0: 8 MiB.
	MaxInputBytes int
	// Workers is how many invocations run at once; 0: 2 × GOMAXPROCS.
	Workers int
	// SweepInterval is how often expired invocations are deleted; 0: one
	// minute. Get hides an expired invocation before it is deleted.
	SweepInterval time.Duration
	// Logger may be nil.
	Logger *slog.Logger
	// Now is the clock, for tests; nil: time.Now.
	Now func() time.Time
}

// Defaults for the zero Config.
const (
	DefaultTTL           = 24 * time.Hour
	DefaultMaxPending    = 10_000
	DefaultMaxInputBytes = 8 << 20
	DefaultSweepInterval = time.Minute
)

// maxKeyBytes caps an idempotency key; clients send UUIDs or hashes.
const maxKeyBytes = 256

func (c Config) withDefaults() (Config, error) {
	if c.TTL < 0 || c.MaxPending < 0 || c.MaxInputBytes < 0 || c.Workers < 0 || c.SweepInterval < 0 {
		return c, errors.New("negative value in config")
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxInputBytes == 0 {
		c.MaxInputBytes = DefaultMaxInputBytes
	}
	if c.Workers == 0 {
		c.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Status is where an invocation is in its life.
type Status string

// The statuses, in order. Succeeded and failed are final.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
)

// Finished reports whether s is final.
func (s Status) Finished() bool { return s == StatusSucceeded || s == StatusFailed }

// Invocation is one submitted call and, once it has run, its result. Its
// JSON is what GET /v1/invocations/{id} answers. The input is stored apart
// until the invocation finishes and is never part of it.
type Invocation struct {
	// ID is unique, URL-safe, and sorts in submission order.
	ID             string `json:"id"`
	Job            string `json:"job"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	Status         Status `json:"status"`
	// Output is the job's output (base64 in JSON).
	Output []byte `json:"output,omitempty"`
	// Error and ErrorKind describe a failure: the Runner's, or
	// KindInterrupted or KindPanic.
	Error     string `json:"error,omitempty"`
	ErrorKind string `json:"error_kind,omitempty"`
	// Attempts counts the times a worker started it: more than one only
	// when a crash interrupted it and it was run again.
	Attempts int `json:"attempts"`
	// RanOn is the target that ran it, DecisionID the router's decision.
	RanOn       string     `json:"ran_on,omitempty"`
	DecisionID  string     `json:"decision_id,omitempty"`
	SubmittedAt time.Time  `json:"submitted_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// ExpiresAt is FinishedAt + TTL; after it the invocation is gone.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Recovered is true when a crash interrupted a run and it was queued
	// again.
	Recovered bool `json:"recovered,omitempty"`
}

func (inv *Invocation) expired(now time.Time) bool {
	return inv.ExpiresAt != nil && !now.Before(*inv.ExpiresAt)
}

// Outcome is what a Runner reports. A nil Err is success.
type Outcome struct {
	Output []byte
	Err    error
	// ErrorKind classifies Err for the API ("timeout", "limit"…).
	ErrorKind  string
	RanOn      string
	DecisionID string
}

// Runner runs one invocation. inv is a copy the Runner may keep; inv.ID is
// the invocation's idempotency key towards the job's state store, so that
// a stateful job run again after a crash takes effect once. ctx is
// cancelled when Close gives up waiting.
type Runner func(ctx context.Context, inv *Invocation, input []byte) Outcome

// Queue is the durable queue. It is safe for concurrent use.
type Queue struct {
	db   *bolt.DB
	cfg  Config
	log  *slog.Logger
	wake chan struct{} // a Submit tells idle workers there is work
	stop chan struct{} // closed by Close: workers and janitor stop

	mu      sync.Mutex
	queued  int
	running int
	closed  bool

	// All writes go through the writer goroutine (writer.go). writeMu
	// guards abandoned and the closing of writes: senders hold it for
	// reading, Close for writing.
	writes     chan write
	writerDone chan struct{}
	writeMu    sync.RWMutex
	abandoned  bool

	lifeMu     sync.Mutex // serialises Start and Close
	started    bool
	cancelRuns context.CancelFunc
	wg         sync.WaitGroup // workers and the janitor
}

// Open returns the queue kept in db (the orchestrator's bbolt file, shared
// with its registry), creating its buckets and counting what is queued and
// running. It does not run anything until Start. The caller owns db and
// closes it after Close.
func Open(db *bolt.DB, cfg Config) (*Queue, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("queue: open: %w", err)
	}
	q := &Queue{db: db, cfg: cfg, log: cfg.Logger,
		wake: make(chan struct{}, cfg.Workers), stop: make(chan struct{}),
		writes: make(chan write, maxBatch), writerDone: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		b := bucketsIn(tx)
		q.queued = b.pending.Stats().KeyN
		q.running = b.running.Stats().KeyN
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: open: %w", err)
	}
	go q.writer()
	return q, nil
}

// Submit queues a call of job with input. It is durable when it returns:
// the invocation runs even if the process dies right after.
//
// With an idempotency key, a second Submit of the same job and key
// returns the first invocation, in whatever state, with created false —
// until it expires, and then the key is free again. The same key with a
// different input fails with ErrIdempotencyMismatch. Without a key every
// Submit creates an invocation.
//
// ctx is only checked on entry: a Submit that has begun writing finishes.
func (q *Queue) Submit(ctx context.Context, job string, input []byte, idempotencyKey string) (inv *Invocation, created bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("queue: submit %s: %w", job, err)
	}
	switch {
	case job == "":
		return nil, false, fmt.Errorf("queue: submit: no job name: %w", ErrInvalid)
	case len(idempotencyKey) > maxKeyBytes:
		return nil, false, fmt.Errorf("queue: submit %s: idempotency key over %d bytes: %w", job, maxKeyBytes, ErrInvalid)
	case len(input) > q.cfg.MaxInputBytes:
		return nil, false, fmt.Errorf("queue: submit %s: %d bytes, the limit is %d: %w", job, len(input), q.cfg.MaxInputBytes, ErrTooLarge)
	}
	// The slot is taken before the transaction so the cap is exact under
	// concurrent Submits; a full queue still answers an idempotent retry.
	reserved, err := q.reserve()
	if err != nil {
		return nil, false, fmt.Errorf("queue: submit %s: %w", job, err)
	}
	var digest []byte
	if idempotencyKey != "" {
		sum := sha256.Sum256(input)
		digest = sum[:]
	}
	now := q.now()
	var refused error
	err = q.update(func(tx *bolt.Tx) error {
		inv, created, refused = nil, false, nil
		b := bucketsIn(tx)
		if idempotencyKey != "" {
			existing, storedDigest, err := b.byKey(job, idempotencyKey)
			if err != nil {
				return err
			}
			if existing != nil && !existing.expired(now) {
				if !bytes.Equal(storedDigest, digest) {
					refused = ErrIdempotencyMismatch
					return nil
				}
				inv = existing
				return nil
			}
			if existing != nil {
				// Expired but not yet swept: forget it, and the key is free.
				if err := b.delete(existing); err != nil {
					return err
				}
			}
		}
		if !reserved {
			refused = ErrFull
			return nil
		}
		seq, err := b.invocations.NextSequence()
		if err != nil {
			return err
		}
		id, err := newID(seq)
		if err != nil {
			return err
		}
		inv = &Invocation{ID: id, Job: job, IdempotencyKey: idempotencyKey, Status: StatusQueued, SubmittedAt: now}
		if err := b.insert(inv, input, digest); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		created = false // not committed
	} else {
		err = refused
	}
	if !created && reserved {
		q.release()
	}
	if err != nil {
		return nil, false, fmt.Errorf("queue: submit %s: %w", job, err)
	}
	if created {
		select {
		case q.wake <- struct{}{}:
		default: // every idle worker has a wake-up pending already
		}
	}
	return inv, created, nil
}

// Get returns the invocation with id. An expired one is ErrNotFound even
// before the janitor deletes it.
func (q *Queue) Get(id string) (*Invocation, error) {
	var inv *Invocation
	err := q.db.View(func(tx *bolt.Tx) error {
		var err error
		inv, err = bucketsIn(tx).get(id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("queue: get %s: %w", id, err)
	}
	if inv == nil || inv.expired(q.now()) {
		return nil, fmt.Errorf("queue: get %s: %w", id, ErrNotFound)
	}
	return inv, nil
}

// Depth returns how many invocations are queued and running. It reads
// counters kept in memory (counted at Open), so it is cheap enough for
// every metrics scrape and routing decision. They follow each commit, so
// for a moment after Get shows an invocation finished it may still count
// as running.
func (q *Queue) Depth() (queued, running int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued, q.running
}

// reserve counts a new queued invocation if there is room; false when
// there is not.
func (q *Queue) reserve() (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false, ErrClosed
	}
	if q.queued+q.running >= q.cfg.MaxPending {
		return false, nil
	}
	q.queued++
	return true, nil
}

func (q *Queue) release() { q.count(-1, 0) }

func (q *Queue) count(queued, running int) {
	q.mu.Lock()
	q.queued += queued
	q.running += running
	q.mu.Unlock()
}

// now strips the monotonic reading so stored and in-memory times compare
// equal.
func (q *Queue) now() time.Time { return q.cfg.Now().UTC() }
