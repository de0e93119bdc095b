//go:build wasmtime && cgo && unix

package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/wasmbin"
	"github.com/ferryrun/ferry/runtime/wasmbin/instrument"
)

func init() {
	Register(NameWasmtime, func(ctx context.Context, o Options) (Engine, error) {
		return NewWasmtime(ctx, WasmtimeConfig{CacheDir: o.CacheDir, Host: o.Host, Fuel: o.Fuel})
	})
}

// WasmtimeConfig configures the wasmtime engine.
type WasmtimeConfig struct {
	// CacheDir, when set, keeps compiled code on disk (in a wasmtime-VERSION
	// subdirectory) so the next process does not compile again. The
	// directory must be trusted: its files are loaded as native code.
	CacheDir string
	// Host implements the ferry namespace. A nil entry, or a missing one,
	// makes the import trap when called.
	Host map[string]HostFunction
	// Fuel, when non-zero, limits every guest call to that much fuel; a
	// call that runs out fails with a *FuelExhaustedError.
	Fuel uint64
}

// Wasmtime runs modules with Wasmtime (Cranelift), through wasmtime-go and
// cgo. It behaves as Wazero does: same InstanceConfig semantics, same error
// classification, same deterministic clocks and randomness.
//
// Interrupting a guest at its deadline: modules are instrumented
// (runtime/wasmbin/instrument, Options.Tick) so that every 1024 loop
// iterations or calls the guest calls a host function through an exported
// table; that function traps when the call's context has ended. A module the
// instrumenter refuses, or one with a start section (which runs before the
// table can be filled), is compiled by a second engine with epoch
// interruption instead: when a call's context ends the engine's epoch is
// bumped, and a per-store callback stops only the store whose context ended.
//
// Memory is allocated by Ferry's own memory creator (wasmtime_cgo.go), which
// enforces MaxMemoryBytes and so sees every refused grow: MemoryLimitHit and
// PeakMemoryBytes are exact. Like wazero's mappingPool it recycles released
// reservations, cleared, so that a fresh instance does not page-fault in
// every page its guest touches.
type Wasmtime struct {
	cfg      WasmtimeConfig
	cacheDir string // CacheDir/wasmtime-VERSION, or empty
	main     *wasmtimeRuntime

	fallbackOnce sync.Once
	fallback     *wasmtimeRuntime // epoch interruption; created on first need
	fallbackErr  error

	closeOnce sync.Once
	closed    atomic.Bool
}

var _ Engine = (*Wasmtime)(nil)

// wasmtimeRuntime is one Wasmtime engine and the linker that holds WASI and
// the ferry host module for every store of that engine.
type wasmtimeRuntime struct {
	engine *wasmtime.Engine
	linker *wasmtime.Linker
	epochs bool   // interrupted by epochs rather than the tick
	kind   string // names the compilation settings in cache file names
	tickTy *wasmtime.FuncType
}

// NewWasmtime starts a Wasmtime engine with WASI preview 1 and the ferry
// host module.
func NewWasmtime(_ context.Context, cfg WasmtimeConfig) (*Wasmtime, error) {
	if err := checkWasmtimeLayout(); err != nil {
		return nil, err
	}
	w := &Wasmtime{cfg: cfg}
	if cfg.CacheDir != "" {
		w.cacheDir = filepath.Join(cfg.CacheDir, "wasmtime-"+wasmtimeVersion())
		if err := os.MkdirAll(w.cacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("open compilation cache %s: %w", cfg.CacheDir, err)
		}
	}
	rt, err := w.newRuntime(false)
	if err != nil {
		return nil, err
	}
	w.main = rt
	keepReservations(2 * runtime.GOMAXPROCS(0))
	return w, nil
}

// wasmtimeVersion is the wasmtime-go version this binary links, which names
// the cache directory: Wasmtime refuses code serialized by another version.
func wasmtimeVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/bytecodealliance/wasmtime-go/v39" {
				if d.Replace != nil && d.Replace.Version != "" {
					return d.Replace.Version
				}
				if d.Version != "" && d.Version != "(devel)" {
					return d.Version
				}
			}
		}
	}
	return "v39"
}

