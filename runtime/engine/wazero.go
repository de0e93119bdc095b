package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/wasmbin/instrument"
)

// WazeroConfig configures the wazero engine.
type WazeroConfig struct {
	// Interpreter selects wazero's interpreter instead of its optimising
	// compiler: no compile cost, slower execution.
	Interpreter bool
	// CacheDir, when set, keeps compiled code on disk so the next process
	// does not compile again. Ignored by the interpreter.
	CacheDir string
	// Host implements the ferry namespace. A nil entry, or a missing one,
	// makes the import trap when called.
	Host map[string]HostFunction
}

// Wazero is the default engine.
//
// Interrupting a guest at its deadline: wazero's own mechanism
// (WithCloseOnContextDone) costs a goroutine per guest call and an indirect
// call at every loop iteration. With the optimising compiler, Ferry instead
// instruments each module (runtime/wasmbin/instrument) with an inline check
// of an exported stop global at function entries and loop headers, and sets
// that global when the call's context ends. Modules the instrumenter cannot
// handle run on a second runtime that uses wazero's mechanism, as does the
// interpreter, whose own check is cheap.
type Wazero struct {
	name  string
	cfg   WazeroConfig
	cache wazero.CompilationCache
	mem   *mappingPool

	rt wazero.Runtime // instrumented modules, or everything with the interpreter

	fallbackOnce sync.Once
	fallback     wazero.Runtime // wazero's own termination; created on first need
	fallbackErr  error
}

var _ Engine = (*Wazero)(nil)

// NewWazero starts a wazero runtime with WASI preview 1 and the ferry host
// module.
func NewWazero(ctx context.Context, cfg WazeroConfig) (*Wazero, error) {
	w := &Wazero{name: "wazero-compiler", cfg: cfg, mem: newMappingPool(2 * runtime.GOMAXPROCS(0))}
	if cfg.Interpreter {
		w.name = "wazero-interpreter"
	}
	if cfg.CacheDir != "" && !cfg.Interpreter {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("open compilation cache %s: %w", cfg.CacheDir, err)
		}
		w.cache = cache
	}
	rt, err := w.newRuntime(ctx, cfg.Interpreter)
	if err != nil {
		_ = w.Close(ctx)
		return nil, err
	}
	w.rt = rt
	return w, nil
}

func (w *Wazero) newRuntime(ctx context.Context, wazeroTermination bool) (wazero.Runtime, error) {
	rc := wazero.NewRuntimeConfigCompiler()
	if w.cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.WithCloseOnContextDone(wazeroTermination)
	if w.cache != nil {
		rc = rc.WithCompilationCache(w.cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	b := rt.NewHostModuleBuilder(abi.Namespace)
	for _, f := range abi.HostFuncs {
		fn := w.cfg.Host[f.Name]
		name := f.Name
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			if fn == nil {
				panic(fmt.Sprintf("host function %s.%s is not provided by this host", abi.Namespace, name))
			}
			fn(ctx, mod.Memory(), stack)
		}), valueTypes(f.Type.Params), valueTypes(f.Type.Results)).Export(f.Name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate %s host module: %w", abi.Namespace, err)
	}
	return rt, nil
}

func valueTypes[T ~byte](ts []T) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = api.ValueType(t)
	}
	return out
}

// Name implements Engine.
func (w *Wazero) Name() string { return w.name }

// Compile implements Engine. wazero can panic on some malformed modules
// (found by fuzzing); that is reported as a compile error, never a crash.
func (w *Wazero) Compile(ctx context.Context, wasm []byte) (c Compiled, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%w: engine rejected the module: %v", ErrCompile, r)
		}
	}()
	rt, code, instrumented := w.rt, wasm, false
	if !w.cfg.Interpreter {
		if out, err := instrument.Instrument(wasm); err == nil {
			code, instrumented = out, true
		} else {
			// Not instrumentable (or not valid, which compiling reports
			// better): use wazero's own interruption.
			w.fallbackOnce.Do(func() { w.fallback, w.fallbackErr = w.newRuntime(ctx, true) })
			if w.fallbackErr != nil {
				return nil, w.fallbackErr
			}
			rt = w.fallback
		}
	}
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompile, err)
	}
	var minMem uint64
	for _, m := range cm.ExportedMemories() {
		minMem = uint64(m.Min()) * 65536
	}
	for _, m := range cm.ImportedMemories() {
		minMem = uint64(m.Min()) * 65536
	}
	return &wazeroCompiled{rt: rt, cm: cm, minMem: minMem, mem: w.mem, instrumented: instrumented}, nil
}

// Instrumented reports whether c interrupts through Ferry's inline check
// (true) or wazero's own mechanism.
func Instrumented(c Compiled) bool {
	wc, ok := c.(*wazeroCompiled)
	return ok && wc.instrumented
}

