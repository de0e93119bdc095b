package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readWAT(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../wasm-examples/wat/" + name + ".wasm")
	require.NoError(t, err)
	return b
}

func newEngine(t *testing.T, cfg WazeroConfig) *Wazero {
	t.Helper()
	e, err := NewWazero(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// eachEngine runs test once per engine this build has (engine.Names: the
// wasmtime engine joins with the wasmtime build tag), each a fresh engine
// made through New with opts.
func eachEngine(t *testing.T, opts Options, test func(t *testing.T, e Engine)) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			e, err := New(context.Background(), name, opts)
			require.NoError(t, err)
			t.Cleanup(func() { _ = e.Close(context.Background()) })
			test(t, e)
		})
	}
}

func compileOn(t *testing.T, e Engine, name string) Compiled {
	t.Helper()
	c, err := e.Compile(context.Background(), readWAT(t, name))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// A fresh instance never shows one guest's bytes to the next, whether the
// engine recycles memory (wazero's mapping pool) or not.
func TestEngine_RecycledMemoryIsZeroed(t *testing.T) {
	eachEngine(t, Options{}, func(t *testing.T, e Engine) {
		ctx := context.Background()
		c := compileOn(t, e, "calls")
		cfg := InstanceConfig{MaxMemoryBytes: 1 << 20}
		for round := range 4 {
			inst, err := c.Instantiate(ctx, cfg)
			require.NoError(t, err)
			mem := inst.Memory()
			all, ok := mem.Read(0, mem.Size())
			require.True(t, ok)
			for i, b := range all {
				if b != 0 {
					t.Fatalf("round %d: byte %d is %#x in a fresh instance", round, i, b)
				}
			}
			secret := make([]byte, mem.Size())
			for i := range secret {
				secret[i] = 0xAA
			}
			require.True(t, mem.Write(0, secret))
			require.NoError(t, inst.Close(ctx))
		}
	})
}

func TestEngine_MemoryLimit(t *testing.T) {
	eachEngine(t, Options{}, func(t *testing.T, e Engine) {
		ctx := context.Background()
		bomb := compileOn(t, e, "membomb")
		inst, err := bomb.Instantiate(ctx, InstanceConfig{MaxMemoryBytes: 2 << 20})
		require.NoError(t, err)
		defer inst.Close(ctx)
		assert.False(t, inst.MemoryLimitHit())
		assert.Equal(t, uint64(65536), inst.PeakMemoryBytes())
		st := make([]uint64, 2)
		err = inst.Function("ferry_run").CallWithStack(ctx, st)
		var trap *Trap
		require.ErrorAs(t, err, &trap)
		assert.Equal(t, TrapUnreachable, trap.Kind)
		assert.True(t, inst.MemoryLimitHit())
		assert.Equal(t, uint64(17*65536), inst.PeakMemoryBytes(), "1 page + one 16-page grow; the next grow is refused")
		require.NoError(t, inst.Close(ctx))
		assert.True(t, inst.MemoryLimitHit(), "still known after Close")
		assert.Equal(t, uint64(17*65536), inst.PeakMemoryBytes())

		// A refused grow counts even when the guest handles it: spin's
		// allocator returns 0.
		spin := compileOn(t, e, "spin")
		inst, err = spin.Instantiate(ctx, InstanceConfig{MaxMemoryBytes: 4 << 20})
		require.NoError(t, err)
		defer inst.Close(ctx)
		st[0] = 3 << 20 // ferry_alloc grows to fit
		require.NoError(t, inst.Function("ferry_alloc").CallWithStack(ctx, st))
		assert.NotZero(t, uint32(st[0]))
		assert.False(t, inst.MemoryLimitHit())
		assert.Equal(t, uint64(49*65536), inst.PeakMemoryBytes(), "1 page, then 48 more for the 1 KiB heap base + 3 MiB")
		st[0] = 1 << 20 // over: ferry_alloc returns 0
		require.NoError(t, inst.Function("ferry_alloc").CallWithStack(ctx, st))
		assert.Zero(t, uint32(st[0]))
		assert.True(t, inst.MemoryLimitHit(), "65 pages would be over the 64 allowed")

		big := compileOn(t, e, "echo")
		_, err = big.Instantiate(ctx, InstanceConfig{MaxMemoryBytes: 1024})
		var ml *MemoryLimitError
		require.ErrorAs(t, err, &ml)
		assert.Equal(t, uint64(65536), ml.Need)
	})
}

func TestEngine_ClassifyErrors(t *testing.T) {
	eachEngine(t, Options{}, func(t *testing.T, e Engine) {
		st := make([]uint64, 2)
		call := func(ctx context.Context, name string) error {
			inst, err := compileOn(t, e, name).Instantiate(context.Background(), InstanceConfig{MaxMemoryBytes: 1 << 20})
			require.NoError(t, err)
			defer inst.Close(context.Background())
			fn := inst.Function("ferry_run")
			if fn == nil {
				fn = inst.Function("_start")
			}
			return fn.CallWithStack(ctx, st)
		}
		var trap *Trap
		require.ErrorAs(t, call(context.Background(), "trap"), &trap)
		assert.Equal(t, TrapUnreachable, trap.Kind)
		require.ErrorAs(t, call(context.Background(), "stackoverflow"), &trap)
		assert.Equal(t, TrapStackOverflow, trap.Kind)

		var exit *ExitError
		require.ErrorAs(t, call(context.Background(), "exit3"), &exit)
		assert.Equal(t, uint32(3), exit.Code)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		var intr *InterruptedError
		require.ErrorAs(t, call(ctx, "loop"), &intr)
		assert.True(t, errors.Is(intr, context.DeadlineExceeded))

		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		require.ErrorAs(t, call(ctx, "loop"), &intr)
		assert.True(t, errors.Is(intr, context.Canceled))

		_, err := e.Compile(context.Background(), []byte("\x00asm\x01\x00\x00\x00\x01"))
		assert.ErrorIs(t, err, ErrCompile)
		assert.NotContains(t, err.Error(), "\n")
	})
}

// Interrupt stops a running call from another goroutine, with no context
// involved, and every later call on the instance fails at once the same
// way; an instance interrupted before any call never runs its guest.
func TestEngine_Interrupt(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			e, err := New(context.Background(), name, Options{})
			require.NoError(t, err)
			defer e.Close(context.Background())
			if name == NameWazeroInterpreter {
				// The interpreter is not instrumented: its calls stop
				// through their context only.
				inst, err := compileOn(t, e, "loop").Instantiate(context.Background(), InstanceConfig{})
				require.NoError(t, err)
				defer inst.Close(context.Background())
				_, ok := inst.(Interrupter)
				assert.False(t, ok, "an interpreter instance cannot be interrupted without a context")
				return
			}
			testInterrupt(t, compileOn(t, e, "loop"), "ferry_run")
		})
	}
}

