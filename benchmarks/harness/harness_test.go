package harness

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/engine"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

func quick(targets ...string) Options {
	return Options{Targets: targets, Warm: 50, Duration: 50 * time.Millisecond, Concurrency: []int{1, 8}, Samples: 1, Instances: 2}
}

func echoJob(t *testing.T, native func([]byte) ([]byte, error)) Job {
	wasm, err := examples.WAT("echo")
	require.NoError(t, err)
	return Job{Name: "echo", Module: wasm, Input: []byte("ferry loopback!!"), Native: native}
}

// Every engine of this build and the native reference measure every
// metric of their kind, and agree on the answer.
func TestRun_EnginesAndNative(t *testing.T) {
	ctx := context.Background()
	targets := append([]string{TargetNative}, engine.Names()...)
	res, err := Run(ctx, []Job{echoJob(t, func(b []byte) ([]byte, error) { return bytes.Clone(b), nil })}, quick(targets...))
	require.NoError(t, err)
	require.Len(t, res, len(targets))
	for _, r := range res {
		require.Empty(t, r.Error, r.Target)
		assert.Positive(t, r.WarmP50Us, r.Target)
		assert.GreaterOrEqual(t, r.WarmP99Us, r.WarmP50Us, r.Target)
		require.Len(t, r.Load, 2, r.Target)
		assert.Positive(t, r.Load[1].CallsPerSec, r.Target)
		if r.Kind == KindEngine {
			assert.Positive(t, r.CompileColdMs, r.Target)
			assert.Positive(t, r.CompileCachedMs, r.Target)
			assert.Positive(t, r.InstantiateUs, r.Target)
			assert.Positive(t, r.ColdMs, r.Target)
			require.NotNil(t, r.Fresh, r.Target)
			assert.Positive(t, r.Fresh.NoPoolPerSec, r.Target)
			require.Len(t, r.Fresh.Paced, 2, r.Target)
			assert.Positive(t, r.Fresh.Paced[0].Rate, r.Target)
			assert.InDelta(t, 2*r.Fresh.Paced[0].Rate, r.Fresh.Paced[1].Rate, 1e-6, r.Target)
			assert.Positive(t, r.LinearMemoryKB, r.Target)
		}
	}
	var raw strings.Builder
	require.NoError(t, WriteBenchstat(&raw, NewReport(res, quick(), "")))
	assert.Contains(t, raw.String(), "BenchmarkFerry/job=echo/target=wazero-")
	assert.Contains(t, raw.String(), "warm-p50-µs")
}

// A target whose answer differs from the reference's is reported as a
// failure, not measured as fast.
func TestRun_Mismatch(t *testing.T) {
	res, err := Run(context.Background(), []Job{echoJob(t, func([]byte) ([]byte, error) { return []byte("wrong"), nil })},
		quick(TargetNative, engine.NameWazero))
	require.NoError(t, err)
	require.Len(t, res, 2)
	assert.Empty(t, res[0].Error)
	assert.Contains(t, res[1].Error, ErrMismatch.Error())
}

// Bad options are refused; missing prerequisites are reported per target
// and the run goes on.
func TestRun_BadInput(t *testing.T) {
	ctx := context.Background()
	_, err := Run(ctx, []Job{echoJob(t, nil)}, quick("v8"))
	assert.ErrorContains(t, err, `unknown target "v8"`)
	_, err = Run(ctx, nil, quick(engine.NameWazero))
	assert.ErrorContains(t, err, "no jobs")
	res, err := Run(ctx, []Job{echoJob(t, nil)}, quick(TargetHTTP, TargetLambda, TargetWorkerd, engine.NameWazero))
	require.NoError(t, err)
	require.Len(t, res, 4)
	assert.Contains(t, res[0].Error, "ferry binary")
	assert.Contains(t, res[1].Error, "bootstrap")
	assert.Contains(t, res[2].Error, "workerd")
	assert.Empty(t, res[3].Error)
	bad := echoJob(t, nil)
	bad.Module = []byte("not wasm")
	res, err = Run(ctx, []Job{bad}, quick(engine.NameWazero))
	require.NoError(t, err)
	assert.NotEmpty(t, res[0].Error)
}

// A load level whose calls fail is reported with its error; the levels
// below it keep their numbers and the ones above are not run.
func TestRun_LoadLevelFails(t *testing.T) {
	var inFlight atomic.Int32
	native := func(b []byte) ([]byte, error) {
		defer inFlight.Add(-1)
		if inFlight.Add(1) > 1 {
			time.Sleep(time.Millisecond) // let the other callers pile up
			return nil, errors.New("too busy")
		}
		time.Sleep(100 * time.Microsecond)
		return bytes.Clone(b), nil
	}
	o := quick(TargetNative)
	o.Concurrency = []int{32, 1, 8}
	res, err := Run(context.Background(), []Job{echoJob(t, native)}, o)
	require.NoError(t, err)
	require.Len(t, res, 1)
	r := res[0]
	require.Empty(t, r.Error)
	require.Len(t, r.Load, 2, "32 is not run after 8 failed")
	l1, ok := r.LoadAt(1)
	require.True(t, ok)
	assert.Positive(t, l1.CallsPerSec)
	_, ok = r.LoadAt(8)
	assert.False(t, ok)
	assert.Contains(t, r.LoadError(8), "at concurrency 8: too busy")
	assert.Empty(t, r.LoadError(1))
	_, ok = r.LoadAt(32)
	assert.False(t, ok)
}
