package httphost

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/hostpkg"
	"github.com/ferryrun/ferry/hosts/local"
	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/telemetry"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// Server defaults and bounds.
const (
	DefaultMaxRequestBytes = 32 << 20  // an invocation body: 6 MiB of input as a JSON array, with room
	DefaultMaxPackageBytes = 100 << 20 // a PUT body
	DefaultMaxFunctions    = 1000
	DefaultTimeoutSecs     = 300  // the protocol's default
	MaxTimeoutSecs         = 900  // the protocol's maximum
	MaxMemoryMB            = 4096 // what a wasm32 job can address
	DefaultMaxConcurrency  = 1000 // the protocol's maximum
	maxEnvelopeBytes       = 64 << 10
)

// functionIDRE is what a function id may be.
var functionIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// invocationIDRE bounds a caller's invocation id (it is echoed into JSON
// and logs unescaped, so it is restricted to safe characters).
var invocationIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Runtime runs the modules; required. The server does not close it.
	Runtime *wasmrt.Runtime
	// DataDir keeps deployed functions across restarts; required.
	DataDir string
	// Token, when set, is the bearer token every request but /healthz
	// must carry.
	Token string
	// MaxRequestBytes bounds an invocation's body; MaxPackageBytes a
	// deployment's. Zero: the defaults. Over: 413.
	MaxRequestBytes int64
	MaxPackageBytes int64
	// MaxFunctions bounds how many functions may be deployed.
	MaxFunctions int
	// PoolSize is each function's pool of ready instances; 0: GOMAXPROCS.
	PoolSize int
	// FreshInstances gives every invocation a fresh instance. By default
	// pure reactor jobs keep their instance between invocations (as a
	// Lambda environment stays warm), which saves instantiating on every
	// call; jobs with state, network or filesystem access, and commands,
	// always get a fresh one.
	FreshInstances bool
	// PublicURL is the base URL reported in deployments' endpoint; empty:
	// taken from each request's Host.
	PublicURL string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil: a private registry
	// (served at /metrics either way).
	Registry *prometheus.Registry
}

// Server is the custom-FaaS HTTP host: it deploys WebAssembly functions and
// runs their invocations in a local host, speaking the protocol of
// specs/custom-faas-http.md plus Ferry's extensions (docs/http-host.md).
type Server struct {
	cfg     ServerConfig
	log     *slog.Logger
	local   *local.Host
	store   *store
	metrics *metrics
	mux     *http.ServeMux
	handler http.Handler // mux within the caller's trace

	deployMu sync.Mutex // serialises deploy and delete
	mu       sync.RWMutex
	funcs    map[string]*function
	byJobID  map[uint32]*function

	inflight sync.WaitGroup
	closed   atomic.Bool
}

// function is a deployed function.
type function struct {
	rec   *record
	dep   *host.Deployment
	shape abi.Shape
	sem   chan struct{}
	// Effective limits (defaults filled in).
	memoryMB, timeoutMs, maxInput, maxOutput int
	obs                                      *funcMetrics
}

// NewServer opens the data directory and redeploys every function kept
// there. A function that no longer loads is logged and skipped, so one bad
// record never keeps the server down.
func NewServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("http host: no runtime")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("http host: no data directory")
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxPackageBytes <= 0 {
		cfg.MaxPackageBytes = DefaultMaxPackageBytes
	}
	if cfg.MaxFunctions <= 0 {
		cfg.MaxFunctions = DefaultMaxFunctions
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := openStore(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("http host: %w", err)
	}
	lh, err := local.New(local.Config{Runtime: cfg.Runtime, Name: "http", PoolSize: cfg.PoolSize, ReusePure: !cfg.FreshInstances})
	if err != nil {
		return nil, fmt.Errorf("http host: %w", err)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		cfg: cfg, log: log, local: lh, store: st, metrics: newMetrics(reg),
		funcs: map[string]*function{}, byJobID: map[uint32]*function{},
	}
	s.routes()

	recs, mods, errs := st.load()
	for _, err := range errs {
		log.Error("skipping a stored function that cannot be read", "err", err)
	}
	for i, rec := range recs {
		f, err := s.deploy(ctx, rec, mods[i])
		if err != nil {
			log.Error("skipping a stored function that no longer deploys", "function_id", rec.FunctionID, "err", err)
			continue
		}
		s.add(f)
		log.Info("restored function", "function_id", rec.FunctionID, "digest", rec.Digest)
	}
	return s, nil
}

