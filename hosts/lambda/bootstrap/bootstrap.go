// Package bootstrap is what runs inside an AWS Lambda execution
// environment: it loads the package's module.wasm and manifest.json once,
// at init, and answers every invocation with Ferry's runtime — the same
// sandbox, limits and host functions as every other host. cmd/ferry-lambda
// is its main; the Lambda host (hosts/lambda) packages that binary with a
// job and deploys it on the provided.al2023 runtime.
//
// Cold start. Compiling a Go guest with wazero's optimising compiler takes
// most of a second, and Lambda bills init. So by default the handler is
// tiered (EngineTiered): it starts on wazero's interpreter, which loads the
// same module in about a tenth of the time, and compiles in the background;
// once the compiled module is ready, calls switch to it. Compiled code is
// kept in a cache under /tmp, which Lambda keeps across the environment's
// restarts (a crash or a timeout resets the process, not /tmp): a restarted
// environment loads the compiled module from the cache and skips the
// interpreter. docs/rationale.md records the measurements.
//
// Lambda freezes an environment between invocations, so the background
// compilation advances only while the environment is initialising or
// serving; a function called once a minute keeps using the interpreter
// for a few calls longer. That is the trade: the first call is fast, and
// the steady state is the compiler's.
package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/hostpkg"
	"github.com/ferryrun/ferry/hosts/lambda/event"
	"github.com/ferryrun/ferry/hosts/local"
	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// Engines a handler may run on.
const (
	// EngineTiered starts on the interpreter and switches to compiled
	// code when the background compilation finishes (or starts compiled
	// when the cache already holds the module).
	EngineTiered = "tiered"
	// EngineCompiler compiles at init (slow first call, fast after).
	EngineCompiler = "compiler"
	// EngineInterpreter never compiles.
	EngineInterpreter = "interpreter"
)

// Environment variables the Lambda host sets on the function.
const (
	// EnvEngine selects the engine (Engine* constants); default tiered.
	EnvEngine = "FERRY_ENGINE"
	// EnvState is the state store a stateful job uses: a state.Open spec,
	// dynamodb://TABLE?region=… on Lambda.
	EnvState = "FERRY_STATE"
	// EnvStateNamespace is the job's state namespace (host.Job); default
	// the job's name.
	EnvStateNamespace = "FERRY_STATE_NAMESPACE"
	// EnvCacheDir overrides where compiled code is cached; default
	// $TMPDIR/ferry-cache (/tmp on Lambda).
	EnvCacheDir = "FERRY_CACHE_DIR"
)

// deadlineMargin is how long before Lambda's deadline a call is stopped.
const deadlineMargin = 200 * time.Millisecond

// Config configures a Handler.
type Config struct {
	// Dir holds the package: module.wasm and manifest.json
	// (LAMBDA_TASK_ROOT).
	Dir string
	// Engine is one of the Engine* constants; empty: EngineTiered.
	Engine string
	// CacheDir keeps compiled code; empty: no cache.
	CacheDir string
	// State is the store behind the state host functions; nil: a job
	// that uses state fails with a host error saying none is configured.
	State state.Store
	// StateNamespace is the job's namespace in State; empty: the job name.
	StateNamespace string
	// Logger receives the job's logs and the bootstrap's own lines.
	Logger *slog.Logger
}

// Validate checks the config.
func (c Config) Validate() error {
	switch c.Engine {
	case "", EngineTiered, EngineCompiler, EngineInterpreter:
	default:
		return fmt.Errorf("engine %q: want %s, %s or %s", c.Engine, EngineTiered, EngineCompiler, EngineInterpreter)
	}
	if c.Dir == "" {
		return errors.New("no package directory")
	}
	return nil
}

// ConfigFromEnv reads the configuration Lambda gives a custom runtime
// (LAMBDA_TASK_ROOT) and the variables the Lambda host sets. It does not
// open the state store; OpenState does.
func ConfigFromEnv(getenv func(string) string) Config {
	dir := getenv("LAMBDA_TASK_ROOT")
	if dir == "" {
		dir = "."
	}
	cache := getenv(EnvCacheDir)
	if cache == "" {
		tmp := getenv("TMPDIR")
		if tmp == "" {
			tmp = "/tmp"
		}
		cache = filepath.Join(tmp, "ferry-cache")
	}
	return Config{Dir: dir, Engine: getenv(EnvEngine), CacheDir: cache, StateNamespace: getenv(EnvStateNamespace)}
}

// tier is one engine's runtime with the job loaded on it.
type tier struct {
	engine string
	rt     *wasmrt.Runtime
	host   *local.Host
	dep    *host.Deployment
	calls  sync.WaitGroup // in flight on this tier
}

// Handler answers Lambda invocations. It is safe for concurrent use
// (Lambda sends one at a time per environment unless
// AWS_LAMBDA_MAX_CONCURRENCY says otherwise).
type Handler struct {
	cfg      Config
	manifest *hostpkg.Manifest
	module   []byte
	log      *slog.Logger

	cur      atomic.Pointer[tier]
	mu       sync.Mutex // guards switching tiers and closing
	closed   bool
	bg       sync.WaitGroup // the background compilation and retirements
	stopBG   context.CancelFunc
	compiled chan struct{} // closed when the compiled tier serves (or failed)
	// CompileErr is the background compilation's error, if it failed.
	compileErr atomic.Pointer[error]
}

