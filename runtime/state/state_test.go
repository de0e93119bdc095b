package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/ferryrun/ferry/runtime/state/dynalitetest"
	"github.com/ferryrun/ferry/runtime/state/redistest"
)

type storeCase struct {
	name string
	open func(t testing.TB) Store
}

// stores is every Store implementation, each opened fresh (redis and
// dynamo on their own servers) and closed when the test ends.
func stores() []storeCase {
	return []storeCase{
		{"memory", func(testing.TB) Store { return NewMemory() }},
		{"bolt", func(t testing.TB) Store {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "sub", "state.db"))
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"redis", func(t testing.TB) Store { return openRedis(t, redistest.Start(t)) }},
		{"dynamo", func(t testing.TB) Store { return openDynamo(t, dynalitetest.Start(t)) }},
	}
}

func openRedis(t testing.TB, url string) *Redis {
	t.Helper()
	s, err := OpenRedis(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testCredentials are what dynalite wants: any.
var testCredentials = credentials.NewStaticCredentialsProvider("ferry", "ferry", "")

// openDynamo opens the table "ferry" at endpoint, creating it, with dummy
// credentials.
func openDynamo(t testing.TB, endpoint string, opts ...DynamoOption) *Dynamo {
	t.Helper()
	opts = append([]DynamoOption{WithDynamoCredentials(testCredentials)}, opts...)
	s, err := OpenDynamo(context.Background(), "dynamodb://ferry?region=eu-west-1&create=true&endpoint="+endpoint, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// eachStore runs f as a subtest against every store.
func eachStore(t *testing.T, f func(t *testing.T, s Store)) {
	for _, c := range stores() {
		t.Run(c.name, func(t *testing.T) { f(t, c.open(t)) })
	}
}

func TestStore_Contract(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		_, ok, err := s.Get(ctx, "job", "k")
		require.NoError(t, err)
		assert.False(t, ok)

		require.NoError(t, s.Set(ctx, "job", "k", []byte("v1")))
		v, ok, err := s.Get(ctx, "job", "k")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, "v1", string(v))

		// Namespaces are isolated.
		_, ok, err = s.Get(ctx, "other", "k")
		require.NoError(t, err)
		assert.False(t, ok)

		// An empty value is present, not absent.
		require.NoError(t, s.Set(ctx, "job", "empty", nil))
		v, ok, err = s.Get(ctx, "job", "empty")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Empty(t, v)

		require.NoError(t, s.Delete(ctx, "job", "k"))
		require.NoError(t, s.Delete(ctx, "job", "k"))
		require.NoError(t, s.Delete(ctx, "nobucket", "k"))
		_, ok, err = s.Get(ctx, "job", "k")
		require.NoError(t, err)
		assert.False(t, ok)

		require.NoError(t, s.Close())
		_, _, err = s.Get(ctx, "job", "k")
		assert.ErrorIs(t, err, ErrClosed)
		err = s.Commit(ctx, "job", &Commit{Writes: map[string]Write{"k": {Value: []byte("x")}}})
		assert.ErrorIs(t, err, ErrClosed)
		assert.NoError(t, s.Close(), "closing twice is harmless")
	})
}

func TestStore_Concurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					k := fmt.Sprintf("%d-%d", g, i)
					assert.NoError(t, s.Set(ctx, "ns", k, []byte(k)))
					v, ok, err := s.Get(ctx, "ns", k)
					assert.NoError(t, err)
					assert.True(t, ok)
					assert.Equal(t, k, string(v))
				}
			})
		}
		wg.Wait()
	})
}

func read(t *testing.T, s Store, ns, key string) Entry {
	t.Helper()
	e, err := s.Read(t.Context(), ns, key)
	require.NoError(t, err)
	return e
}

