package wasmrt

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestModule_Invoke_NoLeaks runs 10,000 failing invocations (traps, timeouts,
// memory bombs, stack overflows, guest errors, mixed) and checks that
// goroutines and heap come back to their baseline, and that the runtime still
// serves a good call afterwards.
func TestModule_Invoke_NoLeaks(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	ctx := context.Background()
	r := newRuntime(t, Config{})
	lim := Limits{Timeout: 2 * time.Millisecond, MaxMemoryBytes: 1 << 20}
	mods := map[string]*Module{}
	for _, name := range []string{"trap", "loop", "membomb", "guesterror", "badoutput", "exit3", "echo"} {
		mods[name] = load(t, r, wat(t, name), ModuleConfig{Limits: lim})
	}
	// Stack overflows take wazero ~1 s of call depth each; a few are enough
	// to show they leak nothing.
	stack := load(t, r, wat(t, "stackoverflow"), ModuleConfig{PoolSize: -1})
	failing := []string{"trap", "membomb", "guesterror", "badoutput", "exit3", "trap", "membomb", "loop"}

	settle := func() (int, uint64) {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
		}
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	// Warm up so lazily allocated runtime structures are in the baseline.
	for _, name := range failing {
		_, _ = mods[name].Invoke(ctx, nil)
	}
	baseG, baseHeap := settle()

	for i := range n {
		name := failing[i%len(failing)]
		_, err := mods[name].Invoke(ctx, nil)
		require.Error(t, err, "%s must fail", name)
		var je *JobError
		require.ErrorAs(t, err, &je, "%s: a job error, never a host error: %v", name, err)
	}
	for range 3 {
		_, err := stack.Invoke(ctx, nil)
		require.ErrorIs(t, err, ErrTrap)
	}
	res, err := mods["echo"].Invoke(ctx, []byte("alive"))
	require.NoError(t, err)
	assert.Equal(t, "alive", string(res.Output))

	g, heap := settle()
	t.Logf("goroutines %d -> %d, heap %d KiB -> %d KiB after %d failing calls", baseG, g, baseHeap>>10, heap>>10, n)
	assert.LessOrEqual(t, g, baseG+2, "goroutines leaked")
	assert.Less(t, heap, baseHeap+4<<20, "heap grew by more than 4 MiB")
}
