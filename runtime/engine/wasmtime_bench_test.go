//go:build wasmtime && cgo && unix

package engine

import (
	"context"
	"os"
	"testing"
)

// BenchmarkCallWasmtime is BenchmarkCall on the wasmtime engine: the two
// guest calls of a reactor invocation (ferry_alloc, ferry_run) and the bulk
// copies, nothing else.
func BenchmarkCallWasmtime(b *testing.B) {
	ctx := context.Background()
	wasm, err := os.ReadFile("../../wasm-examples/wat/echo.wasm")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fuel uint64
	}{{"plain", 0}, {"fuel", 1 << 40}} {
		b.Run(tc.name, func(b *testing.B) {
			e, err := NewWasmtime(ctx, WasmtimeConfig{Fuel: tc.fuel})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close(ctx)
			c, err := e.Compile(ctx, wasm)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close(ctx)
			inst, err := c.Instantiate(ctx, InstanceConfig{MaxMemoryBytes: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer inst.Close(ctx)
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
		})
	}
}

// BenchmarkInstantiateWasmtime is the cost of a fresh instance that the
// guest then writes to: what a call without a warm pooled instance pays
// first, page faults included.
func BenchmarkInstantiateWasmtime(b *testing.B) {
	ctx := context.Background()
	wasm, err := os.ReadFile("../../wasm-examples/wat/echo.wasm")
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewWasmtime(ctx, WasmtimeConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	c, err := e.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	in := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		inst, err := c.Instantiate(ctx, InstanceConfig{MaxMemoryBytes: 128 << 20})
		if err != nil {
			b.Fatal(err)
		}
		_ = inst.Function("ferry_run")
		inst.Memory().Write(1024, in)
		_ = inst.Close(ctx)
	}
}
