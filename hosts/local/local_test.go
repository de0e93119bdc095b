package local_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/hosttest"
	"github.com/ferryrun/ferry/hosts/local"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

func newHost(t *testing.T) *local.Host {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	h, err := local.New(local.Config{Runtime: rt, PoolSize: 2})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, h.Close(ctx))
		assert.NoError(t, rt.Close(ctx))
	})
	return h
}

func TestConformance(t *testing.T) {
	hosttest.Run(t, func(t *testing.T) host.Host { return newHost(t) }, hosttest.Options{})
}

func TestLocal_StatsAndHealth(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	wasm, err := examples.WAT("echo")
	require.NoError(t, err)
	d, err := h.Deploy(ctx, host.Job{Name: "echo", Module: wasm, Digest: modstore.Digest(wasm)})
	require.NoError(t, err)
	assert.True(t, d.Pure)
	assert.Equal(t, 128, d.Limits.MemoryMB, "the runtime's default, reported")
	for range 3 {
		_, err := h.Invoke(ctx, d, host.Request{Input: []byte("x")})
		require.NoError(t, err)
	}
	st, err := h.Stats(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, int64(3), st.Invocations)
	assert.Zero(t, st.Errors)
	hl, err := h.Health(ctx, d)
	require.NoError(t, err)
	assert.True(t, hl.Healthy)
	assert.Equal(t, int64(3), hl.TotalInvocations)
	assert.False(t, hl.LastInvocation.IsZero())

	res := h.InvokeBatch(ctx, d, []host.Request{{Input: []byte("a")}, {Input: []byte("b")}})
	require.Len(t, res, 2)
	require.NoError(t, res[0].Err)
	require.NoError(t, res[1].Err)
	assert.Equal(t, "a", string(res[0].Response.Output))
	assert.Equal(t, "b", string(res[1].Response.Output))
}

func TestLocal_Invalid(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	wasm, err := examples.WAT("echo")
	require.NoError(t, err)
	_, err = h.Deploy(ctx, host.Job{Name: "Bad Name", Module: wasm})
	assert.ErrorIs(t, err, host.ErrHost)
	_, err = h.Deploy(ctx, host.Job{Name: "neg", Module: wasm, Limits: host.Limits{MemoryMB: -1}})
	assert.ErrorIs(t, err, host.ErrHost)
	_, err = h.Invoke(ctx, nil, host.Request{})
	assert.ErrorIs(t, err, host.ErrNotFound)
	_, err = h.Deploy(ctx, host.Job{Name: "abi", Module: []byte("nope")})
	assert.True(t, local.IsModuleError(err), "%v", err)
	_, err = local.New(local.Config{})
	assert.Error(t, err)
}

func TestLocal_ReusePureAndWarm(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rt.Close(ctx)) })
	for _, reuse := range []bool{false, true} {
		h, err := local.New(local.Config{Runtime: rt, PoolSize: 2, ReusePure: reuse})
		require.NoError(t, err)
		wasm, err := examples.WAT("echo")
		require.NoError(t, err)
		d, err := h.Deploy(ctx, host.Job{Name: "echo", Module: wasm})
		require.NoError(t, err)
		n, err := h.Warm(ctx, d, 5)
		require.NoError(t, err)
		assert.Equal(t, 2, n, "warmed up to the pool size")
		colds := 0
		for range 10 {
			res, err := h.Invoke(ctx, d, host.Request{Input: []byte("x")})
			require.NoError(t, err)
			if res.Cold {
				colds++
			}
		}
		st, err := h.Stats(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, int64(colds), st.ColdStarts)
		if reuse {
			assert.Zero(t, colds, "a reused instance is never cold")
		}
		// calls answers how many calls its instance has seen.
		calls, err := examples.WAT("calls")
		require.NoError(t, err)
		dc, err := h.Deploy(ctx, host.Job{Name: "calls", Module: calls})
		require.NoError(t, err)
		var seen []byte
		for range 6 {
			res, err := h.Invoke(ctx, dc, host.Request{})
			require.NoError(t, err)
			seen = append(seen, res.Output...)
		}
		if reuse {
			// The pool holds two instances, so calls may alternate
			// between them, but six calls cannot all be first calls.
			assert.GreaterOrEqual(t, slices.Max(seen), byte(3), "instances served several calls: %v", seen)
		} else {
			assert.Equal(t, bytes.Repeat([]byte{1}, 6), seen, "a fresh instance per call")
		}
		require.NoError(t, h.Close(ctx))
	}
}