func (w *Wasmtime) newRuntime(epochs bool) (*wasmtimeRuntime, error) {
	c := wasmtime.NewConfig()
	c.SetStrategy(wasmtime.StrategyCranelift)
	c.SetConsumeFuel(w.cfg.Fuel > 0)
	c.SetEpochInterruption(epochs)
	// One 32-bit memory per instance, as with wazero: MaxMemoryBytes and
	// the memory creator account for exactly one memory.
	c.SetWasmMultiMemory(false)
	c.SetWasmMemory64(false)
	c.SetWasmThreads(false)
	// Relaxed SIMD may otherwise answer differently on different CPUs.
	c.SetWasmRelaxedSIMDDeterministic(true)
	// Memory images (copy-on-write initial memory) need Wasmtime's own
	// mmap memories; with the memory creator, data segments are copied.
	c.SetMemoryInitCOWSet(false)
	installMemoryCreator(c)
	rt := &wasmtimeRuntime{engine: wasmtime.NewEngineWithConfig(c), epochs: epochs, kind: "tick"}
	if epochs {
		rt.kind = "epoch"
	}
	if w.cfg.Fuel > 0 {
		rt.kind += "-fuel"
	}
	rt.linker = wasmtime.NewLinker(rt.engine)
	rt.tickTy = wasmtime.NewFuncType(nil, nil)
	if err := defineWASI(rt.linker); err != nil {
		rt.close()
		return nil, fmt.Errorf("define WASI: %w", err)
	}
	for _, f := range abi.HostFuncs {
		fn, name := w.cfg.Host[f.Name], f.Name
		err := defineHost(rt.linker, abi.Namespace, f.Name, valKinds(f.Type.Params), valKinds(f.Type.Results),
			func(s *wasmtimeState, stack []uint64) *wasmtime.Trap {
				if fn == nil {
					panic(fmt.Sprintf("host function %s.%s is not provided by this host", abi.Namespace, name))
				}
				fn(s.callContext(), s.hostMemory(), stack)
				return nil
			})
		if err != nil {
			rt.close()
			return nil, fmt.Errorf("define %s.%s: %w", abi.Namespace, f.Name, err)
		}
	}
	return rt, nil
}

func (rt *wasmtimeRuntime) close() {
	rt.linker.Close()
	rt.engine.Close()
}

// Name implements Engine.
func (w *Wasmtime) Name() string { return NameWasmtime }

// Close implements Engine.
func (w *Wasmtime) Close(context.Context) error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		w.main.close()
		// Taking the Once makes a later Compile fail rather than create a
		// fallback engine that nothing would close.
		w.fallbackOnce.Do(func() { w.fallbackErr = errors.New("engine closed") })
		if w.fallback != nil {
			w.fallback.close()
		}
		dropReservations()
	})
	return nil
}

// Compile implements Engine.
func (w *Wasmtime) Compile(_ context.Context, wasm []byte) (Compiled, error) {
	if w.closed.Load() {
		return nil, errors.New("compile: engine closed")
	}
	rt, code, ticked := w.main, wasm, false
	if out, err := instrument.InstrumentWith(wasm, instrument.Options{Tick: true}); err == nil && !hasStart(wasm) {
		code, ticked = out, true
	} else {
		// Not instrumentable (or not valid, which compiling reports), or
		// its start function would run before the tick table is filled.
		w.fallbackOnce.Do(func() { w.fallback, w.fallbackErr = w.newRuntime(true) })
		if w.fallbackErr != nil {
			return nil, w.fallbackErr
		}
		rt = w.fallback
	}
	mod, err := w.compileCached(rt, code)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrCompile, oneLine(err.Error()))
	}
	var minMem uint64
	funcs := map[string]funcSig{}
	for _, e := range mod.Exports() {
		ty := e.Type()
		if mt := ty.MemoryType(); mt != nil {
			minMem = mt.Minimum() * 65536
		}
		if ft := ty.FuncType(); ft != nil {
			var sig funcSig
			for _, p := range ft.Params() {
				sig.params = append(sig.params, p.Kind())
			}
			for _, r := range ft.Results() {
				sig.results = append(sig.results, r.Kind())
			}
			funcs[e.Name()] = sig
		}
	}
	for _, im := range mod.Imports() {
		if mt := im.Type().MemoryType(); mt != nil {
			minMem = mt.Minimum() * 65536
		}
	}
	return &wasmtimeCompiled{rt: rt, mod: mod, minMem: minMem, funcs: funcs, ticked: ticked, fuel: w.cfg.Fuel}, nil
}