// Handler is the server's HTTP handler.
// It continues a caller's trace (W3C traceparent).
func (s *Server) Handler() http.Handler { return s.handler }

// Functions is the number of deployed functions.
func (s *Server) Functions() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.funcs)
}

// Close stops taking invocations, waits for those in flight (or for ctx)
// and releases every module. Deployments stay in the data directory. Call
// it after http.Server.Shutdown, which stops new requests and waits for
// handlers.
func (s *Server) Close(ctx context.Context) error {
	s.closed.Store(true)
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("http host: close: %w", ctx.Err())
	}
	return s.local.Close(ctx)
}

func (s *Server) routes() {
	m := http.NewServeMux()
	auth := RequireBearer(s.cfg.Token, s.metrics.unauthorized.Inc)
	m.HandleFunc("/api/functions", auth(s.handleList))
	m.HandleFunc("/api/functions/{id}", auth(s.handleFunction))
	m.HandleFunc("/api/functions/{id}/invoke", auth(s.handleInvoke))
	m.HandleFunc("/api/functions/{id}/invoke-batch", auth(s.handleBatch))
	m.HandleFunc("/api/functions/{id}/health", auth(s.handleHealth))
	m.HandleFunc("/api/functions/{id}/warm", auth(s.handleWarm))
	m.HandleFunc("/job/{job_id}", auth(s.handleTangleJob))
	m.HandleFunc("/healthz", s.handleHealthz)
	m.Handle("/metrics", auth(s.metrics.handler().ServeHTTP))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), "", nil)
	})
	s.mux = m
	s.handler = telemetry.Handler(m)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow ...string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
		fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")), "", nil)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if s.closed.Load() {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "shutting down", "", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "functions": s.Functions()})
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	s.mu.RLock()
	out := make([]Function, 0, len(s.funcs))
	for _, f := range s.funcs {
		out = append(out, s.describe(r, f, true))
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].FunctionID < out[j].FunctionID })
	writeJSON(w, http.StatusOK, map[string]any{"functions": out})
}

func (s *Server) handleFunction(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPut:
		s.handleDeploy(w, r)
	case http.MethodGet, http.MethodHead:
		f, ok := s.lookup(w, r)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, s.describe(r, f, true))
	case http.MethodDelete:
		s.handleDelete(w, r)
	default:
		methodNotAllowed(w, r, http.MethodPut, http.MethodGet, http.MethodDelete)
	}
}

// lookup finds the function named in the path, answering 400 or 404 itself.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*function, bool) {
	id := r.PathValue("id")
	if !functionIDRE.MatchString(id) {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, badIDMsg(id), id, nil)
		return nil, false
	}
	s.mu.RLock()
	f := s.funcs[id]
	s.mu.RUnlock()
	if f == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "Function not found", id, nil)
		return nil, false
	}
	return f, true
}

func badIDMsg(id string) string {
	return fmt.Sprintf("invalid function id %q: want a letter or digit, then up to 127 of [A-Za-z0-9._-]", clipString(id, 64))
}

func clipString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (s *Server) describe(r *http.Request, f *function, full bool) Function {
	out := Function{
		FunctionID: f.rec.FunctionID, Endpoint: s.endpoint(r, f.rec.FunctionID), Status: "deployed",
		ColdStartMs: f.rec.ColdStartMs, MemoryMB: f.memoryMB, TimeoutSecs: (f.timeoutMs + 999) / 1000,
		Digest: f.rec.Digest, TimeoutMs: f.timeoutMs, MaxConcurrency: cap(f.sem),
		MaxInputBytes: f.maxInput, MaxOutputBytes: f.maxOutput, AllowHosts: f.rec.Config.AllowHosts,
		JobID: f.rec.Config.JobID, Pure: f.dep.Pure, Shape: string(f.shape),
	}
	if full {
		at := f.rec.DeployedAt
		out.DeployedAt = &at
		out.BinarySizeBytes = f.rec.BinarySizeBytes
	}
	return out
}

