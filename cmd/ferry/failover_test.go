package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/build"
	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/orchestrator/policy"
	"github.com/ferryrun/ferry/orchestrator/route"
	"github.com/ferryrun/ferry/orchestrator/service"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// The remote `ferry host serve` process is killed (SIGKILL) in the middle
// of a run of concurrent calls to a job forced onto it. No call is lost:
// the ones in flight fail over, later ones skip the dead host (its circuit
// breaker opens), and every call completes, locally after the kill.
func TestFailover_HostProcessKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	wasm, err := examples.WAT("echo")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "echo.wasm"), wasm, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blueprint.toml"), []byte(`[blueprint]
name = "failover"

[blueprint.serverless]
providers = ["custom"]

[blueprint.jobs.echo]
source = "echo.wasm"
inline_samples = ["hi"]
force_serverless = true
`), 0o644))
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	defer rt.Close(ctx)
	res, err := build.Build(ctx, dir, build.Options{Out: filepath.Join(dir, "out"), Runtime: rt, Runs: 2})
	require.NoError(t, err)
	b, err := bundle.Open(res.Bundle)
	require.NoError(t, err)

	hp := startHost(t, filepath.Join(dir, "host"), "host-token")
	pol, err := policy.Parse("policy.json", []byte(`{"serverless": {"enable": true, "provider": {"type": "custom", "endpoint": "`+hp.URL+`"},
		"default_memory_mb": 128, "timeout_secs": 30, "fallback_to_vm": true}}`))
	require.NoError(t, err)
	s, err := service.Start(ctx, service.Config{Bundle: b, Policy: pol, DataDir: filepath.Join(dir, "serve"), Runtime: rt, HostToken: "host-token"})
	require.NoError(t, err)
	defer s.Close(ctx)

	const calls, workers, killAt = 1200, 8, 300
	var next, done atomic.Int64
	var mu sync.Mutex
	ranOn := map[string]int{}
	var kill sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > calls {
					return
				}
				in := fmt.Sprintf("call %d", i)
				res, err := s.Execute(ctx, "echo", []byte(in))
				if !assert.NoError(t, err, "call %d was lost", i) {
					continue
				}
				assert.Equal(t, in, string(res.Output))
				mu.Lock()
				ranOn[res.Target]++
				mu.Unlock()
				if done.Add(1) == killAt {
					kill.Do(func() { require.NoError(t, hp.cmd.Process.Kill()) })
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("where %d calls ran: %v", calls, ranOn)
	assert.Equal(t, int64(calls), done.Load(), "every call completed")
	assert.GreaterOrEqual(t, ranOn["custom/"+hp.URL[len("http://"):]], killAt-workers, "before the kill, calls went to the host")
	assert.Positive(t, ranOn[route.LocalID], "after the kill, calls fell back to the local host")
	var failedOver int
	for _, d := range s.Exec.Decisions().Recent(calls) {
		if len(d.Attempts) > 1 {
			failedOver++
		}
	}
	t.Logf("%d calls failed over within the call", failedOver)
}