func TestStore_Read_Versions(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		assert.Equal(t, Entry{}, read(t, s, "job", "k"), "never written: absent at version 0")

		require.NoError(t, s.Set(ctx, "job", "k", []byte("a")))
		assert.Equal(t, Entry{Value: []byte("a"), Found: true, Version: 1}, read(t, s, "job", "k"))
		require.NoError(t, s.Set(ctx, "job", "k", []byte("b")))
		assert.Equal(t, Entry{Value: []byte("b"), Found: true, Version: 2}, read(t, s, "job", "k"))

		// A deletion keeps the version and raises it, so a version is
		// never seen twice.
		require.NoError(t, s.Delete(ctx, "job", "k"))
		assert.Equal(t, Entry{Version: 3}, read(t, s, "job", "k"))
		require.NoError(t, s.Delete(ctx, "job", "k"))
		assert.Equal(t, Entry{Version: 4}, read(t, s, "job", "k"))
		require.NoError(t, s.Delete(ctx, "job", "never"))
		assert.Equal(t, Entry{Version: 1}, read(t, s, "job", "never"))
		require.NoError(t, s.Set(ctx, "job", "k", []byte("c")))
		assert.Equal(t, Entry{Value: []byte("c"), Found: true, Version: 5}, read(t, s, "job", "k"))

		// A commit raises each key it writes by one.
		require.NoError(t, s.Commit(ctx, "job", &Commit{
			Reads:  map[string]uint64{"k": 5, "fresh": 0},
			Writes: map[string]Write{"k": {Value: []byte("d")}, "fresh": {Value: []byte("e")}},
		}))
		assert.Equal(t, uint64(6), read(t, s, "job", "k").Version)
		assert.Equal(t, uint64(1), read(t, s, "job", "fresh").Version)

		assert.Equal(t, Entry{}, read(t, s, "other", "k"), "versions are per namespace")
	})
}

func TestStore_Commit_ConflictAppliesNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		require.NoError(t, s.Set(ctx, "job", "a", []byte("a1")))
		require.NoError(t, s.Set(ctx, "job", "b", []byte("b1")))

		tests := []struct {
			name  string
			reads map[string]uint64
		}{
			{"read as absent, written since", map[string]uint64{"a": 1, "b": 0}},
			{"one bad read among current ones", map[string]uint64{"a": 1, "b": 1, "c": 0, "z": 1}},
			{"read from the future", map[string]uint64{"a": 2}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.Commit(ctx, "job", &Commit{
					Reads: tt.reads,
					Writes: map[string]Write{
						"a": {Value: []byte("a2")},
						"b": {Delete: true},
						"c": {Value: []byte("c1")},
					},
					Done:   "inv-" + tt.name,
					Output: []byte("out"),
				})
				require.ErrorIs(t, err, ErrConflict)
				assert.Equal(t, Entry{Value: []byte("a1"), Found: true, Version: 1}, read(t, s, "job", "a"))
				assert.Equal(t, Entry{Value: []byte("b1"), Found: true, Version: 1}, read(t, s, "job", "b"))
				assert.Equal(t, Entry{}, read(t, s, "job", "c"))
				_, ok, err := s.Done(ctx, "job", "inv-"+tt.name)
				require.NoError(t, err)
				assert.False(t, ok, "a conflicting commit records nothing")
			})
		}

		// With every version current the same commit goes through.
		require.NoError(t, s.Commit(ctx, "job", &Commit{
			Reads:  map[string]uint64{"a": 1, "b": 1, "c": 0},
			Writes: map[string]Write{"a": {Value: []byte("a2")}, "b": {Delete: true}, "c": {Value: []byte("c1")}},
		}))
		assert.Equal(t, Entry{Value: []byte("a2"), Found: true, Version: 2}, read(t, s, "job", "a"))
		assert.Equal(t, Entry{Version: 2}, read(t, s, "job", "b"))
		assert.Equal(t, Entry{Value: []byte("c1"), Found: true, Version: 1}, read(t, s, "job", "c"))
	})
}

