package lambda_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/lambda"
	"github.com/ferryrun/ferry/hosts/lambda/locallambda"
	"github.com/ferryrun/ferry/hosts/local"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/state/dynalitetest"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// 1,000 increments of the Go counter, half on this process's runtime and
// half on (local) Lambda, from 16 concurrent callers, all on one DynamoDB
// table served by a real dynalite: the counter must end at exactly 1,000,
// and every call must have seen a different value.
func TestState_ConcurrentIncrementsAcrossLambdaAndLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dynalite and many bootstrap processes")
	}
	endpoint := dynalitetest.Start(t)
	spec := "dynamodb://ferry-state?region=us-east-1&endpoint=" + endpoint
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The orchestrator's side: a store (creating the table) and the local host.
	creds := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDFERRYTEST", "AWS_SECRET_ACCESS_KEY": "secret"}
	for k, v := range creds {
		t.Setenv(k, v)
	}
	store, err := state.Open(ctx, spec+"&create=true")
	require.NoError(t, err)
	defer store.Close()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: store}) // compiled: the race detector does not slow compiled guests
	require.NoError(t, err)
	defer rt.Close(ctx)
	lh, err := local.New(local.Config{Runtime: rt})
	require.NoError(t, err)
	defer lh.Close(ctx)

	counter, err := examples.BuildGo(ctx, "counter", examples.Reactor)
	require.NoError(t, err)
	job := host.Job{Name: "counter", Module: counter, Digest: modstore.Digest(counter), StateNamespace: "counter", Limits: host.Limits{Timeout: time.Minute}}
	ld, err := lh.Deploy(ctx, job)
	require.NoError(t, err)

	// Lambda's side: the function gets the same table, and credentials the
	// way Lambda gives them, in its environment.
	s := newSetup(t, func(c *lambda.Config, l *locallambda.Config) {
		c.State = spec
		l.Env = creds
	})
	remote, err := s.host.Deploy(ctx, job)
	require.NoError(t, err)

	const total, workers = 1000, 16
	var (
		mu     sync.Mutex
		seen   = map[int]int{}
		where  = map[string]int{}
		errs   []error
		next   = make(chan int)
		wg     sync.WaitGroup
		deadln = time.Now().Add(4 * time.Minute)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				h, d := host.Host(lh), ld
				if i%2 == 1 {
					h, d = s.host, remote
				}
				res, err := h.Invoke(ctx, d, host.Request{Input: []byte("1"), InvocationID: fmt.Sprintf("w%d-%d", w, i)})
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("call %d on %s: %w", i, h.Name(), err))
				} else {
					n, perr := strconv.Atoi(string(res.Output))
					if perr != nil {
						errs = append(errs, fmt.Errorf("call %d: output %q", i, res.Output))
					}
					seen[n]++
					where[h.Name()]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range total {
		if time.Now().After(deadln) {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	require.Empty(t, errs)
	v, found, err := store.Get(ctx, "counter", "counter")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, strconv.Itoa(total), string(v), "no increment lost, none applied twice")
	assert.Len(t, seen, total, "every call saw a different value")
	assert.Equal(t, total/2, where["local"])
	assert.Equal(t, total/2, where["aws-lambda/us-east-1"])
	t.Logf("calls: %v; Lambda environments at the end: %d", where, s.server.Environments(remote.ID))
}
