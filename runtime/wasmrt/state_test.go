package wasmrt

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/state"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// Concurrent get-then-set increments lose nothing: each invocation is a
// transaction, and one whose read went stale runs again.
func TestModule_Invoke_ConcurrentIncrementsLoseNothing(t *testing.T) {
	ctx := context.Background()
	store := state.NewMemory()
	r := newRuntime(t, Config{State: store})
	m := load(t, r, goJob(t, "counter", examples.Reactor), ModuleConfig{Name: "counter", PoolSize: 8})

	const calls, workers = 400, 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	retried := 0
	errs := make(chan error, calls)
	next := make(chan int, calls)
	for i := range calls {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				res, err := m.Invoke(ctx, nil)
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				seen[string(res.Output)] = true
				if res.Attempts > 1 {
					retried++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	v, ok, err := store.Get(ctx, "counter", "counter")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, strconv.Itoa(calls), string(v))
	// Serializable: every call saw a different counter value, 1…calls.
	assert.Len(t, seen, calls)
	for i := 1; i <= calls; i++ {
		assert.True(t, seen[strconv.Itoa(i)], "no call returned %d", i)
	}
	t.Logf("%d of %d calls ran again after a conflict", retried, calls)
}

// An idempotency key makes the effect happen once: a second delivery gets
// the first one's output without running.
func TestModule_Invoke_IdempotencyKey(t *testing.T) {
	ctx := context.Background()
	store := state.NewMemory()
	r := newRuntime(t, Config{State: store})
	m := load(t, r, goJob(t, "counter", examples.Reactor), ModuleConfig{Name: "counter"})

	first, err := m.Invoke(ctx, []byte("5"), WithIdempotencyKey("sub-1"))
	require.NoError(t, err)
	assert.Equal(t, "5", string(first.Output))
	assert.False(t, first.Replayed)

	again, err := m.Invoke(ctx, []byte("5"), WithIdempotencyKey("sub-1"))
	require.NoError(t, err)
	assert.Equal(t, "5", string(again.Output))
	assert.True(t, again.Replayed)

	other, err := m.Invoke(ctx, []byte("5"), WithIdempotencyKey("sub-2"))
	require.NoError(t, err)
	assert.Equal(t, "10", string(other.Output))

	// Concurrent deliveries of one key: exactly one takes effect, and all
	// get its output.
	var wg sync.WaitGroup
	outs := make([]string, 8)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := m.Invoke(ctx, []byte("1"), WithIdempotencyKey("sub-3"))
			if assert.NoError(t, err) {
				outs[i] = string(res.Output)
			}
		}()
	}
	wg.Wait()
	for _, o := range outs {
		assert.Equal(t, "11", o)
	}
	v, _, err := store.Get(ctx, "counter", "counter")
	require.NoError(t, err)
	assert.Equal(t, "11", string(v))

	// A failed job commits nothing, and records no key: a retry runs.
	_, err = m.Invoke(ctx, []byte("nope"), WithIdempotencyKey("sub-4"))
	require.ErrorIs(t, err, ErrGuestError)
	_, ok, err := store.Done(ctx, "counter", "sub-4")
	require.NoError(t, err)
	assert.False(t, ok)
}

// conflictStore fails every commit with a conflict.
type conflictStore struct{ state.Store }

func (conflictStore) Commit(context.Context, string, *state.Commit) error { return state.ErrConflict }

func TestModule_Invoke_ContentionIsBounded(t *testing.T) {
	r := newRuntime(t, Config{State: conflictStore{state.NewMemory()}})
	m := load(t, r, goJob(t, "counter", examples.Reactor), ModuleConfig{Name: "counter", Limits: Limits{MaxStateAttempts: 3}})
	res, err := m.Invoke(context.Background(), nil)
	require.ErrorIs(t, err, ErrContention)
	assert.Nil(t, res)
	var je *JobError
	assert.False(t, errors.As(err, &je), "contention is the host's failure, not the job's")
}

// boundedStore is a store whose backend caps entries, as DynamoDB's does.
type boundedStore struct {
	state.Store
	limits state.Limits
}

func (b boundedStore) StoreLimits() state.Limits { return b.limits }

// A store's own bounds lower a module's state limits, so an oversized
// value is refused where the job writes it; a store without bounds leaves
// the limits alone.
func TestLoad_StoreBoundsLowerStateLimits(t *testing.T) {
	r := newRuntime(t, Config{State: boundedStore{state.NewMemory(), state.Limits{MaxValueBytes: 100, MaxCommitBytes: 200}}})
	m := load(t, r, wat(t, "echo"), ModuleConfig{Name: "echo"})
	assert.Equal(t, 100, m.Limits().MaxStateValueBytes)
	assert.Equal(t, 200, m.Limits().MaxStateWriteBytes)

	m = load(t, r, wat(t, "echo"), ModuleConfig{Name: "echo2", Limits: Limits{MaxStateValueBytes: 50}})
	assert.Equal(t, 50, m.Limits().MaxStateValueBytes, "a lower limit of the job's stays")

	plain := newRuntime(t, Config{State: state.NewMemory()})
	m = load(t, plain, wat(t, "echo"), ModuleConfig{Name: "echo"})
	assert.Equal(t, DefaultMaxStateValueBytes, m.Limits().MaxStateValueBytes)
	assert.Equal(t, DefaultMaxStateWriteBytes, m.Limits().MaxStateWriteBytes)
}