func (s *Server) endpoint(r *http.Request, id string) string {
	base := s.cfg.PublicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/api/functions/" + id + "/invoke"
}

// readBody reads at most max bytes of the body; over that it answers 413.
func readBody(w http.ResponseWriter, r *http.Request, max int64, what string) ([]byte, bool) {
	if r.ContentLength > max {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge,
			fmt.Sprintf("%s of %d bytes is over the limit of %d bytes", what, r.ContentLength, max), "", &Details{Limit: max})
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge,
				fmt.Sprintf("%s is over the limit of %d bytes", what, max), "", &Details{Limit: max})
			return nil, false
		}
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("reading the %s: %v", what, err), "", nil)
		return nil, false
	}
	return b, true
}

// parseConfig decodes X-Blueprint-Config (base64 of JSON) strictly.
func parseConfig(h string) (Config, error) {
	var c Config
	if h == "" {
		return c, nil
	}
	if len(h) > maxEnvelopeBytes {
		return c, fmt.Errorf("X-Blueprint-Config is %d bytes, at most %d", len(h), maxEnvelopeBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		if raw, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "=")); err != nil {
			return c, fmt.Errorf("X-Blueprint-Config is not base64: %v", err)
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("X-Blueprint-Config: %v", err)
	}
	if dec.More() {
		return c, errors.New("X-Blueprint-Config: trailing data after the JSON object")
	}
	return c, c.validate()
}

// validate lists every problem with a config.
// stateNamespaceRE is a job name's shape (host.Job.Name).
var stateNamespaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (c *Config) validate() error {
	var p []string
	if c.MemoryMB < 0 || c.MemoryMB > MaxMemoryMB {
		p = append(p, fmt.Sprintf("memory_mb %d: want 1–%d (a wasm32 job cannot address more than 4 GiB)", c.MemoryMB, MaxMemoryMB))
	}
	if c.TimeoutSecs < 0 || c.TimeoutSecs > MaxTimeoutSecs {
		p = append(p, fmt.Sprintf("timeout_secs %d: want 1–%d", c.TimeoutSecs, MaxTimeoutSecs))
	}
	if c.TimeoutMs < 0 || c.TimeoutMs > MaxTimeoutSecs*1000 {
		p = append(p, fmt.Sprintf("timeout_ms %d: want 1–%d", c.TimeoutMs, MaxTimeoutSecs*1000))
	}
	if c.TimeoutMs > 0 && c.TimeoutSecs > 0 && (c.TimeoutMs+999)/1000 != c.TimeoutSecs {
		p = append(p, fmt.Sprintf("timeout_ms %d and timeout_secs %d disagree: give one", c.TimeoutMs, c.TimeoutSecs))
	}
	if c.MaxConcurrency < 0 || c.MaxConcurrency > DefaultMaxConcurrency {
		p = append(p, fmt.Sprintf("max_concurrency %d: want 1–%d", c.MaxConcurrency, DefaultMaxConcurrency))
	}
	if len(c.EnvVars) > 0 {
		p = append(p, "env_vars: not supported: a Ferry job runs with an empty environment so that it runs the same on every host; pass configuration in the job's input")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max_input_bytes", c.MaxInputBytes}, {"max_output_bytes", c.MaxOutputBytes}} {
		if f.v < 0 || f.v > 64<<20 {
			p = append(p, fmt.Sprintf("%s %d: want 1–%d", f.name, f.v, 64<<20))
		}
	}
	if c.StateNamespace != "" && !stateNamespaceRE.MatchString(c.StateNamespace) {
		p = append(p, fmt.Sprintf("state_namespace %q: want a letter or digit, then up to 127 of [A-Za-z0-9._-]", clipString(c.StateNamespace, 140)))
	}
	if len(c.AllowHosts) > 256 {
		p = append(p, fmt.Sprintf("allow_hosts: %d entries, at most 256", len(c.AllowHosts)))
	}
	if len(p) > 0 {
		return &configError{problems: p}
	}
	return nil
}