func TestStore_Commit_DuplicateAppliesNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		require.NoError(t, s.Commit(ctx, "job", &Commit{
			Reads:  map[string]uint64{"a": 0},
			Writes: map[string]Write{"a": {Value: []byte("1")}},
			Done:   "inv-1", Output: []byte("first output"),
		}))
		out, ok, err := s.Done(ctx, "job", "inv-1")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, "first output", string(out))

		// The same invocation again, with reads that are current now.
		err = s.Commit(ctx, "job", &Commit{
			Reads:  map[string]uint64{"a": 1},
			Writes: map[string]Write{"a": {Value: []byte("2")}, "b": {Value: []byte("x")}},
			Done:   "inv-1", Output: []byte("second output"),
		})
		require.ErrorIs(t, err, ErrDuplicate)
		assert.Equal(t, Entry{Value: []byte("1"), Found: true, Version: 1}, read(t, s, "job", "a"))
		assert.Equal(t, Entry{}, read(t, s, "job", "b"))
		out, _, err = s.Done(ctx, "job", "inv-1")
		require.NoError(t, err)
		assert.Equal(t, "first output", string(out), "a duplicate does not replace the output")

		// A retried invocation whose reads are stale by now learns that
		// it already ran, not that it should run again.
		err = s.Commit(ctx, "job", &Commit{Reads: map[string]uint64{"a": 0}, Done: "inv-1"})
		assert.ErrorIs(t, err, ErrDuplicate)

		// Idempotency keys are per namespace; an empty output is an output.
		_, ok, err = s.Done(ctx, "other", "inv-1")
		require.NoError(t, err)
		assert.False(t, ok)
		require.NoError(t, s.Commit(ctx, "other", &Commit{Done: "inv-1"}))
		out, ok, err = s.Done(ctx, "other", "inv-1")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Empty(t, out)
		_, ok, err = s.Done(ctx, "job", "never")
		require.NoError(t, err)
		assert.False(t, ok)
	})
}

// fakeClock is a settable clock for the stores that take one.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// useClock makes s read clock, if s takes a clock; Redis expires keys on
// its own clock.
func useClock(s Store, clock *fakeClock) bool {
	switch s := s.(type) {
	case *Memory:
		s.now = clock.Now
	case *Bolt:
		s.now = clock.Now
	case *Dynamo:
		s.now = clock.Now
	default:
		return false
	}
	return true
}

func TestStore_Done_Expires(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
		fake := useClock(s, clock)
		expired := func(id string) {
			t.Helper()
			gone := func() bool {
				_, ok, err := s.Done(ctx, "job", id)
				require.NoError(t, err)
				return !ok
			}
			if fake {
				clock.Add(60 * time.Millisecond)
				assert.True(t, gone(), "%s has expired", id)
				return
			}
			assert.Eventually(t, gone, 5*time.Second, 10*time.Millisecond, "%s has expired", id)
		}

		require.NoError(t, s.Commit(ctx, "job", &Commit{Done: "inv", Output: []byte("o1"), TTL: 50 * time.Millisecond}))
		out, ok, err := s.Done(ctx, "job", "inv")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "o1", string(out))
		expired("inv")

		// Once expired, the key may commit again.
		require.NoError(t, s.Commit(ctx, "job", &Commit{Done: "inv", Output: []byte("o2"), TTL: time.Hour}))
		out, ok, err = s.Done(ctx, "job", "inv")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "o2", string(out))
		assert.ErrorIs(t, s.Commit(ctx, "job", &Commit{Done: "inv"}), ErrDuplicate)
	})
}

func TestStore_Done_DefaultTTL(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
		fake := useClock(s, clock)
		require.NoError(t, s.Commit(ctx, "job", &Commit{Done: "inv"}))
		if !fake {
			ttl, err := s.(*Redis).c.PTTL(ctx, doneKey("job", "inv")).Result()
			require.NoError(t, err)
			assert.InDelta(t, DefaultDoneTTL.Seconds(), ttl.Seconds(), 60)
			return
		}
		clock.Add(DefaultDoneTTL - time.Second)
		_, ok, err := s.Done(ctx, "job", "inv")
		require.NoError(t, err)
		assert.True(t, ok, "kept for DefaultDoneTTL")
		clock.Add(2 * time.Second)
		_, ok, err = s.Done(ctx, "job", "inv")
		require.NoError(t, err)
		assert.False(t, ok, "gone after DefaultDoneTTL")
	})
}