// hasStart reports whether the module has a start section, or cannot be
// read well enough to tell.
func hasStart(wasm []byte) bool {
	m, err := wasmbin.Parse(wasm)
	return err != nil || m.HasStart
}

// compileCached compiles code, or loads it from the disk cache. A cache
// file that is unreadable, corrupt or from another build is replaced.
func (w *Wasmtime) compileCached(rt *wasmtimeRuntime, code []byte) (*wasmtime.Module, error) {
	if w.cacheDir == "" {
		return wasmtime.NewModule(rt.engine, code)
	}
	sum := sha256.Sum256(code)
	path := filepath.Join(w.cacheDir, rt.kind+"-"+hex.EncodeToString(sum[:]))
	if b, err := os.ReadFile(path); err == nil {
		if payload, ok := unseal(b); ok {
			if mod, err := wasmtime.NewModuleDeserialize(rt.engine, payload); err == nil {
				return mod, nil
			}
		}
	}
	mod, err := wasmtime.NewModule(rt.engine, code)
	if err != nil {
		return nil, err
	}
	// The cache is an optimisation: failing to write it costs the next
	// process a compilation, not this one its module.
	if payload, err := mod.Serialize(); err == nil {
		_ = writeFileAtomic(path, seal(payload))
	}
	return mod, nil
}

// cacheMagic starts every cache file, followed by the SHA-256 of the rest:
// Wasmtime checks that serialized code comes from the same version and
// settings, but not that it is intact.
const cacheMagic = "ferry-wasmtime-1\n"

func seal(payload []byte) []byte {
	sum := sha256.Sum256(payload)
	out := make([]byte, 0, len(cacheMagic)+len(sum)+len(payload))
	out = append(out, cacheMagic...)
	out = append(out, sum[:]...)
	return append(out, payload...)
}

func unseal(b []byte) ([]byte, bool) {
	head := len(cacheMagic) + sha256.Size
	if len(b) < head || string(b[:len(cacheMagic)]) != cacheMagic {
		return nil, false
	}
	payload := b[head:]
	sum := sha256.Sum256(payload)
	return payload, bytes.Equal(sum[:], b[len(cacheMagic):head])
}

// writeFileAtomic writes b to path through a temporary file and a rename, so
// a concurrent reader sees the old file or the new one, never a part.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

type wasmtimeCompiled struct {
	rt     *wasmtimeRuntime
	mod    *wasmtime.Module
	minMem uint64
	funcs  map[string]funcSig // the exported functions' types
	ticked bool
	fuel   uint64
}

func (c *wasmtimeCompiled) Close(context.Context) error {
	c.mod.Close()
	return nil
}