type configError struct{ problems []string }

func (e *configError) Error() string { return "invalid config: " + strings.Join(e.problems, "; ") }

func (s *Server) handleDeploy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !functionIDRE.MatchString(id) {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, badIDMsg(id), id, nil)
		return
	}
	cfg, err := parseConfig(r.Header.Get("X-Blueprint-Config"))
	if err != nil {
		var d *Details
		var ce *configError
		if errors.As(err, &ce) {
			d = &Details{Problems: ce.problems}
		}
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, err.Error(), id, d)
		return
	}
	body, ok := readBody(w, r, s.cfg.MaxPackageBytes, "package")
	if !ok {
		return
	}
	rec := &record{FunctionID: id, Config: cfg, BinarySizeBytes: int64(len(body)), DeployedAt: time.Now().UTC()}
	wasm := body
	switch {
	case hostpkg.IsZip(body):
		pkg, err := hostpkg.Open(body, 0)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeInvalidPackage, err.Error(), id, nil)
			return
		}
		wasm, rec.Package = pkg.Module, "zip"
		if m := pkg.Manifest; m != nil {
			rec.Job = m.Job
			mergeManifest(&rec.Config, m)
		}
	case len(body) >= 4 && string(body[:4]) == "\x00asm":
		rec.Package = "wasm"
	default:
		writeError(w, http.StatusBadRequest, CodeInvalidPackage,
			"package is neither a WebAssembly module (application/wasm) nor a zip holding module.wasm (application/zip)", id, nil)
		return
	}
	rec.Digest = modstore.Digest(wasm)

	s.deployMu.Lock()
	defer s.deployMu.Unlock()
	if s.closed.Load() {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "shutting down", id, nil)
		return
	}
	s.mu.RLock()
	_, exists := s.funcs[id]
	n := len(s.funcs)
	var jobClash *function
	if j := rec.Config.JobID; j != nil {
		jobClash = s.byJobID[*j]
	}
	s.mu.RUnlock()
	if exists {
		writeError(w, http.StatusConflict, CodeConflict, "Function already exists", id, nil)
		return
	}
	if jobClash != nil {
		writeError(w, http.StatusConflict, CodeConflict,
			fmt.Sprintf("job_id %d is already served by function %q", *rec.Config.JobID, jobClash.rec.FunctionID), id, nil)
		return
	}
	if n >= s.cfg.MaxFunctions {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable,
			fmt.Sprintf("this host holds its maximum of %d functions; delete one first", s.cfg.MaxFunctions), id, nil)
		return
	}
	start := time.Now()
	f, err := s.deploy(r.Context(), rec, wasm)
	if err != nil {
		if local.IsModuleError(err) {
			writeError(w, http.StatusBadRequest, CodeInvalidPackage, err.Error(), id, nil)
		} else {
			writeError(w, http.StatusInternalServerError, CodeInfrastructure, err.Error(), id, nil)
		}
		return
	}
	rec.ColdStartMs = time.Since(start).Milliseconds()
	if err := s.store.save(rec, wasm); err != nil {
		_ = s.local.Remove(context.WithoutCancel(r.Context()), f.dep)
		s.log.Error("could not persist a deployment", "function_id", id, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInfrastructure, "could not persist the deployment: "+err.Error(), id, nil)
		return
	}
	s.add(f)
	s.metrics.deploys.Inc()
	s.log.Info("deployed", "function_id", id, "digest", rec.Digest, "bytes", len(wasm), "package", rec.Package, "ms", rec.ColdStartMs)
	writeJSON(w, http.StatusOK, s.describe(r, f, false))
}