func TestBolt_Expire_SweepsOnlyExpired(t *testing.T) {
	ctx := t.Context()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	defer s.Close()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s.now = clock.Now

	for i := range 10 {
		require.NoError(t, s.Commit(ctx, "job", &Commit{Done: fmt.Sprint("old-", i), TTL: time.Minute}))
	}
	require.NoError(t, s.Commit(ctx, "job", &Commit{Done: "reused", TTL: time.Minute}))
	require.NoError(t, s.Commit(ctx, "job", &Commit{Done: "live", TTL: time.Hour}))
	clock.Add(2 * time.Minute)
	// "reused" expired and committed again: its old index entry must not
	// take the new record with it. This commit also sweeps a few.
	require.NoError(t, s.Commit(ctx, "job", &Commit{Done: "reused", TTL: time.Hour}))

	n, err := s.Expire(clock.Now())
	require.NoError(t, err)
	assert.Equal(t, 11-sweepPerCommit, n, "the expired entries the commit did not sweep")
	for _, id := range []string{"reused", "live"} {
		_, ok, err := s.Done(ctx, "job", id)
		require.NoError(t, err)
		assert.True(t, ok, id)
	}
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		assert.Equal(t, 2, tx.Bucket(doneBucket("job")).Stats().KeyN, "expired records are gone")
		assert.Equal(t, 2, tx.Bucket(expiryBucket).Stats().KeyN)
		return nil
	}))
	n, err = s.Expire(clock.Now())
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestTx_ReadYourWrites(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		require.NoError(t, s.Set(ctx, "job", "a", []byte("stored")))

		tx := Begin(s, "job")
		assert.False(t, tx.Dirty())
		tx.Set("a", []byte("mine"))
		assert.True(t, tx.Dirty())
		v, ok, err := tx.Get(ctx, "a")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, "mine", string(v))

		tx.Delete("a")
		_, ok, err = tx.Get(ctx, "a")
		require.NoError(t, err)
		assert.False(t, ok, "deleted in this transaction")
		v, _, err = s.Get(ctx, "job", "a")
		require.NoError(t, err)
		assert.Equal(t, "stored", string(v), "nothing reaches the store before Commit")

		require.NoError(t, tx.Commit(ctx, "", nil, 0))
		assert.Equal(t, Entry{Version: 2}, read(t, s, "job", "a"))
	})
}

func TestTx_Commit_ValidatesEveryRead(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		require.NoError(t, s.Set(ctx, "job", "a", []byte("1")))
		require.NoError(t, s.Set(ctx, "job", "b", []byte("1")))

		// Read-only, two keys: consistent reads pass, and a write
		// between the reads is caught.
		tx := Begin(s, "job")
		_, _, err := tx.Get(ctx, "a")
		require.NoError(t, err)
		_, _, err = tx.Get(ctx, "b")
		require.NoError(t, err)
		assert.NoError(t, tx.Commit(ctx, "", nil, 0))
		tx = Begin(s, "job")
		_, _, err = tx.Get(ctx, "a")
		require.NoError(t, err)
		require.NoError(t, s.Set(ctx, "job", "a", []byte("2")))
		_, _, err = tx.Get(ctx, "b")
		require.NoError(t, err)
		assert.ErrorIs(t, tx.Commit(ctx, "", nil, 0), ErrConflict)

		// Read-only, one key: always consistent, nothing to check.
		tx = Begin(s, "job")
		_, _, err = tx.Get(ctx, "a")
		require.NoError(t, err)
		require.NoError(t, s.Set(ctx, "job", "a", []byte("3")))
		assert.NoError(t, tx.Commit(ctx, "", nil, 0))

		// The first version read is the one checked, even after a
		// second read saw the newer one.
		tx = Begin(s, "job")
		_, _, err = tx.Get(ctx, "a")
		require.NoError(t, err)
		require.NoError(t, s.Set(ctx, "job", "a", []byte("4")))
		v, _, err := tx.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, "4", string(v))
		tx.Set("b", []byte("from a stale read"))
		assert.ErrorIs(t, tx.Commit(ctx, "", nil, 0), ErrConflict)
		v, _, err = s.Get(ctx, "job", "b")
		require.NoError(t, err)
		assert.Equal(t, "1", string(v))

		// A transaction that records its idempotency key goes through
		// the store even without reads or writes.
		tx = Begin(s, "job")
		require.NoError(t, tx.Commit(ctx, "inv", []byte("out"), time.Minute))
		assert.ErrorIs(t, Begin(s, "job").Commit(ctx, "inv", nil, time.Minute), ErrDuplicate)
	})
}

