package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/local"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/state/redistest"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// 1,000 concurrent increments of the counter example, half on the local
// host and half on a real `ferry host serve` process, both keeping state
// in one real redis-server: the counter ends at exactly 1,000, and every
// call saw a different value (the calls were serializable).
func TestState_ConcurrentIncrementsAcrossHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	redisURL := redistest.Start(t)
	dir := t.TempDir()
	hp := startHost(t, filepath.Join(dir, "host"), "tok", "--state", redisURL)
	assert.Contains(t, hp.stderr.String(), "state=redis://127.0.0.1:")
	remote := hostClient(t, hp.URL, "tok")

	store, err := state.Open(ctx, redisURL)
	require.NoError(t, err)
	defer store.Close()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: store})
	require.NoError(t, err)
	defer rt.Close(ctx)
	lh, err := local.New(local.Config{Runtime: rt})
	require.NoError(t, err)
	defer lh.Close(ctx)

	wasm, err := examples.BuildGo(ctx, "counter", examples.Reactor)
	require.NoError(t, err)
	// A generous timeout: under the race detector, on a CI machine busy
	// with the rest of the suite, one Go instance can take seconds to start.
	job := host.Job{Name: "counter", Module: wasm, Digest: modstore.Digest(wasm), Limits: host.Limits{Timeout: time.Minute}}
	hosts := []host.Host{lh, remote}
	deps := make([]*host.Deployment, 2)
	for i, h := range hosts {
		deps[i], err = h.Deploy(ctx, job)
		require.NoError(t, err)
	}

	const calls, workers = 1000, 16
	next := make(chan int, calls)
	for i := range calls {
		next <- i
	}
	close(next)
	var mu sync.Mutex
	seen := map[string]int{}
	perHost := [2]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				h := i % 2
				res, err := hosts[h].Invoke(ctx, deps[h], host.Request{InvocationID: fmt.Sprintf("inc-%d", i)})
				if !assert.NoError(t, err, "call %d on %s", i, hosts[h].Name()) {
					continue
				}
				mu.Lock()
				seen[string(res.Output)]++
				perHost[h]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	v, ok, err := store.Get(ctx, "counter", "counter")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, strconv.Itoa(calls), string(v), "increments were lost")
	assert.Len(t, seen, calls, "two calls saw the same counter value")
	assert.Equal(t, [2]int{calls / 2, calls / 2}, perHost)
}