// mergeManifest fills config fields the header left unset from the
// package's manifest.
func mergeManifest(c *Config, m *hostpkg.Manifest) {
	if c.MemoryMB == 0 {
		c.MemoryMB = m.Limits.MemoryMB
	}
	if c.TimeoutMs == 0 && c.TimeoutSecs == 0 {
		c.TimeoutMs = m.Limits.TimeoutMs
	}
	if c.MaxInputBytes == 0 {
		c.MaxInputBytes = m.Limits.MaxInputBytes
	}
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = m.Limits.MaxOutputBytes
	}
	if c.AllowHosts == nil {
		c.AllowHosts = m.AllowHosts
	}
	if c.JobID == nil {
		c.JobID = m.JobID
	}
}

// deploy loads a function into the local host.
func (s *Server) deploy(ctx context.Context, rec *record, wasm []byte) (*function, error) {
	c := rec.Config
	if err := c.validate(); err != nil {
		return nil, err
	}
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	if timeout == 0 {
		secs := c.TimeoutSecs
		if secs == 0 {
			secs = DefaultTimeoutSecs
		}
		timeout = time.Duration(secs) * time.Second
	}
	info, err := abi.Describe(wasm)
	if err != nil {
		return nil, err
	}
	dep, err := s.local.Deploy(ctx, host.Job{
		Name: rec.FunctionID, Module: wasm, Digest: rec.Digest, AllowHosts: c.AllowHosts,
		StateNamespace: cmp.Or(c.StateNamespace, rec.Job, rec.FunctionID),
		Limits:         host.Limits{MemoryMB: c.MemoryMB, Timeout: timeout, MaxInputBytes: c.MaxInputBytes, MaxOutputBytes: c.MaxOutputBytes},
	})
	if err != nil {
		return nil, err
	}
	conc := c.MaxConcurrency
	if conc == 0 {
		conc = DefaultMaxConcurrency
	}
	return &function{
		rec: rec, dep: dep, shape: info.Shape, sem: make(chan struct{}, conc),
		memoryMB: dep.Limits.MemoryMB, timeoutMs: int(dep.Limits.Timeout / time.Millisecond),
		maxInput: dep.Limits.MaxInputBytes, maxOutput: dep.Limits.MaxOutputBytes,
		obs: s.metrics.function(rec.FunctionID),
	}, nil
}