func (c *wasmtimeCompiled) Instantiate(ctx context.Context, cfg InstanceConfig) (Instance, error) {
	if cfg.MaxMemoryBytes > 0 && c.minMem > cfg.MaxMemoryBytes {
		return nil, &MemoryLimitError{Need: c.minMem, Limit: cfg.MaxMemoryBytes}
	}
	if err := ctx.Err(); err != nil {
		return nil, &InterruptedError{Cause: err}
	}
	s := newWasmtimeState(cfg, c.fuel)
	store := wasmtime.NewStoreWithData(c.rt.engine, s)
	i := &wasmtimeInstance{store: store, s: s, sigs: c.funcs, funcs: map[string]*wasmtimeFunc{}}
	if c.rt.epochs {
		watch, err := watchEpochs(store)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("instantiate: %w", err)
		}
		store.SetEpochDeadline(1)
		i.epochs = &epochGuard{engine: c.rt.engine, watch: watch}
	}
	// The start section, if any, runs now, under the same rules as a call.
	if err := i.begin(ctx); err != nil {
		store.Close()
		return nil, err
	}
	inst, mem, err := instantiateTracked(cfg.MaxMemoryBytes, func() (*wasmtime.Instance, error) {
		return c.rt.linker.Instantiate(store, c.mod)
	})
	i.end()
	i.mem, s.mem = mem, mem
	if err != nil {
		var trap *wasmtime.Trap
		switch {
		case mem != nil && mem.hit():
			err = &MemoryLimitError{Need: mem.want(), Limit: cfg.MaxMemoryBytes}
		case errors.As(err, &trap):
			code := -1
			if c := trap.Code(); c != nil {
				code = int(*c)
			}
			err = s.classify(ctx, callFailure{code: code, msg: trap.Error()})
		case s.exited || s.hostPanic != "" || ctx.Err() != nil:
			err = s.classify(ctx, callFailure{code: -2, msg: err.Error()})
		default: // a link error: an import this host does not have
			err = fmt.Errorf("instantiate: %s", oneLine(err.Error()))
		}
		_ = i.Close(ctx)
		return nil, err
	}
	if c.ticked {
		e := inst.GetExport(store, instrument.TickTable)
		var table *wasmtime.Table
		if e != nil {
			table = e.Table()
		}
		if table == nil {
			_ = i.Close(ctx)
			return nil, fmt.Errorf("instantiate: instrumented module lacks the table %s", instrument.TickTable)
		}
		tick := wasmtime.NewFunc(store, c.rt.tickTy, s.tick)
		if err := table.Set(store, 0, wasmtime.ValFuncref(tick)); err != nil {
			_ = i.Close(ctx)
			return nil, fmt.Errorf("instantiate: fill %s: %w", instrument.TickTable, err)
		}
	}
	i.inst = inst
	return i, nil
}

// epochGuard interrupts one store of an engine with epoch interruption: when
// the call's context ends it flags the store and bumps the epoch, which makes
// every running store of the engine check its flag.
type epochGuard struct {
	engine *wasmtime.Engine
	watch  epochWatch
	stop   func() bool // the armed call's context.AfterFunc, or nil

	mu     sync.Mutex
	gen    uint64 // the call the flag may be set for; bumped when one ends
	closed bool   // the store is gone: nothing may touch the flag
}

// arm watches ctx for the call about to start.
func (g *epochGuard) arm(ctx context.Context) {
	if ctx.Done() == nil {
		return
	}
	g.mu.Lock()
	g.gen++
	gen := g.gen
	g.mu.Unlock()
	g.stop = context.AfterFunc(ctx, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.gen == gen { // the call is still running
			g.watch.set(true)
			g.engine.IncrementEpoch()
		}
	})
}

// disarm ends the call's watch; a flag it set is cleared for the next call.
func (g *epochGuard) disarm() {
	if g.stop == nil {
		return
	}
	g.stop()
	g.stop = nil
	g.retire()
}

// retire makes sure no late AfterFunc touches the flag, which the store
// frees when it closes.
func (g *epochGuard) retire() {
	g.mu.Lock()
	g.gen++
	g.watch.set(false)
	g.mu.Unlock()
}

// interrupt flags the store for good (Interrupt): the running call stops
// at its next epoch check, and begin refuses later ones.
func (g *epochGuard) interrupt() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.watch.set(true)
		g.engine.IncrementEpoch()
	}
}