// increment adds one to the counter under key in a Get/Set transaction,
// run again on a conflict as the runtime does (wasmrt's Module.Invoke):
// the first retry goes at once, but the retries of one process take
// turns through gate, and later ones back off exponentially. It reports
// how many conflicts it met.
func increment(ctx context.Context, s Store, gate chan struct{}, key string) (conflicts int, err error) {
	for {
		if conflicts == 1 {
			gate <- struct{}{}
			defer func() { <-gate }()
		}
		tx := Begin(s, "job")
		v, _, err := tx.Get(ctx, key)
		if err != nil {
			return conflicts, err
		}
		n := 0
		if len(v) > 0 {
			if n, err = strconv.Atoi(string(v)); err != nil {
				return conflicts, err
			}
		}
		tx.Set(key, []byte(strconv.Itoa(n+1)))
		err = tx.Commit(ctx, "", nil, 0)
		if !errors.Is(err, ErrConflict) {
			return conflicts, err
		}
		conflicts++
		if conflicts > 1 {
			d := 50 * time.Microsecond << min(conflicts-2, 9)
			time.Sleep(d/2 + mrand.N(d))
		}
	}
}

// TestStore_Commit_ConcurrentIncrementsLoseNothing is why transactions
// exist: many concurrent read-modify-write updates of one key, each
// retried on conflict, add up exactly.
func TestStore_Commit_ConcurrentIncrementsLoseNothing(t *testing.T) {
	type clients struct {
		name string
		open func(t testing.TB) []Store
	}
	var cases []clients
	for _, c := range stores() {
		cases = append(cases, clients{c.name, func(t testing.TB) []Store { return []Store{c.open(t)} }})
	}
	// Two clients of one server stand for two hosts sharing the store.
	cases = append(cases, clients{"redis two clients", func(t testing.TB) []Store {
		url := redistest.Start(t)
		return []Store{openRedis(t, url), openRedis(t, url)}
	}}, clients{"dynamo two clients", func(t testing.TB) []Store {
		endpoint := dynalitetest.Start(t)
		return []Store{openDynamo(t, endpoint), openDynamo(t, endpoint)}
	}})

	const workers, total = 32, 1000
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			ss := c.open(t)
			// One gate per client: each stands for a process.
			gates := make([]chan struct{}, len(ss))
			for i := range gates {
				gates[i] = make(chan struct{}, 1)
			}
			var conflicts atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				s, gate := ss[w%len(ss)], gates[w%len(ss)]
				n := total / workers
				if w < total%workers {
					n++
				}
				wg.Go(func() {
					for range n {
						k, err := increment(ctx, s, gate, "counter")
						conflicts.Add(int64(k))
						if !assert.NoError(t, err) {
							return
						}
					}
				})
			}
			wg.Wait()
			e := read(t, ss[0], "job", "counter")
			assert.Equal(t, strconv.Itoa(total), string(e.Value))
			assert.Equal(t, uint64(total), e.Version, "one version per successful commit")
			t.Logf("%d conflicts retried", conflicts.Load())
		})
	}
}

