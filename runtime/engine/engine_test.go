package engine

import (
	"context"
	"errors"
	"os"
	"runtime"
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

func compile(t *testing.T, e *Wazero, name string) Compiled {
	t.Helper()
	c, err := e.Compile(context.Background(), readWAT(t, name))
	require.NoError(t, err)
	return c
}

func newEngine(t *testing.T, cfg WazeroConfig) *Wazero {
	t.Helper()
	e, err := NewWazero(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// A recycled memory mapping must never show one guest's bytes to the next.
func TestWazero_RecycledMemoryIsZeroed(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, WazeroConfig{})
	c := compile(t, e, "calls")
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
}

func TestWazero_MemoryLimit(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, WazeroConfig{})
	bomb := compile(t, e, "membomb")
	inst, err := bomb.Instantiate(ctx, InstanceConfig{MaxMemoryBytes: 2 << 20})
	require.NoError(t, err)
	defer inst.Close(ctx)
	st := make([]uint64, 2)
	err = inst.Function("ferry_run").CallWithStack(ctx, st)
	var trap *Trap
	require.ErrorAs(t, err, &trap)
	assert.Equal(t, TrapUnreachable, trap.Kind)
	assert.True(t, inst.MemoryLimitHit())
	assert.Equal(t, uint64(17*65536), inst.PeakMemoryBytes(), "1 page + one 16-page grow; the next grow is refused")

	big := compile(t, e, "echo")
	_, err = big.Instantiate(ctx, InstanceConfig{MaxMemoryBytes: 1024})
	var ml *MemoryLimitError
	require.ErrorAs(t, err, &ml)
	assert.Equal(t, uint64(65536), ml.Need)
}

func TestWazero_ClassifyErrors(t *testing.T) {
	e := newEngine(t, WazeroConfig{})
	st := make([]uint64, 2)
	call := func(ctx context.Context, name string) error {
		inst, err := compile(t, e, name).Instantiate(context.Background(), InstanceConfig{MaxMemoryBytes: 1 << 20})
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

	_, err := e.Compile(context.Background(), []byte("\x00asm\x01\x00\x00\x00\x01"))
	assert.ErrorIs(t, err, ErrCompile)
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