// close retires the guard for good, before the store frees the flag.
func (g *epochGuard) close() {
	g.retire()
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

type wasmtimeInstance struct {
	store  *wasmtime.Store // nil once closed
	inst   *wasmtime.Instance
	s      *wasmtimeState
	mem    *trackedMemory // nil without a memory, or once closed
	epochs *epochGuard    // nil unless the engine interrupts by epochs
	sigs   map[string]funcSig
	funcs  map[string]*wasmtimeFunc

	peak uint64 // kept when closing
	hit  bool
}

// begin prepares the store for a guest call under ctx; end follows it.
func (i *wasmtimeInstance) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return &InterruptedError{Cause: err}
	}
	s := i.s
	if c := s.interrupted.Load(); c != nil {
		return &InterruptedError{Cause: *c}
	}
	if s.fuel > 0 {
		if err := i.store.SetFuel(s.fuel); err != nil {
			return fmt.Errorf("set fuel: %w", err)
		}
	}
	s.ctx, s.hostPanic = ctx, ""
	if i.epochs != nil {
		i.epochs.arm(ctx)
	}
	return nil
}

var _ Interrupter = (*wasmtimeInstance)(nil)

// Interrupt stops the running call through the tick the instrumented
// guest calls, or through an epoch for modules that are not instrumented.
func (i *wasmtimeInstance) Interrupt(cause error) {
	if i.s.interrupted.CompareAndSwap(nil, &cause) && i.epochs != nil {
		i.epochs.interrupt()
	}
}

func (i *wasmtimeInstance) end() {
	if i.epochs != nil {
		i.epochs.disarm()
	}
	i.s.ctx = nil
}

func (i *wasmtimeInstance) Function(name string) Function {
	if f, ok := i.funcs[name]; ok {
		return f
	}
	sig, ok := i.sigs[name]
	if !ok || i.store == nil {
		return nil
	}
	fn := i.inst.GetFunc(i.store, name)
	if fn == nil {
		return nil
	}
	f := &wasmtimeFunc{i: i, raw: newRawFunc(i.store, fn, sig)}
	i.funcs[name] = f
	return f
}

// Memory is the instance's memory, exported or not, as with wazero.
func (i *wasmtimeInstance) Memory() Memory {
	if i.mem == nil {
		return nil
	}
	return i.mem
}

func (i *wasmtimeInstance) PeakMemoryBytes() uint64 {
	if i.mem != nil {
		return i.mem.peak()
	}
	return i.peak
}

func (i *wasmtimeInstance) MemoryLimitHit() bool {
	if i.mem != nil {
		return i.mem.hit()
	}
	return i.hit
}

func (i *wasmtimeInstance) Close(context.Context) error {
	if i.store == nil {
		return nil
	}
	if i.mem != nil { // it goes with the store
		i.peak, i.hit = i.mem.peak(), i.mem.hit()
		i.mem.release()
		i.mem = nil
	}
	if i.epochs != nil {
		i.epochs.close()
	}
	i.store.Close()
	i.store = nil
	return nil
}

type wasmtimeFunc struct {
	i   *wasmtimeInstance
	raw *rawFunc
}

func (f *wasmtimeFunc) CallWithStack(ctx context.Context, stack []uint64) error {
	if f.i.store == nil {
		return errors.New("call on a closed instance")
	}
	if err := f.i.begin(ctx); err != nil {
		return err
	}
	failure := f.raw.call(stack)
	f.i.end()
	if failure != nil {
		return f.i.s.classify(ctx, *failure)
	}
	return nil
}

func valKinds[T ~byte](ts []T) []wasmtime.ValKind {
	out := make([]wasmtime.ValKind, len(ts))
	for i, t := range ts {
		switch wasmbin.ValType(t) {
		case wasmbin.I32:
			out[i] = wasmtime.KindI32
		case wasmbin.I64:
			out[i] = wasmtime.KindI64
		case wasmbin.F32:
			out[i] = wasmtime.KindF32
		case wasmbin.F64:
			out[i] = wasmtime.KindF64
		default:
			panic(fmt.Sprintf("engine: host function value type %v", wasmbin.ValType(t)))
		}
	}
	return out
}

