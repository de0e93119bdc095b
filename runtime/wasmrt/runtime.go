// Package wasmrt runs Ferry job modules in-process: the front door of the
// runtime. New starts a Runtime (an engine plus the host functions); Load
// checks a module against the ABI, compiles it once (through an on-disk
// cache) and starts its instance pool; Module.Invoke runs one invocation
// under the module's limits.
//
// A Module is safe for concurrent use; each invocation gets its own instance.
// By default instances are fresh for every invocation, so no guest memory
// carries over and a job behaves the same on every host; pure jobs may opt in
// to instance reuse.
package wasmrt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/engine"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/state"
)

// Engine names accepted by Config.Engine (engine.Names lists what this build
// has: EngineWasmtime needs the wasmtime build tag).
const (
	EngineWazero            = engine.NameWazero
	EngineWazeroInterpreter = engine.NameWazeroInterpreter
	EngineWasmtime          = engine.NameWasmtime
)

// Config configures a Runtime. The zero value is usable: the wazero
// compiler, no disk cache, no state store (state calls are denied), no
// logging.
type Config struct {
	// Engine is one of engine.Names(); default EngineWazero.
	Engine string
	// CacheDir holds compiled code across processes. Empty: no disk cache.
	CacheDir string
	// Fuel, when non-zero, limits every guest call to that much fuel
	// (about one unit per instruction): a deterministic CPU limit. A call
	// that runs out fails with KindCPULimit. Only EngineWasmtime meters
	// fuel; New refuses it for the others.
	Fuel uint64
	// Logger receives guest logs, tagged with job and invocation_id.
	Logger *slog.Logger
	// State backs the state host functions; nil denies them.
	State state.Store
	// HTTPClient sends guests' HTTP requests; nil uses a private client.
	// Its redirect policy is replaced so redirects obey the allow-list.
	HTTPClient *http.Client
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Engine == "" || engine.Available(c.Engine) {
		return nil
	}
	return fmt.Errorf("%w %q: this build has %v", engine.ErrUnknownEngine, c.Engine, engine.Names())
}

// Runtime compiles and runs modules. It is safe for concurrent use.
type Runtime struct {
	cfg    Config
	eng    engine.Engine
	log    *slog.Logger
	client *http.Client

	mu      sync.Mutex
	modules map[*Module]struct{}
	closed  bool
}

// New starts a runtime.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger, modules: map[*Module]struct{}{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.client = newHTTPClient(cfg.HTTPClient)
	eng, err := engine.New(ctx, cmp.Or(cfg.Engine, EngineWazero), engine.Options{
		CacheDir: cfg.CacheDir,
		Host:     r.hostFuncs(),
		Fuel:     cfg.Fuel,
	})
	if err != nil {
		return nil, fmt.Errorf("start runtime: %w", err)
	}
	r.eng = eng
	return r, nil
}

// EngineName names the engine in use.
func (r *Runtime) EngineName() string { return r.eng.Name() }

// Close closes every module loaded by r, then the engine.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	mods := make([]*Module, 0, len(r.modules))
	for m := range r.modules {
		mods = append(mods, m)
	}
	r.mu.Unlock()
	var err error
	for _, m := range mods {
		err = errors.Join(err, m.Close(ctx))
	}
	return errors.Join(err, r.eng.Close(ctx))
}

// ModuleConfig is how one job runs.
type ModuleConfig struct {
	// Name identifies the job in logs and errors. Default: the module
	// digest.
	Name string
	// StateNamespace is where the job's state lives; default Name. Every
	// deployment of one job, on any host and in any version, should share
	// it, so that the state follows the job.
	StateNamespace string
	Limits         Limits
	// AllowHosts lists the hosts the job's HTTP requests may reach:
	// "example.com" (any port), "example.com:8443", or "*.example.com".
	// Empty: no network.
	AllowHosts []string
	// Deterministic fixes clocks and seeds randomness. Nil: on unless the
	// module has the network capability.
	Deterministic *bool
	// Seed seeds randomness in deterministic mode.
	Seed uint64
	// Reuse keeps an instance for the next invocation instead of starting
	// fresh. Only for pure modules (ErrReuseNotPure otherwise) and only for
	// reactors (commands exit after one run).
	Reuse bool
	// PoolSize is how many ready instances are kept off the hot path.
	// 0: GOMAXPROCS. Negative: no pool; every invocation instantiates.
	PoolSize int
}

// Load checks wasm against the ABI, compiles it and starts its pool. Errors
// about the module wrap the sentinels of runtime/abi (ErrNotWasm,
// ErrMissingExport, ErrABIVersion…) or engine.ErrCompile.
func (r *Runtime) Load(ctx context.Context, wasm []byte, cfg ModuleConfig) (*Module, error) {
	digest := modstore.Digest(wasm)
	name := cfg.Name
	if name == "" {
		name = digest[:len(modstore.Prefix)+12]
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	info, err := abi.Describe(wasm)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	if cfg.Reuse && (!info.Pure() || info.Shape != abi.Reactor) {
		return nil, fmt.Errorf("load %s: %w (module is a %s with capabilities %v)", name, ErrReuseNotPure, info.Shape, info.Capabilities)
	}
	allow, err := parseAllowList(cfg.AllowHosts)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	compiled, err := r.eng.Compile(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	m := &Module{
		rt:        r,
		name:      name,
		ns:        cmp.Or(cfg.StateNamespace, name),
		digest:    digest,
		info:      info,
		limits:    r.storeBounded(cfg.Limits.withDefaults()),
		allow:     allow,
		compiled:  compiled,
		reuse:     cfg.Reuse,
		seed:      cfg.Seed,
		log:       r.log.With("job", name),
		retryGate: make(chan struct{}, 1),
	}
	m.deterministic = !info.Has(abi.CapNetwork)
	if cfg.Deterministic != nil {
		m.deterministic = *cfg.Deterministic
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = compiled.Close(ctx)
		return nil, fmt.Errorf("load %s: runtime %w", name, ErrClosed)
	}
	r.modules[m] = struct{}{}
	r.mu.Unlock()
	m.pool = newPool(m, cfg.PoolSize)
	return m, nil
}

func (r *Runtime) forget(m *Module) {
	r.mu.Lock()
	delete(r.modules, m)
	r.mu.Unlock()
}

// storeBounded lowers a module's state limits to what the state store can
// hold (state.Bounded), so an oversized value fails where the job writes
// it, with "too large", rather than at the commit as the host's fault.
func (r *Runtime) storeBounded(l Limits) Limits {
	b, ok := r.cfg.State.(state.Bounded)
	if !ok {
		return l
	}
	sl := b.StoreLimits()
	if sl.MaxValueBytes > 0 && sl.MaxValueBytes < l.MaxStateValueBytes {
		l.MaxStateValueBytes = sl.MaxValueBytes
	}
	if sl.MaxCommitBytes > 0 && sl.MaxCommitBytes < l.MaxStateWriteBytes {
		l.MaxStateWriteBytes = sl.MaxCommitBytes
	}
	return l
}
