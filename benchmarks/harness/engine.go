package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// engineTarget runs jobs in process on one engine, through wasmrt (the
// same path as the local host: ABI, limits, pool).
type engineTarget struct {
	name string
	o    *Options
	dir  string
}

func newEngineTarget(ctx context.Context, name string, o *Options) (*engineTarget, error) {
	// Fail early, with the engine's own message, if this build lacks it.
	rt, err := wasmrt.New(ctx, wasmrt.Config{Engine: name})
	if err != nil {
		return nil, err
	}
	_ = rt.Close(ctx)
	return &engineTarget{name: name, o: o, dir: filepath.Join(o.WorkDir, name)}, nil
}

func (*engineTarget) kind() string { return KindEngine }
func (*engineTarget) close() error { return nil }

func (t *engineTarget) runtime(ctx context.Context, cacheDir string) (*wasmrt.Runtime, error) {
	return wasmrt.New(ctx, wasmrt.Config{Engine: t.name, CacheDir: cacheDir, State: state.NewMemory()})
}

// load times Load in a new runtime on cacheDir.
func (t *engineTarget) load(ctx context.Context, j *Job, cacheDir string) (time.Duration, error) {
	rt, err := t.runtime(ctx, cacheDir)
	if err != nil {
		return 0, err
	}
	defer rt.Close(ctx)
	start := time.Now()
	m, err := rt.Load(ctx, j.Module, wasmrt.ModuleConfig{Name: j.Name, PoolSize: -1, Limits: limits(j)})
	if err != nil {
		return 0, err
	}
	d := time.Since(start)
	return d, m.Close(ctx)
}

func limits(j *Job) wasmrt.Limits {
	return wasmrt.Limits{MaxMemoryBytes: uint64(j.Limits.MemoryMB) << 20, Timeout: j.Limits.Timeout,
		MaxInputBytes: j.Limits.MaxInputBytes, MaxOutputBytes: j.Limits.MaxOutputBytes}
}