func (s *Server) add(f *function) {
	s.mu.Lock()
	s.funcs[f.rec.FunctionID] = f
	if j := f.rec.Config.JobID; j != nil {
		s.byJobID[*j] = f
	}
	s.metrics.functions.Set(float64(len(s.funcs)))
	s.mu.Unlock()
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	s.deployMu.Lock()
	defer s.deployMu.Unlock()
	f, ok := s.lookup(w, r)
	if !ok {
		return
	}
	id := f.rec.FunctionID
	s.mu.Lock()
	delete(s.funcs, id)
	if j := f.rec.Config.JobID; j != nil && s.byJobID[*j] == f {
		delete(s.byJobID, *j)
	}
	stillUsed := false
	for _, o := range s.funcs {
		stillUsed = stillUsed || o.rec.Digest == f.rec.Digest
	}
	s.metrics.functions.Set(float64(len(s.funcs)))
	s.mu.Unlock()
	// Remove waits for the function's in-flight invocations.
	if err := s.local.Remove(context.WithoutCancel(r.Context()), f.dep); err != nil && !errors.Is(err, host.ErrNotFound) {
		s.log.Error("removing a function", "function_id", id, "err", err)
	}
	s.metrics.forget(id)
	if err := s.store.remove(id, f.rec.Digest, stillUsed); err != nil {
		s.log.Error("could not delete a function's files; it will come back after a restart", "function_id", id, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInfrastructure, err.Error(), id, nil)
		return
	}
	s.log.Info("deleted", "function_id", id)
	writeJSON(w, http.StatusOK, Deleted{FunctionID: id, Status: "deleted"})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, http.MethodGet, http.MethodHead)
		return
	}
	f, ok := s.lookup(w, r)
	if !ok {
		return
	}
	id := f.rec.FunctionID
	hl, err := s.local.Health(r.Context(), f.dep)
	if err != nil || s.closed.Load() {
		msg := "shutting down"
		if err != nil {
			msg = err.Error()
		}
		writeJSON(w, http.StatusServiceUnavailable, Health{FunctionID: id, Status: "unhealthy", Error: msg})
		return
	}
	out := Health{FunctionID: id, Status: "healthy", TotalInvocations: hl.TotalInvocations}
	if !hl.LastInvocation.IsZero() {
		out.LastInvocation = &hl.LastInvocation
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleWarm(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	f, ok := s.lookup(w, r)
	if !ok {
		return
	}
	n := 1 << 20 // as many as the pool holds
	if q := r.URL.Query().Get("instances"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 0 {
			writeError(w, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("instances=%q: want a whole number ≥ 0", clipString(q, 32)), f.rec.FunctionID, nil)
			return
		}
		n = v
	}
	ready, err := s.local.Warm(r.Context(), f.dep, n)
	if err != nil {
		writeError(w, http.StatusInternalServerError, CodeInfrastructure, err.Error(), f.rec.FunctionID, nil)
		return
	}
	writeJSON(w, http.StatusOK, Warmed{FunctionID: f.rec.FunctionID, Status: "warm", InstancesWarmed: ready})
}

// handleTangleJob serves the Tangle client's POST /job/{job_id} and its
// HEAD health check. The function is the one deployed with that job_id in
// its config, else the one whose id is the number itself.
func (s *Server) handleTangleJob(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("job_id")
	jobID, err := strconv.ParseUint(raw, 10, 32)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("job id %q: want a number 0–%d", clipString(raw, 32), uint32(math.MaxUint32)), "", nil)
		return
	}
	s.mu.RLock()
	f := s.byJobID[uint32(jobID)]
	if f == nil {
		f = s.funcs[raw]
	}
	s.mu.RUnlock()
	if f == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no function serves job %d", jobID), raw, nil)
		return
	}
	want := uint32(jobID)
	s.invoke(w, r, f, &want)
}

func (s *Server) handleInvoke(w http.ResponseWriter, r *http.Request) {
	f, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.invoke(w, r, f, nil)
}

// invoke runs one invocation: HEAD is the Tangle client's health check,
// POST runs the job.
func (s *Server) invoke(w http.ResponseWriter, r *http.Request, f *function, wantJob *uint32) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodHead:
		if s.closed.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	default:
		methodNotAllowed(w, r, http.MethodPost, http.MethodHead)
		return
	}
	// A JSON array spends at most 4 bytes per input byte ("255,"); allow
	// for whitespace and the envelope.
	limit := min(s.cfg.MaxRequestBytes, int64(f.maxInput)*6+maxEnvelopeBytes)
	body, ok := readBody(w, r, limit, "request body")
	if !ok {
		f.obs.outcome(outcomeRejected)
		return
	}
	var req InvokeRequest
	if err := DecodeInvoke(body, &req); err != nil {
		f.obs.outcome(outcomeRejected)
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, err.Error(), f.rec.FunctionID, nil)
		return
	}
	if wantJob != nil && req.JobID != *wantJob {
		f.obs.outcome(outcomeRejected)
		writeError(w, http.StatusBadRequest, CodeInvalidRequest,
			fmt.Sprintf("job_id %d in the body does not match job %d in the path", req.JobID, *wantJob), f.rec.FunctionID, nil)
		return
	}
	if id := r.Header.Get("X-Ferry-Invocation-Id"); id != "" && req.InvocationID == "" {
		req.InvocationID = id
	}
	if k := r.Header.Get("X-Ferry-Idempotency-Key"); k != "" && req.IdempotencyKey == "" {
		req.IdempotencyKey = k
	}
	if req.InvocationID != "" && !invocationIDRE.MatchString(req.InvocationID) {
		f.obs.outcome(outcomeRejected)
		writeError(w, http.StatusBadRequest, CodeInvalidRequest,
			"invocation id: want 1–128 of [A-Za-z0-9._:-]", f.rec.FunctionID, nil)
		return
	}
	if req.IdempotencyKey != "" && !invocationIDRE.MatchString(req.IdempotencyKey) {
		f.obs.outcome(outcomeRejected)
		writeError(w, http.StatusBadRequest, CodeInvalidRequest,
			"idempotency key: want 1–128 of [A-Za-z0-9._:-]", f.rec.FunctionID, nil)
		return
	}
	status, buf := s.run(r.Context(), f, &req, nil)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(status)
	_, _ = w.Write(buf)
}

