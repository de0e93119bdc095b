//go:build wasmtime && cgo && unix

package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ferryrun/ferry/runtime/abi"
)

func wat2wasm(t testing.TB, wat string) []byte {
	t.Helper()
	b, err := wasmtime.Wat2Wasm(wat)
	require.NoError(t, err)
	return b
}

func newWasmtime(t testing.TB, cfg WasmtimeConfig) *Wasmtime {
	t.Helper()
	e, err := NewWasmtime(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func instantiate(t testing.TB, e Engine, wasm []byte, cfg InstanceConfig) Instance {
	t.Helper()
	c, err := e.Compile(context.Background(), wasm)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	inst, err := c.Instantiate(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = inst.Close(context.Background()) })
	return inst
}

// Every function of wasi_snapshot_preview1 links, with the signature wazero
// (and the toolchains) use.
func TestWasmtime_WASISignaturesMatchWazero(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	_, err := wasi_snapshot_preview1.Instantiate(ctx, rt)
	require.NoError(t, err)
	want := map[string]string{}
	for name, def := range rt.Module(abi.WASI).ExportedFunctionDefinitions() {
		want[name] = wazeroSig(def.ParamTypes(), def.ResultTypes())
	}
	got := map[string]string{"proc_exit": wazeroSig([]api.ValueType{api.ValueTypeI32}, nil)}
	for _, f := range wasiFuncs {
		var params []api.ValueType
		for _, p := range f.params {
			params = append(params, map[rune]api.ValueType{'i': api.ValueTypeI32, 'I': api.ValueTypeI64}[p])
		}
		got[f.name] = wazeroSig(params, []api.ValueType{api.ValueTypeI32})
	}
	assert.Equal(t, want, got)
}

func wazeroSig(params, results []api.ValueType) string {
	var b strings.Builder
	for _, p := range params {
		b.WriteString(api.ValueTypeName(p) + " ")
	}
	b.WriteString("->")
	for _, r := range results {
		b.WriteString(" " + api.ValueTypeName(r))
	}
	return b.String()
}

// wasiProbe calls the WASI functions whose results wazero and Ferry's WASI
// must agree on, and prints what they returned: errnos and the bytes they
// wrote. Deterministic, it must print the same on every engine.
const wasiProbe = `(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $time (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get" (func $res (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $out (mut i32) (i32.const 4096))
  (func $put (param i32)
    (i32.store (global.get $out) (local.get 0))
    (global.set $out (i32.add (global.get $out) (i32.const 4))))
  (func $put64 (param i64)
    (i64.store (global.get $out) (local.get 0))
    (global.set $out (i32.add (global.get $out) (i32.const 8))))
  (func (export "_start")
    ;; clocks: each reading, twice; an unknown clock; out of bounds
    (call $put (call $time (i32.const 0) (i64.const 1) (i32.const 0)))
    (call $put64 (i64.load (i32.const 0)))
    (call $put (call $time (i32.const 0) (i64.const 1) (i32.const 0)))
    (call $put64 (i64.load (i32.const 0)))
    (call $put (call $time (i32.const 1) (i64.const 1) (i32.const 0)))
    (call $put64 (i64.load (i32.const 0)))
    (call $put (call $time (i32.const 1) (i64.const 1) (i32.const 0)))
    (call $put64 (i64.load (i32.const 0)))
    (call $put (call $time (i32.const 7) (i64.const 1) (i32.const 0)))
    (call $put (call $time (i32.const 0) (i64.const 1) (i32.const 65535)))
    (call $put (call $res (i32.const 0) (i32.const 0)))
    (call $put64 (i64.load (i32.const 0)))
    (call $put (call $res (i32.const 1) (i32.const 0)))
    (call $put64 (i64.load (i32.const 0)))
    ;; randomness
    (call $put (call $random (i32.const 0) (i32.const 16)))
    (call $put64 (i64.load (i32.const 0)))
    (call $put64 (i64.load (i32.const 8)))
    (call $put (call $random (i32.const 65530) (i32.const 16)))
    ;; no arguments, no environment
    (i64.store (i32.const 0) (i64.const -1))
    (call $put (call $args (i32.const 0) (i32.const 4)))
    (call $put64 (i64.load (i32.const 0)))
    (i64.store (i32.const 0) (i64.const -1))
    (call $put (call $env (i32.const 0) (i32.const 4)))
    (call $put64 (i64.load (i32.const 0)))
    (call $put (call $yield))
    ;; poll: a 1 ms sleep and stdout, then a subscription of no known kind
    (i64.store (i32.const 256) (i64.const 0x1122334455667788))
    (i32.store8 (i32.const 264) (i32.const 0))
    (i32.store (i32.const 272) (i32.const 1))
    (i64.store (i32.const 280) (i64.const 1000000))
    (i64.store (i32.const 304) (i64.const 0x0102030405060708))
    (i32.store8 (i32.const 312) (i32.const 2))
    (i32.store (i32.const 320) (i32.const 1))
    (call $put (call $poll (i32.const 256) (i32.const 512) (i32.const 2) (i32.const 600)))
    (call $put (i32.load (i32.const 600)))
    (call $put64 (i64.load (i32.const 512)))
    (call $put64 (i64.load (i32.const 520)))
    (call $put64 (i64.load (i32.const 544)))
    (call $put64 (i64.load (i32.const 552)))
    (i32.store8 (i32.const 264) (i32.const 9))
    (call $put (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600)))
    (call $put (call $poll (i32.const 256) (i32.const 512) (i32.const 0) (i32.const 600)))
    ;; stdin, in two reads of 3 bytes, then the end; a bad fd
    (i32.store (i32.const 64) (i32.const 128))
    (i32.store (i32.const 68) (i32.const 3))
    (call $put (call $read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 72)))
    (call $put (i32.load (i32.const 72)))
    (call $put (call $read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 72)))
    (call $put (i32.load (i32.const 72)))
    (call $put (call $read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 72)))
    (call $put (i32.load (i32.const 72)))
    (call $put (call $read (i32.const 9) (i32.const 64) (i32.const 1) (i32.const 72)))
    (call $put64 (i64.load (i32.const 128)))
    ;; stderr, then all of the above to stdout
    (call $put (call $write (i32.const 2) (i32.const 64) (i32.const 1) (i32.const 72)))
    (call $put (i32.load (i32.const 72)))
    (i32.store (i32.const 64) (i32.const 4096))
    (i32.store (i32.const 68) (i32.sub (global.get $out) (i32.const 4096)))
    (drop (call $write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 72)))))`

// In deterministic mode the wasmtime engine's WASI gives the guest exactly
// what wazero's does: clocks, randomness, polling, stdio.
func TestWasmtime_WASIMatchesWazero(t *testing.T) {
	wasm := wat2wasm(t, wasiProbe)
	run := func(e Engine, seed uint64) (stdout, stderr string) {
		var out, errOut bytes.Buffer
		inst := instantiate(t, e, wasm, InstanceConfig{
			Stdin: strings.NewReader("abcdef"), Stdout: &out, Stderr: &errOut,
			MaxMemoryBytes: 1 << 20, Deterministic: true, Seed: seed,
		})
		require.NoError(t, inst.Function("_start").CallWithStack(context.Background(), make([]uint64, 1)))
		return out.String(), errOut.String()
	}
	wz, err := NewWazero(context.Background(), WazeroConfig{})
	require.NoError(t, err)
	defer wz.Close(context.Background())
	wt := newWasmtime(t, WasmtimeConfig{})

	want, wantErr := run(wz, 7)
	got, gotErr := run(wt, 7)
	puts, put64s := strings.Count(wasiProbe, "(call $put ("), strings.Count(wasiProbe, "(call $put64 (")
	require.Len(t, got, 4*puts+8*put64s, "the probe printed everything")
	assert.Equal(t, want, got)
	assert.Equal(t, wantErr, gotErr)
	assert.Equal(t, "def", gotErr)

	// Spot checks, so that agreeing is not agreeing on nothing.
	u64 := func(off int) uint64 { return binary.LittleEndian.Uint64([]byte(got[off:])) }
	assert.Equal(t, uint64(fakeEpochNanos), u64(4), "the wall clock starts at 2022-01-01")
	assert.Equal(t, uint64(fakeEpochNanos+fakeClockStep), u64(16), "and advances 1 ms per reading")
	other, _ := run(wt, 8)
	assert.NotEqual(t, got, other, "another seed, other random bytes")
}

// What Ferry's WASI answers that wazero's does differently or not at all:
// no filesystem, stdio as character devices, ENOSYS for the rest.
func TestWasmtime_WASISubset(t *testing.T) {
	inst := instantiate(t, newWasmtime(t, WasmtimeConfig{}), wat2wasm(t, `(module
	  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
	  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
	  (import "wasi_snapshot_preview1" "fd_seek" (func $seek (param i32 i64 i32 i32) (result i32)))
	  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
	  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
	  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
	  (memory (export "memory") 1)
	  (func (export "fdstat") (param i32) (result i32) (call $fdstat (local.get 0) (i32.const 0)))
	  (func (export "prestat") (param i32) (result i32) (call $prestat (local.get 0) (i32.const 0)))
	  (func (export "seek") (param i32) (result i32) (call $seek (local.get 0) (i64.const 0) (i32.const 0) (i32.const 0)))
	  (func (export "close") (param i32) (result i32) (call $close (local.get 0)))
	  (func (export "open") (param i32) (result i32)
	    (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 8)))
	  (func (export "accept") (param i32) (result i32) (call $accept (i32.const 3) (i32.const 0) (i32.const 0))))`),
		InstanceConfig{MaxMemoryBytes: 1 << 20})
	for _, tc := range []struct {
		fn    string
		fd    uint64
		errno uint64
	}{
		{"fdstat", 1, errnoSuccess},
		{"fdstat", 3, errnoBadf},
		{"prestat", 3, errnoBadf},
		{"seek", 1, errnoSpipe},
		{"seek", 5, errnoBadf},
		{"close", 2, errnoSuccess},
		{"close", 4, errnoBadf},
		{"open", 0, errnoNosys},
		{"accept", 0, errnoNosys},
	} {
		st := []uint64{tc.fd}
		require.NoError(t, inst.Function(tc.fn).CallWithStack(context.Background(), st))
		assert.Equal(t, tc.errno, st[0], "%s(%d)", tc.fn, tc.fd)
	}
	stat, ok := inst.Memory().Read(0, 24)
	require.True(t, ok)
	assert.Equal(t, byte(2), stat[0], "a character device")
}

// A module that imports something this host does not have fails to
// instantiate with an error, as with wazero; it does not crash or trap.
func TestWasmtime_UnknownImport(t *testing.T) {
	e := newWasmtime(t, WasmtimeConfig{})
	c, err := e.Compile(context.Background(), wat2wasm(t, `(module (import "env" "secret" (func)) (memory (export "memory") 1))`))
	require.NoError(t, err)
	defer c.Close(context.Background())
	_, err = c.Instantiate(context.Background(), InstanceConfig{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "secret")
	assert.NotContains(t, err.Error(), "\n")
	var trap *Trap
	assert.False(t, errors.As(err, &trap))
}

// counter loops until its counter reaches its argument (0: never), storing
// the counter at address 0 on every iteration, so a stopped call shows how
// far it got.
const counter = `(module
  (memory (export "memory") 1)
  (func (export "count") (param $n i32) (local $i i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (i32.store (i32.const 0) (local.get $i))
      (br_if $again (i32.ne (local.get $i) (local.get $n))))))`

func TestWasmtime_Fuel(t *testing.T) {
	const fuel = 100_000
	wasm := wat2wasm(t, counter)
	// reached runs count(0) on a fresh engine and instance until its fuel
	// runs out and returns how far it counted.
	reached := func() uint32 {
		inst := instantiate(t, newWasmtime(t, WasmtimeConfig{Fuel: fuel}), wasm, InstanceConfig{MaxMemoryBytes: 1 << 20})
		err := inst.Function("count").CallWithStack(context.Background(), []uint64{0})
		var fe *FuelExhaustedError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, uint64(fuel), fe.Fuel)
		b, ok := inst.Memory().Read(0, 4)
		require.True(t, ok)
		return binary.LittleEndian.Uint32(b)
	}
	n := reached()
	assert.Greater(t, n, uint32(1000), "the loop ran")
	assert.Less(t, n, uint32(fuel), "every iteration costs fuel")
	for range 3 {
		assert.Equal(t, n, reached(), "fuel stops the guest at the same point on every run")
	}

	// Every call gets the whole budget: two calls that each take about
	// half of it succeed one after the other on the same instance, where
	// sharing one budget would have stopped the second.
	inst := instantiate(t, newWasmtime(t, WasmtimeConfig{Fuel: fuel}), wasm, InstanceConfig{MaxMemoryBytes: 1 << 20})
	for range 3 {
		require.NoError(t, inst.Function("count").CallWithStack(context.Background(), []uint64{uint64(n * 2 / 3)}))
	}
	var fe *FuelExhaustedError
	require.ErrorAs(t, inst.Function("count").CallWithStack(context.Background(), []uint64{uint64(n + n/10)}), &fe)

	// A start function is metered too.
	e := newWasmtime(t, WasmtimeConfig{Fuel: fuel})
	c, err := e.Compile(context.Background(), wat2wasm(t, `(module (func $spin (loop $l (br $l))) (start $spin))`))
	require.NoError(t, err)
	defer c.Close(context.Background())
	_, err = c.Instantiate(context.Background(), InstanceConfig{})
	require.ErrorAs(t, err, &fe)
}

// The disk cache: a second engine loads what the first compiled, a corrupt
// file is ignored and replaced, and an engine with other settings keeps its
// own files.
func TestWasmtime_Cache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	echo, calls := readWAT(t, "echo"), readWAT(t, "calls")
	files := func() []string {
		m, err := filepath.Glob(filepath.Join(dir, "wasmtime-*", "*"))
		require.NoError(t, err)
		return m
	}
	runEcho := func(e Engine) string {
		inst := instantiate(t, e, echo, InstanceConfig{MaxMemoryBytes: 1 << 20})
		st := []uint64{3, 0}
		require.NoError(t, inst.Function("ferry_alloc").CallWithStack(ctx, st))
		require.True(t, inst.Memory().Write(uint32(st[0]), []byte("abc")))
		st[1] = 3
		require.NoError(t, inst.Function("ferry_run").CallWithStack(ctx, st))
		out, ok := inst.Memory().Read(uint32(st[0]>>32), uint32(st[0]))
		require.True(t, ok)
		return string(out)
	}

	assert.Equal(t, "abc", runEcho(newWasmtime(t, WasmtimeConfig{CacheDir: dir})))
	require.Len(t, files(), 1)
	echoFile := files()[0]
	assert.True(t, strings.HasPrefix(filepath.Base(echoFile), "tick-"), echoFile)

	// Prove that the next engine reads the file: put calls' compiled code
	// under echo's name, and echo behaves as calls.
	_, err := newWasmtime(t, WasmtimeConfig{CacheDir: dir}).Compile(ctx, calls)
	require.NoError(t, err)
	require.Len(t, files(), 2)
	var callsFile string
	for _, f := range files() {
		if f != echoFile {
			callsFile = f
		}
	}
	b, err := os.ReadFile(callsFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(echoFile, b, 0o644))
	assert.Equal(t, "\x01", runEcho(newWasmtime(t, WasmtimeConfig{CacheDir: dir})),
		"echo's cache file now holds calls, which answers its call count")

	// Corrupt files are compiled over.
	for _, corrupt := range [][]byte{nil, []byte("garbage"), append(bytes.Clone(b[:len(b)-1]), b[len(b)-1]^1)} {
		require.NoError(t, os.WriteFile(echoFile, corrupt, 0o644))
		assert.Equal(t, "abc", runEcho(newWasmtime(t, WasmtimeConfig{CacheDir: dir})))
		fixed, err := os.ReadFile(echoFile)
		require.NoError(t, err)
		_, ok := unseal(fixed)
		assert.True(t, ok, "the file was rewritten")
	}

	// Fuel metering compiles other code: its files do not collide.
	assert.Equal(t, "abc", runEcho(newWasmtime(t, WasmtimeConfig{CacheDir: dir, Fuel: 1 << 30})))
	assert.Len(t, files(), 3)
}

