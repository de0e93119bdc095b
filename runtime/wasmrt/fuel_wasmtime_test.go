//go:build wasmtime && cgo && unix

package wasmrt

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	examples "github.com/ferryrun/ferry/wasm-examples"
)

// Config.Fuel is a deterministic CPU limit: a spinning job fails with a CPU
// limit error long before its timeout, while a real job runs under a
// generous budget.
func TestModule_Invoke_Fuel(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{Engine: EngineWasmtime, Fuel: 50_000_000})
	assert.Equal(t, EngineWasmtime, r.EngineName())

	loop := load(t, r, wat(t, "loop"), ModuleConfig{Limits: Limits{Timeout: time.Minute}})
	for range 2 {
		start := time.Now()
		_, err := loop.Invoke(ctx, nil)
		require.ErrorIs(t, err, ErrCPULimit)
		var je *JobError
		require.ErrorAs(t, err, &je)
		assert.Equal(t, KindCPULimit, je.Kind)
		assert.Equal(t, uint64(50_000_000), je.Limit)
		assert.Contains(t, je.Message, "50000000 units of fuel")
		assert.Less(t, time.Since(start), time.Minute/2, "stopped by fuel, not by the timeout")
	}

	squaring := load(t, r, goJob(t, "incredible-squaring", examples.Reactor), ModuleConfig{})
	for _, in := range []string{"12345", "18446744073709551615"} {
		res, err := squaring.Invoke(ctx, []byte(in))
		require.NoError(t, err, "a real job fits in the budget, initialisation included")
		assert.NotEmpty(t, res.Output)
	}
	cmd := load(t, r, goJob(t, "incredible-squaring", examples.Command), ModuleConfig{})
	res, err := cmd.Invoke(ctx, []byte("3"))
	require.NoError(t, err)
	assert.Equal(t, "9", string(res.Output))

	// The same job under a budget too small for the Go runtime to start.
	tight := newRuntime(t, Config{Engine: EngineWasmtime, Fuel: 10_000})
	m, err := tight.Load(ctx, goJob(t, "incredible-squaring", examples.Reactor), ModuleConfig{PoolSize: -1})
	if err == nil {
		_, err = m.Invoke(ctx, []byte("3"))
	}
	assert.ErrorIs(t, err, ErrCPULimit)
}