// Close implements Engine.
func (w *Wazero) Close(ctx context.Context) error {
	var err error
	if w.rt != nil {
		err = w.rt.Close(ctx)
	}
	if w.fallback != nil {
		err = errors.Join(err, w.fallback.Close(ctx))
	}
	if w.cache != nil {
		err = errors.Join(err, w.cache.Close(ctx))
	}
	w.mem.drain()
	return err
}

type wazeroCompiled struct {
	rt           wazero.Runtime
	cm           wazero.CompiledModule
	minMem       uint64
	mem          *mappingPool
	instrumented bool
}

func (c *wazeroCompiled) Instantiate(ctx context.Context, cfg InstanceConfig) (inst Instance, err error) {
	if cfg.MaxMemoryBytes > 0 && c.minMem > cfg.MaxMemoryBytes {
		return nil, &MemoryLimitError{Need: c.minMem, Limit: cfg.MaxMemoryBytes}
	}
	mem := &limitedMemory{limit: cfg.MaxMemoryBytes, pool: c.mem}
	mc := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may coexist
		WithStartFunctions().
		WithStdin(orEmpty(cfg.Stdin)).
		WithStdout(orDiscard(cfg.Stdout)).
		WithStderr(orDiscard(cfg.Stderr))
	if cfg.Deterministic {
		// wazero's default clocks are already fake and deterministic; seed
		// randomness explicitly so a seed can be chosen per job.
		mc = mc.WithRandSource(newSeededReader(cfg.Seed))
	} else {
		mc = mc.WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithRandSource(rand.Reader)
	}
	ictx := experimental.WithMemoryAllocator(ctx, mem)
	defer func() {
		// Defence in depth: an allocator refusal during instantiation must
		// be an error, never a crash of the host process.
		if r := recover(); r != nil {
			inst, err = nil, fmt.Errorf("instantiate: %v", r)
			if mem.hit {
				err = &MemoryLimitError{Need: mem.want, Limit: mem.limit}
			}
		}
	}()
	mod, err := c.rt.InstantiateModule(ictx, c.cm, mc)
	if err != nil {
		if mem.hit {
			return nil, &MemoryLimitError{Need: mem.want, Limit: mem.limit}
		}
		return nil, classify(ctx, err)
	}
	wi := &wazeroInstance{mod: mod, mem: mem, funcs: map[string]api.Function{}}
	if c.instrumented {
		g, ok := mod.ExportedGlobal(instrument.StopGlobal).(api.MutableGlobal)
		if !ok {
			_ = mod.Close(ctx)
			return nil, fmt.Errorf("instantiate: instrumented module lacks a mutable %s", instrument.StopGlobal)
		}
		wi.stop = g
		return stoppableWazero{wi}, nil
	}
	return wi, nil
}

func (c *wazeroCompiled) Close(ctx context.Context) error { return c.cm.Close(ctx) }

type wazeroInstance struct {
	mod   api.Module
	mem   *limitedMemory
	funcs map[string]api.Function
	stop  api.MutableGlobal // nil unless instrumented
	// interrupted is the cause Interrupt was given; nil until then.
	interrupted atomic.Pointer[error]
}

func (i *wazeroInstance) Function(name string) Function {
	if f, ok := i.funcs[name]; ok {
		return wazeroFunc{f, i}
	}
	f := i.mod.ExportedFunction(name)
	if f == nil {
		return nil
	}
	i.funcs[name] = f
	return wazeroFunc{f, i}
}

// stoppableWazero is an instrumented instance, which Interrupt can stop.
// Without instrumentation (the interpreter) a guest call stops only when
// its context ends, through wazero's own watch, so the instance is not an
// Interrupter.
type stoppableWazero struct{ *wazeroInstance }

var _ Interrupter = stoppableWazero{}

// Interrupt sets the stop global the instrumented guest polls at every
// function entry and loop header.
// Only the first call sets it; the global is written from Go nowhere else.
func (i stoppableWazero) Interrupt(cause error) {
	if i.interrupted.CompareAndSwap(nil, &cause) {
		i.stop.Set(1)
	}
}

func (i *wazeroInstance) interruption() error {
	if c := i.interrupted.Load(); c != nil {
		return &InterruptedError{Cause: *c}
	}
	return nil
}

func (i *wazeroInstance) Memory() Memory {
	m := i.mod.Memory()
	if m == nil {
		return nil
	}
	return m
}

func (i *wazeroInstance) PeakMemoryBytes() uint64         { return i.mem.peak }
func (i *wazeroInstance) MemoryLimitHit() bool            { return i.mem.hit }
func (i *wazeroInstance) Close(ctx context.Context) error { return i.mod.Close(ctx) }

type wazeroFunc struct {
	f api.Function
	i *wazeroInstance
}