func TestStore_HostileInput(t *testing.T) {
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	keys := []string{
		"\x00", "\xff\xfe\x00binary", "a}b{c", "{job}", "ferry:{job}:k:x", "done:inv",
		"with space", "line\nbreak", "ünïcödé", string(all),
	}
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		for i, k := range keys {
			require.NoError(t, s.Set(ctx, "job", k, []byte(fmt.Sprint("value ", i))), "%q", k)
		}
		for i, k := range keys {
			v, ok, err := s.Get(ctx, "job", k)
			require.NoError(t, err)
			assert.True(t, ok, "%q", k)
			assert.Equal(t, fmt.Sprint("value ", i), string(v), "%q", k)
		}

		require.NoError(t, s.Set(ctx, "job", "binary", all))
		big := big
		if _, ok := s.(*Dynamo); ok {
			// A DynamoDB item holds at most 400 KB: a bigger value is
			// refused, before anything is written.
			err := s.Set(ctx, "job", "big", big)
			require.ErrorContains(t, err, "do not fit in a DynamoDB item")
			err = s.Commit(ctx, "job", &Commit{Writes: map[string]Write{"big2": {Value: big}, "nil": {Value: nil}}})
			require.ErrorContains(t, err, "do not fit in a DynamoDB item")
			assert.Equal(t, Entry{}, read(t, s, "job", "nil"))
			big = big[:300<<10]
		}
		require.NoError(t, s.Set(ctx, "job", "big", big))
		require.NoError(t, s.Set(ctx, "job", "empty", []byte{}))
		require.NoError(t, s.Commit(ctx, "job", &Commit{
			Writes: map[string]Write{"big2": {Value: big}, "nil": {Value: nil}},
			Done:   string(all), Output: all,
		}))
		assert.Equal(t, Entry{Value: all, Found: true, Version: 1}, read(t, s, "job", "binary"))
		for _, k := range []string{"big", "big2"} {
			e := read(t, s, "job", k)
			assert.True(t, e.Found)
			assert.True(t, bytes.Equal(big, e.Value), "the %d-byte value %s comes back whole", len(big), k)
		}
		for _, k := range []string{"empty", "nil"} {
			e := read(t, s, "job", k)
			assert.True(t, e.Found, "%s: an empty value is present", k)
			assert.Empty(t, e.Value)
		}
		assert.False(t, read(t, s, "job", "absent").Found)
		out, ok, err := s.Done(ctx, "job", string(all))
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, all, out)

		// A key named like a record is still a key, and the reverse.
		_, ok, err = s.Done(ctx, "job", "inv")
		require.NoError(t, err)
		assert.False(t, ok)
		assert.Equal(t, Entry{}, read(t, s, "job", "\xff"), "a prefix of a key is another key")
	})
}

func TestOpen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	closedPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}()

	tests := []struct {
		name    string
		spec    func(t *testing.T) string
		want    string // the store's type
		wantErr string
		is      error
	}{
		{name: "memory", spec: func(*testing.T) string { return "memory" }, want: "*state.Memory"},
		{name: "path", spec: func(*testing.T) string { return filepath.Join(dir, "a", "state.db") }, want: "*state.Bolt"},
		{name: "file URL", spec: func(*testing.T) string { return "file://" + filepath.Join(dir, "b.db") }, want: "*state.Bolt"},
		{name: "redis", spec: func(t *testing.T) string { return redistest.Start(t) }, want: "*state.Redis"},
		{name: "dynamodb", spec: func(t *testing.T) string {
			return "dynamodb://ferry?region=eu-west-1&create=true&endpoint=" + dynamoEnv(t)
		}, want: "*state.Dynamo"},
		{name: "dynamodb missing table", spec: func(t *testing.T) string {
			return "dynamodb://missing?region=eu-west-1&endpoint=" + dynamoEnv(t)
		}, wantErr: "create=true"},
		{name: "dynamodb bad endpoint", spec: func(*testing.T) string { return "dynamodb://table?endpoint=file:///etc" },
			wantErr: "want http:// or https://"},
		{name: "unknown scheme", spec: func(*testing.T) string { return "s3://u:s3cret@bucket/x" },
			wantErr: "s3:// is not supported", is: errors.ErrUnsupported},
		{name: "empty", spec: func(*testing.T) string { return "" }, wantErr: "no store named"},
		{name: "file URL without path", spec: func(*testing.T) string { return "file://" }, wantErr: "no path"},
		{name: "redis unreachable", spec: func(*testing.T) string { return "redis://u:s3cret@127.0.0.1:" + closedPort + "/0" },
			wantErr: "redis does not answer"},
		{name: "redis bad port", spec: func(*testing.T) string { return "redis://u:s3cret@127.0.0.1:port/0" },
			wantErr: "not a URL"},
		{name: "redis bad db", spec: func(*testing.T) string { return "redis://u:s3cret@127.0.0.1:" + closedPort + "/x" },
			wantErr: "invalid database number"},
		{name: "redis without host", spec: func(*testing.T) string { return "redis:///0" }, wantErr: "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.spec(t))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), "s3cret", "errors never show a password")
				if tt.is != nil {
					assert.ErrorIs(t, err, tt.is)
				}
				return
			}
			require.NoError(t, err)
			defer s.Close()
			assert.Equal(t, tt.want, fmt.Sprintf("%T", s))
			require.NoError(t, s.Set(ctx, "job", "k", []byte("v")))
		})
	}
}

