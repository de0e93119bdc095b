package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Options configure an engine made by New. Every engine takes them; an
// engine that cannot honour one refuses it with an error wrapping
// ErrUnsupported.
type Options struct {
	// CacheDir, when set, keeps compiled code on disk so the next process
	// does not compile again. Each engine keeps its own subdirectory.
	CacheDir string
	// Host implements the ferry namespace. A nil entry, or a missing one,
	// makes the import trap when called.
	Host map[string]HostFunction
	// Fuel, when non-zero, meters every guest call: each call may spend at
	// most Fuel units (about one per WebAssembly instruction) and fails
	// with a *FuelExhaustedError past it. Unlike a timeout, the point
	// where a guest runs out is the same on every run and every machine.
	// Only engines that meter fuel take it (wasmtime); wazero cannot.
	Fuel uint64
}

// Factory makes an engine.
type Factory func(ctx context.Context, opts Options) (Engine, error)

// Engine names for New. Wasmtime is registered only in builds with the
// wasmtime tag (cgo).
const (
	NameWazero            = "wazero"
	NameWazeroInterpreter = "wazero-interpreter"
	NameWasmtime          = "wasmtime"
)

// ErrUnknownEngine is returned by New for a name no engine registered,
// such as "wasmtime" in a build without the wasmtime tag.
var ErrUnknownEngine = errors.New("unknown engine")

// ErrUnsupported wraps an option the engine cannot honour.
var ErrUnsupported = errors.New("not supported by this engine")

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes an engine available to New under name. It panics if name
// is taken: registration happens in init functions.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("engine: " + name + " registered twice")
	}
	registry[name] = f
}

// Names lists the engines this build can make, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Available reports whether New knows name.
func Available(name string) bool { return slices.Contains(Names(), name) }

// New makes the engine registered under name.
func New(ctx context.Context, name string, opts Options) (Engine, error) {
	registryMu.RLock()
	f, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		hint := ""
		if name == NameWasmtime {
			hint = " (this build lacks it: build with -tags wasmtime, which needs cgo)"
		}
		return nil, fmt.Errorf("%w %q%s; this build has %v", ErrUnknownEngine, name, hint, Names())
	}
	return f(ctx, opts)
}

func init() {
	wazeroFactory := func(interp bool) Factory {
		return func(ctx context.Context, o Options) (Engine, error) {
			if o.Fuel != 0 {
				return nil, fmt.Errorf("fuel metering: %w (wazero); use %s", ErrUnsupported, NameWasmtime)
			}
			return NewWazero(ctx, WazeroConfig{Interpreter: interp, CacheDir: o.CacheDir, Host: o.Host})
		}
	}
	Register(NameWazero, wazeroFactory(false))
	Register(NameWazeroInterpreter, wazeroFactory(true))
}
