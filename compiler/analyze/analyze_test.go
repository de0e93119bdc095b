package analyze

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

func wat(t *testing.T, name string) []byte {
	t.Helper()
	b, err := examples.WAT(name)
	require.NoError(t, err)
	return b
}

func goJob(t *testing.T, name string) []byte {
	t.Helper()
	b, err := examples.BuildGo(context.Background(), name, examples.Reactor)
	require.NoError(t, err)
	return b
}

func TestModule_Flags(t *testing.T) {
	tests := []struct {
		name  string
		wasm  func(*testing.T) []byte
		hosts []string
		want  Analysis
	}{
		{"pure WAT reactor", func(t *testing.T) []byte { return wat(t, "echo") }, nil,
			Analysis{Shape: abi.Reactor, ABIVersion: 1, Capabilities: []abi.Capability{}, IsPure: true, IsDeterministic: true, NetworkCalls: []string{}, MinMemoryBytes: 65536}},
		{"plain WASI command using clock and random", func(t *testing.T) []byte { return wat(t, "entropy") }, nil,
			Analysis{Shape: abi.Command, Capabilities: []abi.Capability{abi.CapClock, abi.CapRandom}, IsPure: true, IsDeterministic: true, NetworkCalls: []string{}, MinMemoryBytes: 65536}},
		{"stateful Go job", func(t *testing.T) []byte { return goJob(t, "counter") }, []string{"ignored.example"},
			Analysis{Shape: abi.Reactor, ABIVersion: 1, RequiresState: true, NetworkCalls: []string{}}},
		{"network Go job", func(t *testing.T) []byte { return goJob(t, "fetcher") }, []string{"b.example", "a.example"},
			Analysis{Shape: abi.Reactor, ABIVersion: 1, NetworkCalls: []string{"a.example", "b.example"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Module(tc.wasm(t), tc.hosts)
			require.NoError(t, err)
			assert.Equal(t, tc.want.Shape, got.Shape)
			assert.Equal(t, tc.want.ABIVersion, got.ABIVersion)
			assert.Equal(t, tc.want.IsPure, got.IsPure)
			assert.Equal(t, tc.want.IsDeterministic, got.IsDeterministic)
			assert.Equal(t, tc.want.RequiresState, got.RequiresState)
			assert.Equal(t, tc.want.NetworkCalls, got.NetworkCalls)
			if tc.want.Capabilities != nil {
				assert.Equal(t, tc.want.Capabilities, got.Capabilities)
			}
			assert.Contains(t, got.Exports, "memory")
			if tc.want.MinMemoryBytes != 0 {
				assert.Equal(t, tc.want.MinMemoryBytes, got.MinMemoryBytes)
			}
		})
	}
	_, err := Module([]byte("not wasm"), nil)
	assert.ErrorIs(t, err, abi.ErrNotWasm)
	_, err = Module(wat(t, "abiv99"), nil)
	assert.ErrorIs(t, err, abi.ErrABIVersion)
}

func newRuntime(t *testing.T) *wasmrt.Runtime {
	t.Helper()
	r, err := wasmrt.New(context.Background(), wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func TestRun_Profile(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t)
	mod, err := r.Load(ctx, goJob(t, "incredible-squaring"), wasmrt.ModuleConfig{PoolSize: -1})
	require.NoError(t, err)
	p, err := Run(ctx, mod, []Sample{{"small", []byte("3")}, {"max", []byte("18446744073709551615")}}, 3)
	require.NoError(t, err)
	assert.Equal(t, 2, p.Samples)
	assert.Equal(t, 3, p.Runs)
	assert.True(t, p.Deterministic)
	assert.Positive(t, p.DurationP50)
	assert.LessOrEqual(t, p.DurationP50, p.DurationP95)
	assert.LessOrEqual(t, p.DurationP95, p.DurationMax)
	assert.GreaterOrEqual(t, p.PeakMemoryBytes, uint64(2<<20), "a Go guest needs megabytes")
	assert.Equal(t, 20, p.InputBytesMax)
	assert.Equal(t, 39, p.OutputBytesMax)

	b, err := json.Marshal(p)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"duration_p50_ms":`)
}

func TestRun_Nondeterministic(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t)
	off := false
	mod, err := r.Load(ctx, wat(t, "entropy"), wasmrt.ModuleConfig{Deterministic: &off, PoolSize: -1})
	require.NoError(t, err)
	p, err := Run(ctx, mod, []Sample{{"empty", nil}}, 2)
	require.NoError(t, err)
	assert.False(t, p.Deterministic, "real clock and randomness differ between runs")
	assert.Equal(t, "empty", p.NondeterministicSample)

	det, err := r.Load(ctx, wat(t, "entropy"), wasmrt.ModuleConfig{PoolSize: -1})
	require.NoError(t, err)
	p, err = Run(ctx, det, []Sample{{"empty", nil}}, 2)
	require.NoError(t, err)
	assert.True(t, p.Deterministic, "the sandbox fixes them by default")
}

func TestRun_FailingSample(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t)
	mod, err := r.Load(ctx, wat(t, "loop"), wasmrt.ModuleConfig{Name: "loop", Limits: wasmrt.Limits{Timeout: 20 * time.Millisecond}, PoolSize: -1})
	require.NoError(t, err)
	_, err = Run(ctx, mod, []Sample{{"spin", []byte("x")}}, 2)
	var se *SampleError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "spin", se.Sample)
	assert.ErrorIs(t, err, ErrSample)
	assert.ErrorIs(t, err, wasmrt.ErrTimeout)
	assert.Contains(t, err.Error(), `sample "spin": job loop: timed out`)

	_, err = Run(ctx, mod, nil, 2)
	assert.Error(t, err)
	assert.False(t, errors.Is(err, ErrSample))
}

func TestQuantile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	assert.Equal(t, time.Duration(10), quantile(d, 0.5))
	assert.Equal(t, time.Duration(19), quantile(d, 0.95))
	assert.Equal(t, time.Duration(1), quantile(d[:1], 0.95))
}

func TestDuration_JSON(t *testing.T) {
	in := Duration(1234567 * time.Nanosecond)
	b, err := json.Marshal(in)
	require.NoError(t, err)
	assert.Equal(t, "1.234", string(b))
	var out Duration
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, Duration(1234*time.Microsecond), out)
	assert.Error(t, json.Unmarshal([]byte("-1"), &out))
	assert.Error(t, json.Unmarshal([]byte(`"fast"`), &out))
}
