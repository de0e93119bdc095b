package route_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/orchestrator/route"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// spinInput starts spin.wat's input: a loop count (about 1.5 ns each);
// spin echoes its whole input.
func spinInput(loops uint32) []byte {
	return binary.LittleEndian.AppendUint32(nil, loops)
}

// Concurrent small calls to a batching target ride shared round trips;
// every caller gets its own answer, and the calls that fail in a batch
// fail alone.
func TestBatching_EveryResultReachesItsCaller(t *testing.T) {
	e := newEnv(t)
	wasm, err := examples.WAT("spin")
	require.NoError(t, err)
	d, err := e.remote.Deploy(context.Background(), host.Job{Name: "spin", Module: wasm, Digest: modstore.Digest(wasm), Pure: true,
		Limits: host.Limits{MaxInputBytes: 1024, MaxOutputBytes: 64}})
	require.NoError(t, err)
	j := &route.Job{Name: "spin", Pure: true, Deterministic: true,
		Remote: []*route.Target{route.NewTarget("custom/test", e.remote, d, false, 0, 1, 0)}}
	r := newRouter(t, route.Knobs{Serverless: true, Batch: route.BatchConfig{Enabled: true, MaxInflight: 1}}, nil, j)
	ex, err := route.NewExecutor(route.ExecutorConfig{Router: r})
	require.NoError(t, err)

	const calls = 300
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Up to 0.5 ms of work each, so calls overlap.
			in := append(spinInput(uint32(i*1000)), fmt.Sprintf("call-%d", i)...)
			bad := i%10 == 7
			if bad {
				// spin echoes its input: 200 bytes is over the output limit.
				in = append(in, make([]byte, 200)...)
			}
			res, err := ex.Execute(context.Background(), "spin", in)
			if bad {
				assert.ErrorIs(t, err, host.ErrLimit, "call %d", i)
				assert.True(t, host.IsJobFault(err), "call %d: output over the limit is the job's fault", i)
				return
			}
			if assert.NoError(t, err, "call %d", i) {
				assert.Equal(t, string(in), string(res.Output), "call %d got another caller's answer", i)
			}
		}()
	}
	wg.Wait()

	batched := 0
	for _, dec := range ex.Decisions().Recent(calls) {
		for _, a := range dec.Attempts {
			if a.Batch > 1 {
				batched++
			}
		}
	}
	st := j.Remote[0].Stats()
	require.NotNil(t, st.Batching)
	t.Logf("%d of %d calls rode in a batch; %d round trips of two or more; adapted size %d", batched, calls, st.Batching.Batches, st.Batching.Size)
	assert.Positive(t, batched, "300 concurrent calls with one round trip in flight: some must share")
	assert.Positive(t, st.Batching.Batches)
}

// A round trip that fails as a whole fails each of its calls with the
// host's error, and nobody waits forever.
func TestBatching_WholeBatchFailure(t *testing.T) {
	e := newEnv(t)
	d := deploy(t, e.remote, "echo", "echo")
	e.server.Close() // the host is gone
	c, err := httphost.NewClient(httphost.ClientConfig{BaseURL: e.server.URL, Name: "custom/test", Retries: -1})
	require.NoError(t, err)
	j := &route.Job{Name: "echo", Pure: true, Deterministic: true,
		Remote: []*route.Target{route.NewTarget("custom/test", c, d, false, 0, 1, 0)}}
	r := newRouter(t, route.Knobs{Serverless: true, Batch: route.BatchConfig{Enabled: true, MaxInflight: 1}}, nil, j)
	ex, err := route.NewExecutor(route.ExecutorConfig{Router: r})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := ex.Execute(ctx, "echo", []byte{byte(i)})
			require.Error(t, err)
			assert.False(t, errors.Is(err, context.DeadlineExceeded), "call %d waited for an answer that never came", i)
			assert.True(t, errors.Is(err, host.ErrHost) || errors.Is(err, route.ErrNoTarget), "call %d: %v", i, err)
		}()
	}
	wg.Wait()
}

// A caller that gives up is not sent, and does not hold others up.
func TestBatching_CanceledCallerIsDropped(t *testing.T) {
	e := newEnv(t)
	d := deploy(t, e.remote, "echo", "echo")
	j := &route.Job{Name: "echo", Pure: true, Deterministic: true,
		Remote: []*route.Target{route.NewTarget("custom/test", e.remote, d, false, 0, 1, 0)}}
	r := newRouter(t, route.Knobs{Serverless: true, Batch: route.BatchConfig{Enabled: true}}, nil, j)
	ex, err := route.NewExecutor(route.ExecutorConfig{Router: r})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ex.Execute(ctx, "echo", []byte("gone"))
	require.ErrorIs(t, err, context.Canceled)
	res, err := ex.Execute(context.Background(), "echo", []byte("still here"))
	require.NoError(t, err)
	assert.Equal(t, "still here", string(res.Output))
}