func testInterrupt(t *testing.T, c Compiled, fn string) {
	t.Helper()
	inst, err := c.Instantiate(context.Background(), InstanceConfig{MaxMemoryBytes: 1 << 20})
	require.NoError(t, err)
	defer inst.Close(context.Background())
	intr, ok := inst.(Interrupter)
	require.True(t, ok, "the instance implements Interrupter")
	// A backstop: if Interrupt did nothing, the context would end the
	// spin after 10 s with DeadlineExceeded, which the test tells apart
	// from the Canceled it interrupts with.
	backstop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	time.AfterFunc(20*time.Millisecond, func() { intr.Interrupt(context.Canceled) })
	start := time.Now()
	err = inst.Function(fn).CallWithStack(backstop, make([]uint64, 2))
	var ie *InterruptedError
	require.ErrorAs(t, err, &ie)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 5*time.Second, "the running call was stopped by Interrupt, not the backstop")
	intr.Interrupt(context.DeadlineExceeded) // the first cause stays
	err = inst.Function(fn).CallWithStack(context.Background(), make([]uint64, 2))
	require.ErrorAs(t, err, &ie)
	assert.ErrorIs(t, err, context.Canceled)

	before, err := c.Instantiate(context.Background(), InstanceConfig{MaxMemoryBytes: 1 << 20})
	require.NoError(t, err)
	defer before.Close(context.Background())
	before.(Interrupter).Interrupt(context.Canceled)
	err = before.Function(fn).CallWithStack(context.Background(), make([]uint64, 2))
	require.ErrorAs(t, err, &ie)
	assert.ErrorIs(t, err, context.Canceled)
}