// Load reads the package and loads the job. In tiered mode it returns as
// soon as the interpreter serves and compiles in the background.
func Load(ctx context.Context, cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if cfg.Engine == "" {
		cfg.Engine = EngineTiered
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, wasm, err := readPackage(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if cfg.StateNamespace == "" {
		cfg.StateNamespace = m.Job
	}
	if cfg.State == nil {
		// The runtime would deny every state call, and the job would fail
		// each time as if it were its own fault: refuse at init instead.
		info, err := abi.Describe(wasm)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		if info.Has(abi.CapState) {
			return nil, fmt.Errorf("bootstrap: job %s keeps state, and no state store is configured (%s)", m.Job, EnvState)
		}
	}
	h := &Handler{cfg: cfg, manifest: m, module: wasm, log: log, compiled: make(chan struct{})}

	engine := cfg.Engine
	if engine == EngineTiered && cached(cfg.CacheDir) {
		// A restarted environment: /tmp survived, and so did the compiled
		// code. Loading it from the cache beats the interpreter.
		engine = EngineCompiler
	}
	first := engine
	if first == EngineTiered {
		first = EngineInterpreter
	}
	t, err := h.newTier(ctx, first)
	if err != nil {
		return nil, err
	}
	h.cur.Store(t)
	if engine != EngineTiered {
		close(h.compiled)
		return h, nil
	}
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.stopBG = cancel
	h.bg.Add(1)
	go h.compile(bgCtx)
	return h, nil
}

// readPackage reads and checks manifest.json and module.wasm.
func readPackage(dir string) (*hostpkg.Manifest, []byte, error) {
	raw, err := os.ReadFile(filepath.Join(dir, hostpkg.ManifestFile))
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap: read manifest: %w", err)
	}
	if len(raw) > hostpkg.MaxManifestBytes {
		return nil, nil, fmt.Errorf("bootstrap: manifest is %d bytes, at most %d", len(raw), hostpkg.MaxManifestBytes)
	}
	var m hostpkg.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, fmt.Errorf("bootstrap: parse manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, nil, fmt.Errorf("bootstrap: manifest: %w", err)
	}
	wasm, err := os.ReadFile(filepath.Join(dir, hostpkg.ModuleFile))
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap: read module: %w", err)
	}
	if got := modstore.Digest(wasm); got != m.Digest {
		return nil, nil, fmt.Errorf("bootstrap: module.wasm hashes to %s, but the manifest says %s", got, m.Digest)
	}
	return &m, wasm, nil
}

// cached reports whether dir holds compiled code from an earlier process.
func cached(dir string) bool {
	if dir == "" {
		return false
	}
	found := false
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

func (h *Handler) newTier(ctx context.Context, engine string) (*tier, error) {
	rc := wasmrt.Config{Engine: wasmrt.EngineWazero, Logger: h.log, State: h.cfg.State}
	if engine == EngineInterpreter {
		rc.Engine = wasmrt.EngineWazeroInterpreter
	} else {
		rc.CacheDir = h.cfg.CacheDir
	}
	rt, err := wasmrt.New(ctx, rc)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: start the %s: %w", engine, err)
	}
	lh, err := local.New(local.Config{Runtime: rt, Name: "aws-lambda", ReusePure: true})
	if err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	m := h.manifest
	d, err := lh.Deploy(ctx, host.Job{
		Name: m.Job, Module: h.module, Digest: m.Digest, Pure: m.Pure, AllowHosts: m.AllowHosts,
		StateNamespace: h.cfg.StateNamespace,
		Limits: host.Limits{MemoryMB: m.Limits.MemoryMB, Timeout: m.Limits.Timeout(),
			MaxInputBytes: m.Limits.MaxInputBytes, MaxOutputBytes: m.Limits.MaxOutputBytes},
	})
	if err != nil {
		_ = lh.Close(ctx)
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("bootstrap: load %s on the %s: %w", m.Job, engine, err)
	}
	return &tier{engine: engine, rt: rt, host: lh, dep: d}, nil
}

// compile loads the module compiled and switches calls to it.
func (h *Handler) compile(ctx context.Context) {
	defer h.bg.Done()
	defer close(h.compiled)
	start := time.Now()
	t, err := h.newTier(ctx, EngineCompiler)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("background compilation failed; staying on the interpreter", "err", err)
		}
		h.compileErr.Store(&err)
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		closeTier(context.Background(), t)
		return
	}
	old := h.cur.Swap(t)
	h.mu.Unlock()
	h.log.Info("compiled; calls now run compiled code", "job", h.manifest.Job, "compile_ms", time.Since(start).Milliseconds())
	h.retire(old)
}