// wasmtimeState is one instance's side of the host: the store's data, which
// host functions reach through their caller.
type wasmtimeState struct {
	// ctx is the context of the guest call in progress (nil between
	// calls). It is kept here because Wasmtime's host function callbacks
	// carry no context, only the store.
	ctx context.Context
	// interrupted is the cause Interrupt was given; nil until then.
	interrupted atomic.Pointer[error]

	stdin          io.Reader
	stdout, stderr io.Writer
	deterministic  bool
	rand           io.Reader
	wall, mono     int64 // the fake clocks' last readings
	fuel           uint64

	mem     *trackedMemory // once instantiated
	scratch [8]uint64      // host function stacks; calls do not nest

	exited    bool
	exitCode  uint32
	hostPanic string // why a host function failed, if one did in this call
}

func newWasmtimeState(cfg InstanceConfig, fuel uint64) *wasmtimeState {
	s := &wasmtimeState{
		stdin:         orEmpty(cfg.Stdin),
		stdout:        orDiscard(cfg.Stdout),
		stderr:        orDiscard(cfg.Stderr),
		deterministic: cfg.Deterministic,
		rand:          rand.Reader,
		wall:          fakeEpochNanos - fakeClockStep,
		mono:          -fakeClockStep,
		fuel:          fuel,
	}
	if cfg.Deterministic {
		s.rand = newSeededReader(cfg.Seed)
	}
	return s
}

