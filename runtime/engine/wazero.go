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

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ferryrun/ferry/runtime/abi"
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
type Wazero struct {
	name  string
	rt    wazero.Runtime
	cache wazero.CompilationCache
	mem   *mappingPool
}

var _ Engine = (*Wazero)(nil)

// NewWazero starts a wazero runtime with WASI preview 1 and the ferry host
// module.
func NewWazero(ctx context.Context, cfg WazeroConfig) (*Wazero, error) {
	rc := wazero.NewRuntimeConfigCompiler()
	name := "wazero-compiler"
	if cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
		name = "wazero-interpreter"
	}
	// Interrupt guests whose context ends: the timeout must stop a guest,
	// never leave it spinning.
	rc = rc.WithCloseOnContextDone(true)
	w := &Wazero{name: name, mem: newMappingPool(2 * runtime.GOMAXPROCS(0))}
	if cfg.CacheDir != "" && !cfg.Interpreter {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("open compilation cache %s: %w", cfg.CacheDir, err)
		}
		w.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	w.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, w.rt); err != nil {
		_ = w.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	b := w.rt.NewHostModuleBuilder(abi.Namespace)
	for _, f := range abi.HostFuncs {
		fn := cfg.Host[f.Name]
		name := f.Name
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			if fn == nil {
				panic(fmt.Sprintf("host function %s.%s is not provided by this host", abi.Namespace, name))
			}
			fn(ctx, mod.Memory(), stack)
		}), valueTypes(f.Type.Params), valueTypes(f.Type.Results)).Export(f.Name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		_ = w.Close(ctx)
		return nil, fmt.Errorf("instantiate %s host module: %w", abi.Namespace, err)
	}
	return w, nil
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

// Compile implements Engine.
func (w *Wazero) Compile(ctx context.Context, wasm []byte) (Compiled, error) {
	cm, err := w.rt.CompileModule(ctx, wasm)
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
	return &wazeroCompiled{rt: w.rt, cm: cm, minMem: minMem, mem: w.mem}, nil
}

// Close implements Engine.
func (w *Wazero) Close(ctx context.Context) error {
	var err error
	if w.rt != nil {
		err = w.rt.Close(ctx)
	}
	if w.cache != nil {
		err = errors.Join(err, w.cache.Close(ctx))
	}
	w.mem.drain()
	return err
}

type wazeroCompiled struct {
	rt     wazero.Runtime
	cm     wazero.CompiledModule
	minMem uint64
	mem    *mappingPool
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
	return &wazeroInstance{mod: mod, mem: mem, funcs: map[string]api.Function{}}, nil
}

func (c *wazeroCompiled) Close(ctx context.Context) error { return c.cm.Close(ctx) }

type wazeroInstance struct {
	mod   api.Module
	mem   *limitedMemory
	funcs map[string]api.Function
}

func (i *wazeroInstance) Function(name string) Function {
	if f, ok := i.funcs[name]; ok {
		return wazeroFunc{f}
	}
	f := i.mod.ExportedFunction(name)
	if f == nil {
		return nil
	}
	i.funcs[name] = f
	return wazeroFunc{f}
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

type wazeroFunc struct{ f api.Function }

func (f wazeroFunc) CallWithStack(ctx context.Context, stack []uint64) error {
	if err := f.f.CallWithStack(ctx, stack); err != nil {
		return classify(ctx, err)
	}
	return nil
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
	kind := TrapOther
	switch {
	case strings.Contains(first, "wasm error: unreachable"):
		kind = TrapUnreachable
	case strings.Contains(first, "stack overflow"):
		kind = TrapStackOverflow
	case strings.Contains(first, "wasm error: out of bounds memory access"):
		kind = TrapOutOfBounds
	case strings.Contains(first, "wasm error: integer divide by zero"):
		kind = TrapDivideByZero
	case strings.Contains(first, "wasm error: integer overflow"):
		kind = TrapIntegerOverflow
	case strings.Contains(first, "wasm error: invalid conversion to integer"):
		kind = TrapInvalidConversion
	case strings.Contains(first, "wasm error: indirect call type mismatch"):
		kind = TrapIndirectCall
	case strings.Contains(first, "wasm error: invalid table access"):
		kind = TrapTable
	case !strings.Contains(first, "wasm error:"):
		kind = TrapHostPanic
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
