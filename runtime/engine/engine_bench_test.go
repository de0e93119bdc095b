package engine

import (
	"context"
	"os"
	"testing"
)

// BenchmarkCall is the engine's floor for one reactor invocation: the two
// guest calls (ferry_alloc, ferry_run) and the bulk copies, nothing else.
func BenchmarkCall(b *testing.B) {
	ctx := context.Background()
	wasm, err := os.ReadFile("../../wasm-examples/wat/echo.wasm")
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewWazero(ctx, WazeroConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	c, err := e.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	inst, err := c.Instantiate(ctx, InstanceConfig{MaxMemoryBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	alloc, run, mem := inst.Function("ferry_alloc"), inst.Function("ferry_run"), inst.Memory()
	in := make([]byte, 1024)
	st := make([]uint64, 2)
	b.ReportAllocs()
	for b.Loop() {
		st[0] = uint64(len(in))
		if err := alloc.CallWithStack(ctx, st); err != nil {
			b.Fatal(err)
		}
		mem.Write(uint32(st[0]), in)
		st[1] = uint64(len(in))
		if err := run.CallWithStack(ctx, st); err != nil {
			b.Fatal(err)
		}
		out, _ := mem.Read(uint32(st[0]>>32), uint32(st[0]))
		_ = append([]byte(nil), out...)
	}
}