func (t *engineTarget) measure(ctx context.Context, j *Job) (Result, []byte, error) {
	var r Result
	info, err := abi.Describe(j.Module)
	if err != nil {
		return r, nil, err
	}
	reusable := info.Pure() && info.Shape == abi.Reactor

	// Compile: a new runtime with an empty cache each time, then new
	// runtimes on the cache the last one filled.
	var cold, cached []time.Duration
	cache := ""
	for i := range t.o.Samples {
		cache = filepath.Join(t.dir, fmt.Sprintf("%s-cache-%d", j.Name, i))
		d, err := t.load(ctx, j, cache)
		if err != nil {
			return r, nil, err
		}
		cold = append(cold, d)
	}
	for range t.o.Samples {
		d, err := t.load(ctx, j, cache)
		if err != nil {
			return r, nil, err
		}
		cached = append(cached, d)
	}
	r.CompileColdMs, r.CompileCachedMs = medianMs(cold), medianMs(cached)

	rt, err := t.runtime(ctx, cache)
	if err != nil {
		return r, nil, err
	}
	defer rt.Close(ctx)
	lim := limits(j)

	// Instantiate and the cold call: no pool, so every call makes its
	// instance inline (Result.Instantiate) and runs on it.
	fresh, err := rt.Load(ctx, j.Module, wasmrt.ModuleConfig{Name: j.Name, PoolSize: -1, Limits: lim})
	if err != nil {
		return r, nil, err
	}
	var inst, calls []time.Duration
	n := max(5, t.o.Samples*3)
	for range n {
		start := time.Now()
		res, err := fresh.Invoke(ctx, j.Input)
		if err != nil {
			_ = fresh.Close(ctx)
			return r, nil, err
		}
		calls = append(calls, time.Since(start))
		inst = append(inst, res.Instantiate)
		r.LinearMemoryKB = float64(res.PeakMemoryBytes) / 1024
	}
	r.InstantiateUs, r.ColdMs = medianMs(inst)*1e3, medianMs(calls)
	freshCall := func(ctx context.Context) ([]byte, error) { return output(fresh.Invoke(ctx, j.Input)) }

	// Warm: the production configuration (pure reactors reuse their
	// instance; others get a fresh one per call from the warm pool).
	m, err := rt.Load(ctx, j.Module, wasmrt.ModuleConfig{Name: j.Name, Reuse: reusable, Limits: lim})
	if err != nil {
		_ = fresh.Close(ctx)
		return r, nil, err
	}
	defer m.Close(ctx)
	call := func(ctx context.Context) ([]byte, error) { return output(m.Invoke(ctx, j.Input)) }
	if _, err := call(ctx); err != nil {
		return r, nil, err
	}
	lat, out, err := sequential(ctx, t.o.Warm, 5*t.o.Duration, call)
	if err != nil {
		return r, nil, err
	}
	r.WarmP50Us, r.WarmP99Us = quantileUs(lat, 0.5), quantileUs(lat, 0.99)
	r.Load = loads(ctx, t.o, call, nil)

	// The pool check: fresh instances at concurrency 8, without the pool
	// and with it, closed loop; then with the pool, 8 callers in an open
	// loop at a quarter and at half the no-pool rate.
	noPool, err := closedLoop(ctx, 8, t.o.Duration, freshCall)
	_ = fresh.Close(ctx)
	if err != nil {
		return r, nil, err
	}
	pooled, err := rt.Load(ctx, j.Module, wasmrt.ModuleConfig{Name: j.Name, PoolSize: 8, Limits: lim})
	if err != nil {
		return r, nil, err
	}
	if _, err := pooled.Warm(ctx, 8); err != nil {
		_ = pooled.Close(ctx)
		return r, nil, err
	}
	var hits, total atomic.Int64
	pooledCall := func(ctx context.Context) ([]byte, error) {
		res, err := pooled.Invoke(ctx, j.Input)
		if err == nil {
			total.Add(1)
			if res.Instantiate == 0 {
				hits.Add(1)
			}
		}
		return output(res, err)
	}
	withPool, err := closedLoop(ctx, 8, t.o.Duration, pooledCall)
	if err == nil {
		r.Fresh = &Fresh{PoolP50Us: withPool.P50Us, PoolPerSec: withPool.CallsPerSec,
			NoPoolP50Us: noPool.P50Us, NoPoolPerSec: noPool.CallsPerSec}
		for _, share := range []float64{0.25, 0.5} {
			if _, err = pooled.Warm(ctx, 8); err != nil {
				break
			}
			hits.Store(0)
			total.Store(0)
			rate := noPool.CallsPerSec * share
			var paced Load
			if paced, err = drive(ctx, 8, t.o.Duration, rate, pooledCall); err != nil {
				break
			}
			run := Paced{Load: share, Rate: rate, P50Us: paced.P50Us, P99Us: paced.P99Us}
			if n := total.Load(); n > 0 {
				run.PoolHits = float64(hits.Load()) / float64(n)
			}
			r.Fresh.Paced = append(r.Fresh.Paced, run)
		}
	}
	_ = pooled.Close(ctx)
	if err != nil {
		return r, nil, err
	}

	// Memory per instance: resident memory with Instances ready in a pool,
	// less the same module loaded with none.
	kb, err := t.memoryPerInstance(ctx, rt, j, lim)
	if err != nil {
		return r, nil, err
	}
	r.MemoryPerInstanceKB = kb
	return r, out, nil
}

func (t *engineTarget) memoryPerInstance(ctx context.Context, rt *wasmrt.Runtime, j *Job, lim wasmrt.Limits) (float64, error) {
	n := t.o.Instances
	rss0, err := settledRSS()
	if err != nil {
		return 0, err
	}
	a, err := rt.Load(ctx, j.Module, wasmrt.ModuleConfig{Name: j.Name, PoolSize: -1, Limits: lim})
	if err != nil {
		return 0, err
	}
	defer a.Close(ctx)
	rss1, err := settledRSS()
	if err != nil {
		return 0, err
	}
	b, err := rt.Load(ctx, j.Module, wasmrt.ModuleConfig{Name: j.Name, PoolSize: n, Limits: lim})
	if err != nil {
		return 0, err
	}
	defer b.Close(ctx)
	if _, err := b.Warm(ctx, n); err != nil {
		return 0, err
	}
	rss2, err := settledRSS()
	if err != nil {
		return 0, err
	}
	module := max(rss1-rss0, 0)
	return float64(max(rss2-rss1-module, 0)) / float64(n) / 1024, nil
}

// settledRSS is this process's resident memory in bytes after a full
// collection.
func settledRSS() (int64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	return processRSS(os.Getpid())
}

// processRSS is process pid's resident memory in bytes, from
// /proc/PID/statm (Linux).
func processRSS(pid int) (int64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no process (pid %d)", pid)
	}
	path := fmt.Sprintf("/proc/%d/statm", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("memory per instance needs %s (Linux): %w", path, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("unexpected %s: %q", path, b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return pages * int64(os.Getpagesize()), nil
}

func output(res *wasmrt.Result, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return res.Output, nil
}
