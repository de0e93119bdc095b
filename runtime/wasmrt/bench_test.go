package wasmrt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/engine"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// reportQuantiles records p50 and p99 of per-call latencies in µs.
func reportQuantiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs/call")
	b.ReportMetric(q(0.99), "p99-µs/call")
}

// BenchmarkInvoke measures one invocation end to end through Module.Invoke:
// the warm-call overhead with a pooled (reused) instance, and the cost with a
// fresh instance per call (the default) when the pool keeps up or not.
func BenchmarkInvoke(b *testing.B) {
	ctx := context.Background()
	kib := bytes.Repeat([]byte("x"), 1024)
	cases := []struct {
		name  string
		wasm  func(testing.TB) []byte
		input []byte
		cfg   ModuleConfig
	}{
		{"echo-1KiB/reuse", func(t testing.TB) []byte { return wat(t, "echo") }, kib, ModuleConfig{Reuse: true, PoolSize: 1}},
		{"echo-1KiB/fresh", func(t testing.TB) []byte { return wat(t, "echo") }, kib, ModuleConfig{}},
		{"go-squaring/reuse", func(t testing.TB) []byte { return goJob(t, "incredible-squaring", examples.Reactor) }, []byte("12345"), ModuleConfig{Reuse: true, PoolSize: 1}},
		{"go-squaring/fresh", func(t testing.TB) []byte { return goJob(t, "incredible-squaring", examples.Reactor) }, []byte("12345"), ModuleConfig{}},
	}
	r := newRuntime(b, Config{})
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			m := load(b, r, tc.wasm(b), tc.cfg)
			defer m.Close(ctx)
			_, err := m.Invoke(ctx, tc.input) // warm
			require.NoError(b, err)
			lat := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				if _, err := m.Invoke(ctx, tc.input); err != nil {
					b.Fatal(err)
				}
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(t0))
				}
			}
			reportQuantiles(b, lat)
		})
	}
}

// BenchmarkInvokeParallel reports invocations per second of the Go example on
// every core, with a fresh instance per call and with reuse.
func BenchmarkInvokeParallel(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b, Config{})
	wasm := goJob(b, "incredible-squaring", examples.Reactor)
	for _, tc := range []struct {
		name string
		cfg  ModuleConfig
	}{
		{"go-squaring/fresh", ModuleConfig{}},
		{"go-squaring/reuse", ModuleConfig{Reuse: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := load(b, r, wasm, tc.cfg)
			defer m.Close(ctx)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.Invoke(ctx, []byte("12345")); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "invocations/s")
		})
	}
}

// BenchmarkInstantiate measures a fresh instance off the hot path:
// instantiation plus _initialize, what the pool hides.
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b, Config{})
	for _, tc := range []struct {
		name string
		wasm func(testing.TB) []byte
	}{
		{"echo", func(t testing.TB) []byte { return wat(t, "echo") }},
		{"go-squaring", func(t testing.TB) []byte { return goJob(t, "incredible-squaring", examples.Reactor) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := load(b, r, tc.wasm(b), ModuleConfig{PoolSize: -1})
			defer m.Close(ctx)
			b.ReportAllocs()
			for b.Loop() {
				inst, err := m.newInstance(ctx)
				if err != nil {
					b.Fatal(err)
				}
				_ = inst.Close(ctx)
			}
		})
	}
}

// BenchmarkCompile measures what a new process pays to get a runnable
// module: starting an engine and compiling, without and with the on-disk
// compilation cache.
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	wasm := goJob(b, "incredible-squaring", examples.Reactor)
	warmDir := b.TempDir()
	{
		e, err := engine.NewWazero(ctx, engine.WazeroConfig{CacheDir: warmDir})
		require.NoError(b, err)
		_, err = e.Compile(ctx, wasm)
		require.NoError(b, err)
		require.NoError(b, e.Close(ctx))
	}
	for _, tc := range []struct {
		name string
		dir  func() string
	}{
		{"go-squaring/no-cache", func() string { return "" }},
		{"go-squaring/cache", func() string { return warmDir }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				e, err := engine.NewWazero(ctx, engine.WazeroConfig{CacheDir: tc.dir()})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Compile(ctx, wasm); err != nil {
					b.Fatal(err)
				}
				_ = e.Close(ctx)
			}
		})
	}
}

// BenchmarkSHA256 hashes 1 MiB as a wasm job (reused instance, so the number
// is the hashing, not instantiation) and natively with the same Go code.
func BenchmarkSHA256(b *testing.B) {
	ctx := context.Background()
	mib := bytes.Repeat([]byte{7}, 1<<20)
	b.Run("native", func(b *testing.B) {
		b.SetBytes(int64(len(mib)))
		for b.Loop() {
			sum := sha256.Sum256(mib)
			_ = hex.EncodeToString(sum[:])
		}
	})
	r := newRuntime(b, Config{})
	m := load(b, r, goJob(b, "sha256", examples.Reactor), ModuleConfig{Reuse: true, PoolSize: 1})
	b.Run("wasm", func(b *testing.B) {
		b.SetBytes(int64(len(mib)))
		for b.Loop() {
			if _, err := m.Invoke(ctx, mib); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkInvokePaced calls the Go example in fresh-instance mode with a
// pause between calls longer than one instantiation, the way service traffic
// arrives: the pool refills in between, so each call finds a ready instance.
// Compare p50 with BenchmarkInstantiate/go-squaring to see what the pool
// hides; pool-hit-% is the share of calls that did not instantiate.
func BenchmarkInvokePaced(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b, Config{})
	m := load(b, r, goJob(b, "incredible-squaring", examples.Reactor), ModuleConfig{PoolSize: 2})
	defer m.Close(ctx)
	waitPoolReady(b, m)
	lat := make([]time.Duration, 0, 1<<12)
	var guest []time.Duration
	hits := 0
	for b.Loop() {
		b.StopTimer()
		time.Sleep(5 * time.Millisecond)
		b.StartTimer()
		t0 := time.Now()
		res, err := m.Invoke(ctx, []byte("12345"))
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		guest = append(guest, res.Duration)
		if res.Instantiate == 0 {
			hits++
		}
	}
	b.ReportMetric(100*float64(hits)/float64(len(lat)), "pool-hit-%")
	slices.Sort(guest)
	b.ReportMetric(float64(guest[len(guest)/2].Nanoseconds())/1e3, "p50-guest-µs")
	reportQuantiles(b, lat)
}

func waitPoolReady(t testing.TB, m *Module) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(m.pool.ready) < cap(m.pool.ready) {
		if time.Now().After(deadline) {
			t.Fatal("pool did not fill")
		}
		time.Sleep(time.Millisecond)
	}
}