// retire closes a tier once its in-flight calls finish.
func (h *Handler) retire(t *tier) {
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		t.calls.Wait()
		closeTier(context.Background(), t)
	}()
}

func closeTier(ctx context.Context, t *tier) {
	_ = t.host.Close(ctx)
	_ = t.rt.Close(ctx)
}

// WaitCompiled blocks until the background compilation has finished (at
// once when there is none) and reports its error.
func (h *Handler) WaitCompiled(ctx context.Context) error {
	select {
	case <-h.compiled:
	case <-ctx.Done():
		return ctx.Err()
	}
	if p := h.compileErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Engine is the engine calls run on now.
func (h *Handler) Engine() string { return h.cur.Load().engine }

// Manifest is the loaded package's manifest.
func (h *Handler) Manifest() hostpkg.Manifest { return *h.manifest }

// acquire returns the current tier with a call registered on it.
func (h *Handler) acquire() (*tier, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	t := h.cur.Load()
	t.calls.Add(1)
	return t, true
}

// Invoke implements aws-lambda-go's lambda.Handler: payload in, answer
// out, or an error whose type tells the caller what failed
// (event.ErrorType).
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if deadline, ok := ctx.Deadline(); ok {
		// Stop the job a little before Lambda's own deadline, so a job
		// that runs out of Lambda's time ends with Ferry.Timeout and its
		// logs, and the environment stays warm, rather than being killed
		// (Sandbox.Timedout) and the next call starting cold.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-deadlineMargin))
		defer cancel()
	}
	req, kind, err := event.Parse(payload)
	if err != nil {
		return nil, fail(event.TypeBadRequest, err.Error())
	}
	t, ok := h.acquire()
	if !ok {
		return nil, fail(event.TypeHost, "bootstrap is shutting down")
	}
	defer t.calls.Done()
	m := h.manifest
	switch kind {
	case event.KindWarm:
		if req.Ferry != nil && req.Ferry.Digest != "" && req.Ferry.Digest != m.Digest {
			return nil, fail(event.TypeNotDeployed, fmt.Sprintf("the caller deployed %s, but this function now holds %s", req.Ferry.Digest, m.Digest))
		}
		return json.Marshal(event.Warmed{Warm: true, Job: m.Job, Digest: m.Digest, Engine: t.engine})
	case event.KindTangle:
		res, err := t.host.Invoke(ctx, t.dep, host.Request{Input: req.Args})
		if err != nil {
			return nil, invokeError(err)
		}
		return json.Marshal(event.TangleResponse{JobID: *req.JobID, Result: res.Output})
	}
	c := req.Ferry
	if c.Digest != "" && c.Digest != m.Digest {
		return nil, fail(event.TypeNotDeployed, fmt.Sprintf("the caller deployed %s, but this function now holds %s", c.Digest, m.Digest))
	}
	res, err := t.host.Invoke(ctx, t.dep, host.Request{Input: c.Input, InvocationID: c.InvocationID, IdempotencyKey: c.IdempotencyKey})
	if err != nil {
		return nil, invokeError(err)
	}
	return json.Marshal(event.Response{
		Output: res.Output, DurationUs: res.Duration.Microseconds(), MemoryUsedBytes: res.MemoryUsedBytes,
		Instantiated: res.Cold, InvocationID: res.InvocationID, Logs: res.Logs, Engine: t.engine,
	})
}

// Close stops the background compilation and closes the runtimes.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	t := h.cur.Load()
	h.mu.Unlock()
	if h.stopBG != nil {
		h.stopBG()
	}
	h.bg.Wait()
	t.calls.Wait()
	closeTier(ctx, t)
	return nil
}

// fail is an error aws-lambda-go reports as is: errorType and message.
func fail(t event.ErrorType, msg string) error {
	return messages.InvokeResponse_Error{Type: string(t), Message: msg}
}

// invokeError maps the local host's error to its Lambda error type.
func invokeError(err error) error {
	var je *wasmrt.JobError
	if errors.As(err, &je) {
		t, ok := jobTypes[je.Kind]
		if ok {
			return fail(t, err.Error())
		}
	}
	switch {
	case errors.Is(err, host.ErrTimeout):
		return fail(event.TypeTimeout, err.Error())
	case errors.Is(err, host.ErrLimit):
		return fail(event.TypeInputTooLarge, err.Error())
	case errors.Is(err, host.ErrJob):
		return fail(event.TypeGuestError, err.Error())
	}
	return fail(event.TypeHost, err.Error())
}

var jobTypes = map[wasmrt.Kind]event.ErrorType{
	wasmrt.KindTrap:         event.TypeTrap,
	wasmrt.KindExit:         event.TypeExit,
	wasmrt.KindGuestError:   event.TypeGuestError,
	wasmrt.KindABIViolation: event.TypeABIViolation,
	wasmrt.KindTimeout:      event.TypeTimeout,
	wasmrt.KindMemoryLimit:  event.TypeMemoryLimit,
	wasmrt.KindInputLimit:   event.TypeInputTooLarge,
	wasmrt.KindOutputLimit:  event.TypeOutputTooLarge,
}