// Instances of one compiled module are created and run from many goroutines
// at once, each with its own memory limit, which each must get.
func TestEngine_ConcurrentInstances(t *testing.T) {
	eachEngine(t, Options{}, func(t *testing.T, e Engine) {
		bomb := compileOn(t, e, "membomb")
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				limitPages := uint64(32 + 16*(g%4)) // 2 to 3.5 MiB
				for range 10 {
					inst, err := bomb.Instantiate(context.Background(), InstanceConfig{MaxMemoryBytes: limitPages * 65536})
					if !assert.NoError(t, err) {
						return
					}
					err = inst.Function("ferry_run").CallWithStack(context.Background(), make([]uint64, 2))
					var trap *Trap
					assert.ErrorAs(t, err, &trap)
					assert.True(t, inst.MemoryLimitHit())
					// 1 page, then 16 at a time while they fit.
					assert.Equal(t, (1+16*((limitPages-1)/16))*65536, inst.PeakMemoryBytes(), "limit %d pages", limitPages)
					assert.NoError(t, inst.Close(context.Background()))
				}
			})
		}
		wg.Wait()
	})
}

// Closing twice is harmless, in any order.
func TestEngine_CloseTwice(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e, err := New(ctx, name, Options{})
			require.NoError(t, err)
			c, err := e.Compile(ctx, readWAT(t, "echo"))
			require.NoError(t, err)
			inst, err := c.Instantiate(ctx, InstanceConfig{MaxMemoryBytes: 1 << 20})
			require.NoError(t, err)
			require.NoError(t, inst.Close(ctx))
			require.NoError(t, inst.Close(ctx))
			require.NoError(t, c.Close(ctx))
			require.NoError(t, c.Close(ctx))
			require.NoError(t, e.Close(ctx))
			require.NoError(t, e.Close(ctx))
		})
	}
}

// Host functions see the call's context and memory; one that panics, or one
// the host does not provide, traps the guest as TrapHostPanic, and the
// engine stays usable.
func TestEngine_HostFunctions(t *testing.T) {
	type key struct{}
	var seen []string
	host := map[string]HostFunction{
		"log": func(ctx context.Context, mem Memory, stack []uint64) {
			b, ok := mem.Read(uint32(stack[1]), uint32(stack[2]))
			if !ok {
				panic("log: message out of bounds")
			}
			seen = append(seen, fmt.Sprintf("%v:%d:%s", ctx.Value(key{}), stack[0], b))
		},
		"take": func(_ context.Context, mem Memory, stack []uint64) {
			if !mem.Write(uint32(stack[0]), []byte("taken")) {
				panic("take: out of bounds")
			}
			stack[0] = 5
		},
	}
	hostWAT := wasmHost()
	eachEngine(t, Options{Host: host}, func(t *testing.T, e Engine) {
		seen = nil
		c, err := e.Compile(context.Background(), hostWAT)
		require.NoError(t, err)
		defer c.Close(context.Background())
		inst, err := c.Instantiate(context.Background(), InstanceConfig{MaxMemoryBytes: 1 << 20})
		require.NoError(t, err)
		defer inst.Close(context.Background())
		ctx := context.WithValue(context.Background(), key{}, "call-1")
		st := make([]uint64, 2)
		require.NoError(t, inst.Function("ok").CallWithStack(ctx, st))
		assert.Equal(t, uint64(5), st[0], "take's result reaches the guest")
		assert.Equal(t, []string{"call-1:2:hello"}, seen)
		got, ok := inst.Memory().Read(100, 5)
		require.True(t, ok)
		assert.Equal(t, "taken", string(got))

		for _, fn := range []string{"panics", "missing"} {
			var trap *Trap
			require.ErrorAs(t, inst.Function(fn).CallWithStack(ctx, st), &trap, fn)
			assert.Equal(t, TrapHostPanic, trap.Kind, fn)
			if fn == "panics" {
				assert.Contains(t, trap.Detail, "message out of bounds")
			}
		}
		require.NoError(t, inst.Function("ok").CallWithStack(ctx, st), "the instance stays usable")
	})
}