// A guest is interrupted at its deadline on either path (the tick of an
// instrumented module, or epochs), even while the Go runtime collects
// garbage non-stop.
func TestWasmtime_InterruptUnderGC(t *testing.T) {
	e := newWasmtime(t, WasmtimeConfig{})
	for _, tc := range []struct {
		name   string
		wasm   []byte
		fn     string
		ticked bool
	}{
		{"instrumented loop", readWAT(t, "loop"), "ferry_run", true},
		{"instrumented, no memory", spinNoMemory, "_start", true},
		{"start section: epochs", wat2wasm(t, `(module (func $s) (start $s) (func (export "run") (loop $l (br $l))))`), "run", false},
		{"exports the stop global: epochs", wat2wasm(t, `(module (global (export "__ferry_stop") i32 (i32.const 0)) (func (export "run") (loop $l (br $l))))`), "run", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.Compile(context.Background(), tc.wasm)
			require.NoError(t, err)
			defer c.Close(context.Background())
			assert.Equal(t, tc.ticked, c.(*wasmtimeCompiled).ticked)
			inst, err := c.Instantiate(context.Background(), InstanceConfig{MaxMemoryBytes: 1 << 20})
			require.NoError(t, err)
			defer inst.Close(context.Background())

			stopGC := make(chan struct{})
			gcDone := make(chan int)
			go func() {
				n := 0
				for {
					select {
					case <-stopGC:
						gcDone <- n
						return
					default:
						runtime.GC()
						n++
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err = inst.Function(tc.fn).CallWithStack(ctx, make([]uint64, 2))
			close(stopGC)
			gcs := <-gcDone
			var intr *InterruptedError
			require.ErrorAs(t, err, &intr)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Positive(t, gcs, "collections completed while the guest spun")
		})
	}
}

// Interrupt works through epochs too, for modules the tick cannot serve.
func TestWasmtime_InterruptEpochs(t *testing.T) {
	e := newWasmtime(t, WasmtimeConfig{})
	c, err := e.Compile(context.Background(), wat2wasm(t, `(module (func $s) (start $s) (func (export "run") (loop $l (br $l))))`))
	require.NoError(t, err)
	defer c.Close(context.Background())
	require.False(t, c.(*wasmtimeCompiled).ticked)
	testInterrupt(t, c, "run")
}

// With epochs, ending one call's context bumps the engine's epoch, which
// every running store sees: only the store whose context ended may stop.
func TestWasmtime_EpochInterruptsOnlyItsStore(t *testing.T) {
	e := newWasmtime(t, WasmtimeConfig{})
	wasm := wat2wasm(t, `(module (func $s) (start $s)`+counter[len("(module"):])
	c, err := e.Compile(context.Background(), wasm)
	require.NoError(t, err)
	defer c.Close(context.Background())
	require.False(t, c.(*wasmtimeCompiled).ticked)

	// Measure how long a long count takes, then run it alongside guests
	// that are canceled again and again.
	const n = 200_000_000
	long, err := c.Instantiate(context.Background(), InstanceConfig{})
	require.NoError(t, err)
	defer long.Close(context.Background())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	canceled := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			inst, err := c.Instantiate(context.Background(), InstanceConfig{})
			if !assert.NoError(t, err) {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			err = inst.Function("count").CallWithStack(ctx, []uint64{0})
			cancel()
			var intr *InterruptedError
			assert.ErrorAs(t, err, &intr)
			canceled++
			_ = inst.Close(context.Background())
		}
	})
	err = long.Function("count").CallWithStack(context.Background(), []uint64{n})
	close(stop)
	wg.Wait()
	require.NoError(t, err, "the long count was not interrupted by the others' deadlines")
	b, _ := long.Memory().Read(0, 4)
	assert.Equal(t, uint32(n), binary.LittleEndian.Uint32(b))
	assert.Positive(t, canceled)
}

// A guest that grows its memory in its start function past the limit fails
// to instantiate with a *MemoryLimitError, as with wazero.
func TestWasmtime_MemoryLimitInStart(t *testing.T) {
	e := newWasmtime(t, WasmtimeConfig{})
	c, err := e.Compile(context.Background(), wat2wasm(t, `(module (memory 1)
	  (func $grow (if (i32.eq (memory.grow (i32.const 100)) (i32.const -1)) (then unreachable)))
	  (start $grow))`))
	require.NoError(t, err)
	defer c.Close(context.Background())
	_, err = c.Instantiate(context.Background(), InstanceConfig{MaxMemoryBytes: 2 << 20})
	var ml *MemoryLimitError
	require.ErrorAs(t, err, &ml)
	assert.Equal(t, uint64(101*65536), ml.Need)
	inst, err := c.Instantiate(context.Background(), InstanceConfig{MaxMemoryBytes: 8 << 20})
	require.NoError(t, err)
	defer inst.Close(context.Background())
	assert.Equal(t, uint64(101*65536), inst.PeakMemoryBytes())
	assert.NotNil(t, inst.Memory(), "an instance's memory, exported or not")
}