func (f wazeroFunc) CallWithStack(ctx context.Context, stack []uint64) error {
	if err := f.i.interruption(); err != nil {
		return err
	}
	if stop := f.i.stop; stop != nil && ctx.Done() != nil {
		// The guest polls the stop global at every function entry and loop
		// header, so setting it ends the call promptly with a trap that
		// classify reports as an interruption. AfterFunc runs no goroutine
		// until the context actually ends.
		if ctx.Err() != nil {
			return &InterruptedError{Cause: ctx.Err()}
		}
		cancel := context.AfterFunc(ctx, func() { stop.Set(1) })
		defer cancel()
	}
	if err := f.f.CallWithStack(ctx, stack); err != nil {
		if err := f.i.interruption(); err != nil {
			return err
		}
		return classify(ctx, err)
	}
	return nil
}

// wazeroTraps maps wazero's trap messages (internal/wasmruntime) to kinds.
// Stack overflow has no "wasm error:" prefix in the optimising compiler.
var wazeroTraps = []struct {
	text string
	kind TrapKind
}{
	{"wasm error: unreachable", TrapUnreachable},
	{"stack overflow", TrapStackOverflow},
	{"wasm error: out of bounds memory access", TrapOutOfBounds},
	{"wasm error: integer divide by zero", TrapDivideByZero},
	{"wasm error: integer overflow", TrapIntegerOverflow},
	{"wasm error: invalid conversion to integer", TrapInvalidConversion},
	{"wasm error: indirect call type mismatch", TrapIndirectCall},
	{"wasm error: invalid table access", TrapTable},
}

// classify turns a wazero error into *Trap, *ExitError or *InterruptedError.
func classify(ctx context.Context, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return &InterruptedError{Cause: context.DeadlineExceeded}
		case sys.ExitCodeContextCanceled:
			return &InterruptedError{Cause: context.Canceled}
		}
		return &ExitError{Code: exit.ExitCode()}
	}
	if ctx.Err() != nil {
		return &InterruptedError{Cause: ctx.Err()}
	}
	msg := err.Error()
	first, _, _ := strings.Cut(msg, "\n")
	kind := TrapHostPanic // not a wasm trap: a host function panicked
	for _, t := range wazeroTraps {
		if strings.Contains(first, t.text) {
			kind = t.kind
			break
		}
	}
	if kind == TrapHostPanic && strings.Contains(first, "wasm error:") {
		kind = TrapOther
	}
	return &Trap{Kind: kind, Detail: msg}
}

// limitedMemory backs one instance's linear memory and enforces its cap.
// When it can, it reserves the whole cap as one lazily committed mapping up
// front, so growing never copies; otherwise it falls back to Go slices.
// wazero calls it from the goroutine running the guest only.
type limitedMemory struct {
	buf    []byte
	limit  uint64
	peak   uint64
	want   uint64
	hit    bool
	mapped bool
	pool   *mappingPool
}

// maxReserve bounds one mapping: wasm32 addresses at most 4 GiB.
const maxReserve = 4 << 30

var _ experimental.MemoryAllocator = (*limitedMemory)(nil)

func (m *limitedMemory) Allocate(capBytes, maxBytes uint64) experimental.LinearMemory {
	if m.limit == 0 || (maxBytes > 0 && maxBytes < m.limit) {
		m.limit = maxBytes
	}
	if b, ok := m.pool.get(m.limit); ok {
		m.buf, m.mapped = b[:0], true
	}
	return m
}

func (m *limitedMemory) Reallocate(size uint64) []byte {
	if m.limit > 0 && size > m.limit {
		m.hit, m.want = true, size
		return nil
	}
	if size > uint64(cap(m.buf)) {
		// Only without a mapping. Grow geometrically (bounded by the
		// limit) so a guest growing page by page does not copy every time.
		newCap := max(size, uint64(cap(m.buf))*2)
		if m.limit > 0 {
			newCap = min(newCap, m.limit)
		}
		nb := make([]byte, size, newCap)
		copy(nb, m.buf)
		m.buf = nb
	} else {
		m.buf = m.buf[:size]
	}
	m.peak = max(m.peak, size)
	return m.buf
}

func (m *limitedMemory) Free() {
	if m.mapped && m.buf != nil {
		m.pool.put(m.buf, m.peak)
	}
	m.buf = nil
}

// seededReader is a deterministic randomness source.
type seededReader struct {
	mu  sync.Mutex
	rng *mrand.ChaCha8
}

func newSeededReader(seed uint64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &seededReader{rng: mrand.NewChaCha8(s)}
}

func (r *seededReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.Read(p)
}

func orEmpty(r io.Reader) io.Reader {
	if r == nil {
		return strings.NewReader("")
	}
	return r
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