// wasmHost is a module importing ferry.log, ferry.take and ferry.error:
// "ok" logs "hello" at level 2 and calls take(100, 5); "panics" logs a
// message out of bounds; "missing" calls ferry.error, which the test's host
// does not provide.
func wasmHost() []byte {
	i32 := byte(0x7f)
	logT := append([]byte{0x60}, append(vec([]byte{i32}, []byte{i32}, []byte{i32}), 0x00)...)
	pairT := append([]byte{0x60}, append(vec([]byte{i32}, []byte{i32}), 0x01, i32)...)
	voidPairT := append([]byte{0x60}, append(vec([]byte{i32}, []byte{i32}), 0x00)...)
	runT := []byte{0x60, 0x00, 0x01, i32}
	imp := func(name string, typ byte) []byte {
		return append(append(str("ferry"), str(name)...), 0x00, typ)
	}
	exp := func(name string, kind, idx byte) []byte { return append(str(name), kind, idx) }
	body := func(code ...byte) []byte {
		b := append([]byte{0x00}, code...) // no locals
		return append(uleb(uint64(len(b)+1)), append(b, 0x0b)...)
	}
	return append([]byte("\x00asm\x01\x00\x00\x00"), slices.Concat(
		section(1, vec(logT, pairT, voidPairT, runT)),
		section(2, vec(imp("log", 0), imp("take", 1), imp("error", 2))),
		section(3, vec([]byte{3}, []byte{3}, []byte{3})),
		section(5, vec([]byte{0x00, 0x01})),
		section(7, vec(exp("memory", 2, 0), exp("ok", 0, 3), exp("panics", 0, 4), exp("missing", 0, 5))),
		section(10, vec(
			// log(2, 0, 5); take(100, 5)
			body(0x41, 0x02, 0x41, 0x00, 0x41, 0x05, 0x10, 0x00, 0x41, 0xe4, 0x00, 0x41, 0x05, 0x10, 0x01),
			// log(0, 65535, 2); 0
			body(0x41, 0x00, 0x41, 0xff, 0xff, 0x03, 0x41, 0x02, 0x10, 0x00, 0x41, 0x00),
			// error(0, 0); 0
			body(0x41, 0x00, 0x41, 0x00, 0x10, 0x02, 0x41, 0x00),
		)),
		section(11, vec(append([]byte{0x00, 0x41, 0x00, 0x0b}, str("hello")...))),
	)...)
}

// Binary encoding helpers for the modules tests build.

func uleb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func str(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func vec(items ...[]byte) []byte { return append(uleb(uint64(len(items))), slices.Concat(items...)...) }

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(uint64(len(content)))...), content...)
}

func TestMappingPool_Bounded(t *testing.T) {
	p := newMappingPool(1)
	a, ok := p.get(1 << 20)
	require.True(t, ok)
	b, ok := p.get(1 << 20)
	require.True(t, ok)
	a[10] = 1
	p.put(a, 11)
	p.put(b, 0) // over the bound: unmapped
	assert.Len(t, p.free[1<<20], 1)
	c, ok := p.get(1 << 20)
	require.True(t, ok)
	assert.Zero(t, c[10], "recycled mapping is cleared")
	p.put(c, 0)
	p.drain()
	assert.Empty(t, p.free)
}

// spinNoMemory is a command with no memory whose _start loops forever: the
// instrumenter refuses it, so it runs under wazero's own interruption.
var spinNoMemory = []byte{
	0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type () -> ()
	0x03, 0x02, 0x01, 0x00, // one function
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export _start
	0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0 end
}

// A spinning guest must stop at its deadline even while the Go runtime keeps
// trying to stop the world: the interruption check has to leave compiled
// code often enough for the GC (and the goroutine that flips the stop flag)
// to run.
func TestWazero_InterruptUnderGC(t *testing.T) {
	for _, tc := range []struct {
		name         string
		wasm         []byte
		fn           string
		instrumented bool
		interpreter  bool
	}{
		{"instrumented loop", readWAT(t, "loop"), "ferry_run", true, false},
		{"no memory: wazero's mechanism", spinNoMemory, "_start", false, false},
		{"interpreter", readWAT(t, "loop"), "ferry_run", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, WazeroConfig{Interpreter: tc.interpreter})
			c, err := e.Compile(context.Background(), tc.wasm)
			require.NoError(t, err)
			assert.Equal(t, tc.instrumented, Instrumented(c))
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
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
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