// run invokes the function and encodes the answer (appended to dst).
func (s *Server) run(ctx context.Context, f *function, req *InvokeRequest, dst []byte) (int, []byte) {
	if s.closed.Load() {
		resp := InvokeResponse{JobID: req.JobID, Result: Bytes{}, Error: "shutting down", Code: CodeUnavailable}
		return http.StatusServiceUnavailable, appendInvokeResponse(dst, &resp)
	}
	s.inflight.Add(1)
	defer s.inflight.Done()
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		resp := InvokeResponse{JobID: req.JobID, Result: Bytes{}, Error: "canceled while waiting for a free slot", Code: CodeUnavailable}
		return http.StatusServiceUnavailable, appendInvokeResponse(dst, &resp)
	}
	s.metrics.inflight.Inc()
	start := time.Now()
	ctx, span := telemetry.Start(ctx, "ferry.host.invoke", trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(telemetry.String("ferry.function_id", f.rec.FunctionID), telemetry.String("ferry.invocation_id", req.InvocationID))
	}
	res, err := s.local.Invoke(ctx, f.dep, host.Request{Input: req.Args, InvocationID: req.InvocationID, IdempotencyKey: req.IdempotencyKey})
	telemetry.End(span, err)
	<-f.sem
	s.metrics.inflight.Dec()
	f.obs.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		status, resp := invokeFailure(f, req, err)
		f.obs.outcome(resp.Details.Kind)
		if status == http.StatusInternalServerError && resp.Code == CodeInfrastructure {
			s.log.Warn("invocation failed in the host", "function_id", f.rec.FunctionID, "invocation_id", req.InvocationID, "err", err)
		}
		return status, appendInvokeResponse(dst, resp)
	}
	if res.Cold {
		f.obs.colds.Inc()
	}
	f.obs.outcome(outcomeOK)
	resp := InvokeResponse{
		JobID: req.JobID, Result: res.Output, Success: true,
		ExecutionMs:  int64((res.Duration + time.Millisecond - 1) / time.Millisecond),
		MemoryUsedMB: int64((res.MemoryUsedBytes + 1<<20 - 1) >> 20),
		ExecutionUs:  max(1, res.Duration.Microseconds()), MemoryUsedBytes: res.MemoryUsedBytes,
		Cold: res.Cold, InvocationID: res.InvocationID, Logs: res.Logs,
	}
	return http.StatusOK, appendInvokeResponse(dst, &resp)
}