// dynamoEnv starts a dynalite and gives the SDK's default chain dummy
// credentials and nothing else (no profile files, no instance metadata),
// as Open uses it.
func dynamoEnv(t *testing.T) (endpoint string) {
	endpoint = dynalitetest.Start(t)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "ferry",
		"AWS_SECRET_ACCESS_KEY":       "ferry",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(t.TempDir(), "none"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	return endpoint
}

func TestRedacted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://user:s3cret@host:6380/2", "redis://user:xxxxx@host:6380/2"},
		{"rediss://:s3cret@host:6380", "rediss://:xxxxx@host:6380"},
		{"redis://host:6380/0", "redis://host:6380/0"},
		{"redis://u:s3cret@host:bad port", "(unparsable URL)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Redacted(tt.in), tt.in)
	}
}

func TestRedis_Commit_TooManyKeys(t *testing.T) {
	s := openRedis(t, redistest.Start(t))
	w := map[string]Write{}
	for i := range maxRedisCommitKeys + 1 {
		w[strconv.Itoa(i)] = Write{Value: []byte("v")}
	}
	err := s.Commit(t.Context(), "job", &Commit{Writes: w})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "at most")
	assert.Equal(t, Entry{}, read(t, s, "job", "0"))
}

func TestBolt_PersistsAndLocks(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenBolt(path)
	require.NoError(t, err)
	require.NoError(t, s.Set(ctx, "job", "k", []byte("kept")))
	require.NoError(t, s.Commit(ctx, "job", &Commit{Done: "inv", Output: []byte("out")}))

	_, err = OpenBolt(path)
	assert.ErrorIs(t, err, ErrLocked, "a second opener must not hang or corrupt")

	require.NoError(t, s.Close())
	s, err = OpenBolt(path)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, Entry{Value: []byte("kept"), Found: true, Version: 1}, read(t, s, "job", "k"))
	out, ok, err := s.Done(ctx, "job", "inv")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "out", string(out))
}

func TestBolt_Commit_RefusesReservedNamespace(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	defer s.Close()
	for _, ns := range []string{"", "\x00meta", "\x00done/job"} {
		err := s.Set(t.Context(), ns, "k", []byte("v"))
		assert.ErrorContains(t, err, "invalid namespace", "%q", ns)
	}
	_, err = s.Expire(time.Now())
	assert.NoError(t, err, "the file's own buckets are intact")
}

func TestOpenBolt_UpgradesUnversionedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	// A file as ferry wrote it before entries had versions.
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("job"))
		require.NoError(t, err)
		require.NoError(t, b.Put([]byte("k"), []byte("legacy")))
		return b.Put([]byte("empty"), []byte{})
	}))
	require.NoError(t, db.Close())

	for range 2 { // a second open must not convert again
		s, err := OpenBolt(path)
		require.NoError(t, err)
		assert.Equal(t, Entry{Value: []byte("legacy"), Found: true, Version: 1}, read(t, s, "job", "k"))
		e := read(t, s, "job", "empty")
		assert.True(t, e.Found)
		assert.Empty(t, e.Value)
		require.NoError(t, s.Close())
	}

	// A format this code does not know is refused, not misread.
	db, err = bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket(metaBucket).Put(formatKey, []byte{9}) }))
	require.NoError(t, db.Close())
	_, err = OpenBolt(path)
	assert.ErrorContains(t, err, "unknown state file format")
}

func BenchmarkStore_Read(b *testing.B) {
	for _, c := range stores() {
		b.Run(c.name, func(b *testing.B) {
			ctx := b.Context()
			s := c.open(b)
			require.NoError(b, s.Set(ctx, "job", "k", []byte("a value of some 32 bytes length.")))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Read(ctx, "job", "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStore_Commit is one invocation's commit of a one-key
// read-modify-write: the version read is checked and the key written.
func BenchmarkStore_Commit(b *testing.B) {
	for _, c := range stores() {
		b.Run(c.name, func(b *testing.B) {
			ctx := b.Context()
			s := c.open(b)
			value := []byte("a value of some 32 bytes length.")
			var version uint64
			b.ReportAllocs()
			for b.Loop() {
				err := s.Commit(ctx, "job", &Commit{
					Reads:  map[string]uint64{"k": version},
					Writes: map[string]Write{"k": {Value: value}},
				})
				if err != nil {
					b.Fatal(err)
				}
				version++
			}
		})
	}
}
