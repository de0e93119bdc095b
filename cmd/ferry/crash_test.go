package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/build"
	"github.com/ferryrun/ferry/orchestrator/queue"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// counterBundle builds a bundle holding the counter example (stateful).
func counterBundle(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	wasm, err := examples.BuildGo(ctx, "counter", examples.Reactor)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "counter.wasm"), wasm, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blueprint.toml"), []byte(`[blueprint]
name = "crash"

[blueprint.jobs.counter]
source = "counter.wasm"
inline_samples = ["1"]
timeout = 60   # generous: the suite runs under the race detector on 2 cores
`), 0o644))
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	defer rt.Close(ctx)
	res, err := build.Build(ctx, dir, build.Options{Out: filepath.Join(dir, "out"), Runtime: rt, Runs: 2})
	require.NoError(t, err)
	return res.Bundle
}

// Crash recovery: `ferry serve` is killed with SIGKILL while it works
// through submitted increments of the (stateful, not idempotent) counter,
// and restarted on the same data directory. Every accepted submission
// completes, exactly once: the counter ends at the number of submissions
// and every call saw a different value.
func TestServe_KillNineKeepsEverySubmission(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bundleDir := counterBundle(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte("{}"), 0o644))
	args := []string{"serve", "--listen", "127.0.0.1:0", "--bundle", bundleDir, "--policy", pol, "--data-dir", filepath.Join(dir, "data"),
		"--cache-dir", filepath.Join(dir, "cache"), "--queue-workers", "8"}
	p := startFerry(t, serveListeningRE, nil, args...)

	hc := &http.Client{Timeout: 30 * time.Second}
	call := func(url, method, path, body, key string) (int, []byte, error) {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		return resp.StatusCode, out, err
	}

	const n = 300
	ids := make([]string, n)
	for i := range n {
		st, out, err := call(p.URL, "POST", "/v1/jobs/counter/submit", "", fmt.Sprintf("inc-%d", i))
		require.NoError(t, err)
		require.Equal(t, 202, st, "%s", out)
		var inv queue.Invocation
		require.NoError(t, json.Unmarshal(out, &inv))
		ids[i] = inv.ID
	}
	// Kill it mid-run: some calls done, some running, some queued.
	require.Eventually(t, func() bool {
		st, out, err := call(p.URL, "GET", "/v1/invocations/"+ids[n/4], "", "")
		return err == nil && st == 200 && strings.Contains(string(out), `"status":"succeeded"`)
	}, 60*time.Second, time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done

	p = startFerry(t, serveListeningRE, nil, args...)
	// A client that never saw an answer retries with the same key: it
	// gets the original invocation back, not a second one.
	st, out, err := call(p.URL, "POST", "/v1/jobs/counter/submit", "", "inc-7")
	require.NoError(t, err)
	require.Equal(t, 200, st, "%s", out)
	var retried queue.Invocation
	require.NoError(t, json.Unmarshal(out, &retried))
	assert.Equal(t, ids[7], retried.ID)

	seen := map[string]string{}
	recovered := 0
	for _, id := range ids {
		var inv queue.Invocation
		require.Eventually(t, func() bool {
			st, out, err := call(p.URL, "GET", "/v1/invocations/"+id, "", "")
			if err != nil || st != 200 {
				return false
			}
			require.NoError(t, json.Unmarshal(out, &inv))
			return inv.Status.Finished()
		}, 60*time.Second, 5*time.Millisecond, "invocation %s never finished", id)
		require.Equal(t, queue.StatusSucceeded, inv.Status, "%s: %s (%s)", id, inv.Error, inv.ErrorKind)
		if other, dup := seen[string(inv.Output)]; dup {
			t.Errorf("%s and %s both saw counter value %s: an increment ran twice or was lost", other, id, inv.Output)
		}
		seen[string(inv.Output)] = id
		if inv.Recovered {
			recovered++
		}
	}
	for i := 1; i <= n; i++ {
		assert.Contains(t, seen, strconv.Itoa(i), "no submission saw the counter at %d", i)
	}
	st, out, err = call(p.URL, "POST", "/v1/jobs/counter/invoke", "0", "")
	require.NoError(t, err)
	require.Equal(t, 200, st, "%s", out)
	assert.Equal(t, strconv.Itoa(n), string(out), "the counter is the number of accepted submissions")
	t.Logf("%d of %d submissions were running at the kill and ran again after the restart", recovered, n)
}