// invokeFailure maps a local host error to the protocol's answer: job
// failures are 500 EXECUTION_ERROR with the runtime's kind, an input over
// the function's limit is 413, the host's own failures 500
// INFRASTRUCTURE_ERROR.
func invokeFailure(f *function, req *InvokeRequest, err error) (int, *InvokeResponse) {
	resp := &InvokeResponse{JobID: req.JobID, Result: Bytes{}, Error: err.Error(), InvocationID: req.InvocationID,
		Details: &Details{FunctionID: f.rec.FunctionID}}
	var je *wasmrt.JobError
	if errors.As(err, &je) {
		resp.Details.Kind = string(je.Kind)
		resp.Error = je.Message
		if je.Message == "" {
			resp.Error = je.Error()
		}
		if v, ok := je.Limit.(int); ok {
			resp.Details.Limit = int64(v)
		}
		if v, ok := je.Limit.(uint64); ok {
			resp.Details.Limit = int64(v)
		}
		if v, ok := je.Limit.(time.Duration); ok {
			resp.Details.Limit = v.Milliseconds()
		}
	}
	switch {
	case errors.Is(err, wasmrt.ErrInputLimit):
		resp.Code = CodeTooLarge
		return http.StatusRequestEntityTooLarge, resp
	case errors.Is(err, host.ErrNotFound):
		// Removed while the call waited.
		resp.Code, resp.Details.Kind = CodeNotFound, "not_found"
		return http.StatusNotFound, resp
	case host.IsJobFault(err) && je != nil:
		resp.Code = CodeExecution
		return http.StatusInternalServerError, resp
	case errors.Is(err, wasmrt.ErrCanceled), errors.Is(err, context.Canceled):
		resp.Code, resp.Details.Kind = CodeUnavailable, "canceled"
		return http.StatusServiceUnavailable, resp
	default:
		resp.Code, resp.Details.Kind = CodeInfrastructure, "host"
		return http.StatusInternalServerError, resp
	}
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	f, ok := s.lookup(w, r)
	if !ok {
		return
	}
	limit := min(s.cfg.MaxRequestBytes, (int64(f.maxInput)*6+maxEnvelopeBytes)*MaxBatch)
	body, ok := readBody(w, r, limit, "request body")
	if !ok {
		return
	}
	var req BatchRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "invalid batch request: "+describeJSONErr(err), f.rec.FunctionID, nil)
		return
	}
	if len(req.Requests) == 0 || len(req.Requests) > MaxBatch {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest,
			fmt.Sprintf("a batch holds 1–%d requests, not %d", MaxBatch, len(req.Requests)), f.rec.FunctionID, nil)
		return
	}
	for i, q := range req.Requests {
		if q.Args == nil {
			writeError(w, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("request %d: args: missing", i), f.rec.FunctionID, nil)
			return
		}
		if q.InvocationID != "" && !invocationIDRE.MatchString(q.InvocationID) {
			writeError(w, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("request %d: invocation id: want 1–128 of [A-Za-z0-9._:-]", i), f.rec.FunctionID, nil)
			return
		}
		if q.IdempotencyKey != "" && !invocationIDRE.MatchString(q.IdempotencyKey) {
			writeError(w, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("request %d: idempotency key: want 1–128 of [A-Za-z0-9._:-]", i), f.rec.FunctionID, nil)
			return
		}
	}
	// The requests run concurrently, each within the function's
	// concurrency limit, and each answer is encoded as it would be alone.
	parts := make([][]byte, len(req.Requests))
	var wg sync.WaitGroup
	for i := range req.Requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, buf := s.run(r.Context(), f, &req.Requests[i], nil)
			// Splice the status in before the closing brace.
			buf = append(buf[:len(buf)-1], `,"status":`...)
			buf = strconv.AppendInt(buf, int64(status), 10)
			parts[i] = append(buf, '}')
		}()
	}
	wg.Wait()
	out := make([]byte, 0, 64)
	out = append(out, `{"function_id":"`...)
	out = append(out, f.rec.FunctionID...)
	out = append(out, `","results":[`...)
	for i, p := range parts {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, p...)
	}
	out = append(out, "]}"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// DecodeInvoke decodes an invocation body ({"job_id", "args"}) with
// messages a caller can act on; args must be present and be bytes.
func DecodeInvoke(body []byte, req *InvokeRequest) error {
	if err := json.Unmarshal(body, req); err != nil {
		if errors.Is(err, ErrNotBytes) {
			return fmt.Errorf("invalid invoke request: args: %w", err)
		}
		return fmt.Errorf("invalid invoke request: %s", describeJSONErr(err))
	}
	if req.Args == nil {
		return errors.New(`invalid invoke request: args: missing (want {"job_id": <u32>, "args": [<bytes 0–255>]})`)
	}
	return nil
}

func describeJSONErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		return fmt.Sprintf("%s: got a JSON %s, want %s", te.Field, te.Value, te.Type)
	}
	return err.Error()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed","code":"INFRASTRUCTURE_ERROR"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg, functionID string, d *Details) {
	writeJSON(w, status, ErrorBody{Error: msg, Code: code, FunctionID: functionID, Details: d})
}