// callContext is the context of the call that reached a host function.
func (s *wasmtimeState) callContext() context.Context {
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// hostMemory is the guest's memory as a host function may use it, or nil.
func (s *wasmtimeState) hostMemory() Memory {
	if m := s.memory(); m != nil {
		return m
	}
	return nil
}

func (s *wasmtimeState) memory() *trackedMemory {
	if s.mem == nil {
		// The start function is running, on the thread instantiating.
		return currentTracked()
	}
	return s.mem
}

// guestBytes is the guest's memory, valid until the guest runs again, or nil.
func (s *wasmtimeState) guestBytes() []byte {
	if m := s.memory(); m != nil {
		return m.bytes()
	}
	return nil
}

// tick is the function in slot 0 of an instrumented module's tick table,
// called every 1024 loop iterations or calls. Trapping there stops the
// guest: a trap cannot be caught by the guest.
func (s *wasmtimeState) tick(*wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	if c := s.interrupted.Load(); c != nil {
		return nil, wasmtime.NewTrap("interrupted: " + (*c).Error())
	}
	if s.ctx != nil {
		select {
		case <-s.ctx.Done():
			return nil, wasmtime.NewTrap("interrupted: " + s.ctx.Err().Error())
		default:
		}
	}
	return nil, nil
}

// hostFn is a host function on the stack encoding: params in stack, results
// written to stack[0:]. A non-nil trap stops the guest.
type hostFn func(s *wasmtimeState, stack []uint64) *wasmtime.Trap

// defineHost defines module.name in the linker, for every store. A panic in
// fn becomes a trap classified as TrapHostPanic.
func defineHost(l *wasmtime.Linker, module, name string, params, results []wasmtime.ValKind, fn hostFn) error {
	pt := make([]*wasmtime.ValType, len(params))
	for i, k := range params {
		pt[i] = wasmtime.NewValType(k)
	}
	rt := make([]*wasmtime.ValType, len(results))
	for i, k := range results {
		rt[i] = wasmtime.NewValType(k)
	}
	width := max(len(params), len(results))
	return l.FuncNew(module, name, wasmtime.NewFuncType(pt, rt), func(c *wasmtime.Caller, args []wasmtime.Val) (out []wasmtime.Val, trap *wasmtime.Trap) {
		s := c.Data().(*wasmtimeState)
		stack := s.scratch[:0]
		if width > len(s.scratch) {
			stack = make([]uint64, 0, width)
		}
		stack = stack[:width]
		for i, a := range args {
			stack[i] = valBits(a)
		}
		defer func() {
			if r := recover(); r != nil {
				s.hostPanic = fmt.Sprintf("%s.%s: %v", module, name, r)
				out, trap = nil, wasmtime.NewTrap("host function panicked: "+s.hostPanic)
			}
		}()
		if t := fn(s, stack); t != nil {
			return nil, t
		}
		out = make([]wasmtime.Val, len(results))
		for i, k := range results {
			out[i] = bitsVal(k, stack[i])
		}
		return out, nil
	})
}

func valBits(v wasmtime.Val) uint64 {
	switch v.Kind() {
	case wasmtime.KindI32:
		return uint64(uint32(v.I32()))
	case wasmtime.KindI64:
		return uint64(v.I64())
	case wasmtime.KindF32:
		return uint64(math.Float32bits(v.F32()))
	case wasmtime.KindF64:
		return math.Float64bits(v.F64())
	}
	return 0
}

func bitsVal(k wasmtime.ValKind, b uint64) wasmtime.Val {
	switch k {
	case wasmtime.KindI64:
		return wasmtime.ValI64(int64(b))
	case wasmtime.KindF32:
		return wasmtime.ValF32(math.Float32frombits(uint32(b)))
	case wasmtime.KindF64:
		return wasmtime.ValF64(math.Float64frombits(b))
	}
	return wasmtime.ValI32(int32(uint32(b)))
}

// Trap codes of Wasmtime v39's C API (wasmtime/trap.h). wasmtime-go's
// TrapCode constants predate ALWAYS_TRAP_ADAPTER and are off by one from
// OutOfFuel on, so they are not used.
const (
	trapStackOverflow = iota
	trapMemoryOutOfBounds
	trapHeapMisaligned
	trapTableOutOfBounds
	trapIndirectCallToNull
	trapBadSignature
	trapIntegerOverflow
	trapIntegerDivisionByZero
	trapBadConversionToInteger
	trapUnreachableCodeReached
	trapInterrupt
	trapAlwaysTrapAdapter
	trapOutOfFuel
)

// wasmtimeTraps maps Wasmtime's trap codes to kinds.
var wasmtimeTraps = map[int]TrapKind{
	trapStackOverflow:          TrapStackOverflow,
	trapMemoryOutOfBounds:      TrapOutOfBounds,
	trapIntegerDivisionByZero:  TrapDivideByZero,
	trapIntegerOverflow:        TrapIntegerOverflow,
	trapBadConversionToInteger: TrapInvalidConversion,
	trapBadSignature:           TrapIndirectCall,
	trapIndirectCallToNull:     TrapIndirectCall,
	trapTableOutOfBounds:       TrapTable,
	trapUnreachableCodeReached: TrapUnreachable,
}

// classify turns a failed guest call into *ExitError, *InterruptedError,
// *FuelExhaustedError or *Trap, in the order wazero's classify uses.
func (s *wasmtimeState) classify(ctx context.Context, f callFailure) error {
	if s.exited {
		return &ExitError{Code: s.exitCode}
	}
	if c := s.interrupted.Load(); c != nil {
		return &InterruptedError{Cause: *c}
	}
	if ctx.Err() != nil {
		return &InterruptedError{Cause: ctx.Err()}
	}
	detail := trapDetail(f.msg)
	if s.hostPanic != "" {
		return &Trap{Kind: TrapHostPanic, Detail: detail}
	}
	switch f.code {
	case trapOutOfFuel:
		return &FuelExhaustedError{Fuel: s.fuel}
	case trapInterrupt:
		// Only epochs interrupt, and only for a context that ended.
		return &InterruptedError{Cause: context.Canceled}
	}
	if kind, ok := wasmtimeTraps[f.code]; ok {
		return &Trap{Kind: kind, Detail: detail}
	}
	return &Trap{Kind: TrapOther, Detail: detail}
}

// trapDetail is Wasmtime's message with its wasm backtrace, without the
// native stack trace it appends, which names no guest code.
func trapDetail(msg string) string {
	if i := strings.Index(msg, "\n\nStack backtrace:"); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

// oneLine folds a multi-line engine message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(trapDetail(s)), " ")
}
