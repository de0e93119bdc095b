// Package engine is the seam between Ferry and a WebAssembly engine. It
// compiles modules and instantiates them with a memory cap, WASI and the
// ferry host functions, and it classifies what went wrong (trap, exit,
// interruption). It knows nothing about Ferry's ABI beyond the host function
// table in runtime/abi: driving the ABI is runtime/wasmrt's job.
//
// wazero (pure Go) is the default engine; others implement the same
// interfaces. A Compiled is safe for concurrent use; an Instance is not.
package engine

import (
	"context"
	"io"
)

// Engine compiles modules. It is safe for concurrent use.
type Engine interface {
	// Name identifies the engine and its mode, e.g. "wazero-compiler".
	Name() string
	// Compile validates and compiles a module. The result is safe to share
	// across goroutines.
	Compile(ctx context.Context, wasm []byte) (Compiled, error)
	// Close releases the engine and everything compiled by it.
	Close(ctx context.Context) error
}

// Compiled is a compiled module, shareable across goroutines.
type Compiled interface {
	// Instantiate creates a fresh instance: new memory, globals and tables.
	// It runs the module's start section, if any, but neither _initialize
	// nor _start.
	Instantiate(ctx context.Context, cfg InstanceConfig) (Instance, error)
	Close(ctx context.Context) error
}

// InstanceConfig is what an instance sees of the outside world.
type InstanceConfig struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// MaxMemoryBytes caps the instance's linear memory. Growing past it fails
	// (memory.grow returns -1) and is recorded; instantiating a module whose
	// minimum is above it fails with a *MemoryLimitError.
	MaxMemoryBytes uint64
	// Deterministic fixes the clocks and seeds randomness with Seed, so the
	// same input gives the same output on every run and every host.
	Deterministic bool
	Seed          uint64
}

// Instance is one instantiated module. It is not safe for concurrent use.
type Instance interface {
	// Function returns the exported function name, or nil when absent.
	Function(name string) Function
	// Memory returns the exported memory, or nil when absent.
	Memory() Memory
	// PeakMemoryBytes is the largest the linear memory has been.
	PeakMemoryBytes() uint64
	// MemoryLimitHit reports whether a grow was refused by MaxMemoryBytes.
	MemoryLimitHit() bool
	// Close releases the instance. An instance whose call failed is already
	// unusable but must still be closed.
	Close(ctx context.Context) error
}

// Interrupter is an Instance whose guest calls can be stopped from another
// goroutine without a context, so a caller can arm one reusable timer per
// instance instead of a context per call (the warm-call path's largest
// cost). Interrupt makes the running call, or the next one if none is
// running, end promptly with *InterruptedError{Cause: cause}; every later
// call fails the same way, so an interrupted instance must be closed. It is
// safe to call concurrently with a call, but not after Close.
type Interrupter interface {
	Interrupt(cause error)
}

// Function is an exported function of an instance.
type Function interface {
	// CallWithStack calls the function with params in stack and writes the
	// results back to stack, which must be large enough for both. Errors are
	// *Trap, *ExitError or *InterruptedError.
	CallWithStack(ctx context.Context, stack []uint64) error
}

// Memory is a guest's linear memory.
type Memory interface {
	// Read returns a view of n bytes at offset, valid until the guest runs
	// again. ok is false when the range is out of bounds.
	Read(offset, n uint32) ([]byte, bool)
	// Write copies b to offset. It returns false when out of bounds.
	Write(offset uint32, b []byte) bool
	// Size is the current size in bytes.
	Size() uint32
}

// HostFunction implements one import of the ferry namespace. Parameters are
// in stack; results are written to stack[0:]. ctx is the ctx of the guest
// call that reached the host function, so per-invocation data travels in it.
type HostFunction func(ctx context.Context, mem Memory, stack []uint64)
