// Package locallambda is a local AWS Lambda for tests and developers: it
// imitates Lambda's control plane (CreateFunction, UpdateFunctionCode,
// UpdateFunctionConfiguration, GetFunction, GetFunctionConfiguration,
// DeleteFunction, ListFunctions) and Invoke over restJson1, as
// aws-sdk-go-v2 and the AWS CLI speak them, and runs each function's real
// bootstrap executable as a child process that talks the real Runtime API
// (2018-06-01) to a per-environment listener.
//
// What lives here: the HTTP server (server.go), function validation and
// state (function.go, code.go), Invoke and the environment pool
// (invoke.go, env.go), the Runtime API (runtimeapi.go) and Lambda's log
// lines (logs.go). What does not: versions and aliases, layers, container
// images, S3 code, the Extensions API, event sources, IAM. Each wire detail
// cites the AWS page (docs.aws.amazon.com/lambda/latest/…) or client code
// it comes from; docs/local-lambda.md lists them all. It is built for
// Linux (process groups, /proc memory accounting).
//
// Start serves a Server on loopback for a test. A Server is safe for
// concurrent use; Close ends it.
package locallambda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server.
type Config struct {
	// Dir is where function code is unpacked; required. The server works in
	// a fresh subdirectory of it and removes only that.
	Dir string
	// Region defaults to us-east-1.
	Region string
	// AccountID defaults to 123456789012.
	AccountID string
	// Env is added to every execution environment's variables (for example
	// the credentials and endpoints a function needs). The parent's
	// environment is never passed on.
	Env map[string]string
	// MaxConcurrency caps live execution environments per function; an
	// invoke beyond it gets TooManyRequestsException. Default 64.
	MaxConcurrency int
	// IdleTimeout is how long an idle environment is kept. Default 5 min.
	IdleTimeout time.Duration
	// Logger receives the server's own logs. Default: discarded.
	Logger *slog.Logger
	// FunctionLogs receives every function's log lines (START, output, END,
	// REPORT) prefixed with "[name] ", as CloudWatch Logs would. Default:
	// discarded.
	FunctionLogs io.Writer

	// Set by this package's tests only.
	beforeApply      func(name string) // runs before a create or update completes
	eventRetryDelays []time.Duration   // Event retries after a function error
	initTimeout      time.Duration
}

const (
	defaultRegion         = "us-east-1"
	defaultAccountID      = "123456789012"
	defaultMaxConcurrency = 64
	defaultIdleTimeout    = 5 * time.Minute
)

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-\d$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
)

// Validate reports whether c can be used, with defaults applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	if !regionRE.MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("Region %q: want a region name such as us-east-1", c.Region))
	}
	if !accountRE.MatchString(c.AccountID) {
		errs = append(errs, fmt.Errorf("AccountID %q: want 12 digits", c.AccountID))
	}
	if c.MaxConcurrency < 1 || c.MaxConcurrency > regionConcurrency {
		errs = append(errs, fmt.Errorf("MaxConcurrency %d: want 1 to %d", c.MaxConcurrency, regionConcurrency))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("IdleTimeout %v: must not be negative", c.IdleTimeout))
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, fmt.Errorf("Env key %q: not a variable name", k))
		} else if runtimeSets(k) {
			errs = append(errs, fmt.Errorf("Env key %q: the execution environment sets it", k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = defaultRegion
	}
	if c.AccountID == "" {
		c.AccountID = defaultAccountID
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = defaultMaxConcurrency
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.eventRetryDelays == nil {
		c.eventRetryDelays = []time.Duration{time.Minute, 2 * time.Minute}
	}
	if c.initTimeout == 0 {
		c.initTimeout = initTimeout
	}
	return c
}

// Server is a local Lambda. It is an http.Handler; all its methods are
// safe for concurrent use.
type Server struct {
	cfg        Config
	root       string // this server's subdirectory of cfg.Dir
	runtimeDir string // LAMBDA_RUNTIME_DIR
	log        *slog.Logger
	funcLogs   *syncWriter
	mux        *http.ServeMux
	stop       chan struct{}
	wg         sync.WaitGroup

	mu            sync.Mutex
	fns           map[string]*function
	closed        bool
	fnSeq         int
	eventsPending int

	closing  atomic.Bool  // set by Close before it kills environments
	envTotal atomic.Int64 // live environments, server-wide
	procMu   sync.Mutex
	procs    map[string]int // live environments per function name
}

// New returns a Server working under cfg.Dir.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("locallambda: create %s: %w", cfg.Dir, err)
	}
	root, err := os.MkdirTemp(cfg.Dir, "locallambda-")
	if err != nil {
		return nil, fmt.Errorf("locallambda: create a work directory in %s: %w", cfg.Dir, err)
	}
	runtimeDir := filepath.Join(root, "runtime")
	if err := os.MkdirAll(runtimeDir, 0o755); err != nil {
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("locallambda: %w", err)
	}
	s := &Server{
		cfg: cfg, root: root, runtimeDir: runtimeDir, log: cfg.Logger,
		funcLogs: &syncWriter{w: cfg.FunctionLogs},
		stop:     make(chan struct{}),
		fns:      map[string]*function{},
		procs:    map[string]int{},
	}
	s.mux = s.routes()
	s.wg.Go(s.reapIdle)
	return s, nil
}

// The control plane's paths and statuses (API_CreateFunction.html and the
// SDK's request snapshots).
func (s *Server) routes() *http.ServeMux {
	const p = "/2015-03-31/functions"
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+p, s.createFunction)
	mux.HandleFunc("POST "+p+"/{$}", s.createFunction)
	mux.HandleFunc("GET "+p+"/{$}", s.listFunctions)
	mux.HandleFunc("GET "+p, s.listFunctions)
	mux.HandleFunc("GET "+p+"/{name}", s.getFunction)
	mux.HandleFunc("DELETE "+p+"/{name}", s.deleteFunction)
	mux.HandleFunc("GET "+p+"/{name}/configuration", s.getFunctionConfiguration)
	mux.HandleFunc("PUT "+p+"/{name}/configuration", s.updateFunctionConfiguration)
	mux.HandleFunc("PUT "+p+"/{name}/code", s.updateFunctionCode)
	mux.HandleFunc("POST "+p+"/{name}/invocations", s.invoke)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		(&apiError{http.StatusNotFound, "UnknownOperationException", "Ferry's local Lambda does not implement " + r.Method + " " + r.URL.Path, ""}).write(w)
	})
	return mux
}

// ServeHTTP serves the control plane and Invoke.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		errService("the local Lambda service is shutting down").write(w)
		return
	}
	// Every Lambda reply carries a request id; Invoke's is the function's.
	w.Header().Set("X-Amzn-Requestid", newUUID())
	s.mux.ServeHTTP(w, r)
}

// Close kills every execution environment, waits for the server's
// goroutines (or ctx), and removes the server's work directory.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.closing.Store(true)
	close(s.stop)
	fns := make([]*function, 0, len(s.fns))
	for _, fn := range s.fns {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn.killAll(killClosed)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("locallambda: close: %w", ctx.Err())
	}
	if err := os.RemoveAll(s.root); err != nil {
		return fmt.Errorf("locallambda: close: %w", err)
	}
	return nil
}

// Environments returns how many execution environments (bootstrap
// processes, starting, busy or idle) the named function has.
func (s *Server) Environments(function string) int {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	return s.procs[function]
}

// Logs returns the named function's recent log lines, oldest first.
func (s *Server) Logs(function string) []string {
	s.mu.Lock()
	fn := s.fns[function]
	s.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn.logs.snapshot()
}

// goTracked runs f in a goroutine Close waits for, unless closed.
func (s *Server) goTracked(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(f)
	return true
}

// envStarting takes a server-wide environment slot for the function.
func (s *Server) envStarting(name string) bool {
	for {
		n := s.envTotal.Load()
		if n >= regionConcurrency {
			return false
		}
		if s.envTotal.CompareAndSwap(n, n+1) {
			break
		}
	}
	s.procMu.Lock()
	s.procs[name]++
	s.procMu.Unlock()
	return true
}

func (s *Server) envEnded(name string) {
	s.envTotal.Add(-1)
	s.procMu.Lock()
	if s.procs[name]--; s.procs[name] <= 0 {
		delete(s.procs, name)
	}
	s.procMu.Unlock()
}

// becameIdle retires an environment that came back to /next but will not
// be used again: its function was deleted or updated since it started.
func (s *Server) becameIdle(e *execEnv) {
	fn := e.fn
	fn.mu.Lock()
	stale := (fn.deleted || fn.live != e.live) && e.assigned == nil
	if stale {
		fn.retire(e)
	}
	fn.mu.Unlock()
}

// reapIdle shuts down environments idle for longer than IdleTimeout.
func (s *Server) reapIdle() {
	tick := min(max(s.cfg.IdleTimeout/4, 10*time.Millisecond), 30*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		fns := make([]*function, 0, len(s.fns))
		for _, fn := range s.fns {
			fns = append(fns, fn)
		}
		s.mu.Unlock()
		now := time.Now()
		for _, fn := range fns {
			fn.mu.Lock()
			for e := range fn.envs {
				if e.assigned != nil {
					continue
				}
				e.mu.Lock()
				idle := e.phase == phaseIdle && now.Sub(e.lastUsed) > s.cfg.IdleTimeout
				e.mu.Unlock()
				if idle {
					fn.retire(e)
				}
			}
			fn.mu.Unlock()
		}
	}
}

// lookup finds the function a path names (a name, name:qualifier, or a
// partial or full ARN: API_Invoke.html) with the Qualifier query. Only $LATEST
// exists here.
func (s *Server) lookup(ref, qualifier string) (*function, string, *apiError) {
	name, qual, region, account, ok := parseFunctionName(ref)
	if !ok {
		return nil, "", errValidation(ref, "functionName", "Member must satisfy regular expression pattern: "+functionNamePattern)
	}
	if qualifier != "" {
		if qual != "" && qual != qualifier {
			return nil, "", errInvalid("The derived qualifier from the function name does not match the specified qualifier.")
		}
		qual = qualifier
	}
	arn := s.arn(name)
	if (region != "" && region != s.cfg.Region) || (account != "" && account != s.cfg.AccountID) {
		return nil, "", errNotFound(ref)
	}
	s.mu.Lock()
	fn := s.fns[name]
	s.mu.Unlock()
	if qual != "" && qual != latest {
		return nil, "", errNotFound(arn + ":" + qual)
	}
	if fn == nil {
		return nil, "", errNotFound(arn)
	}
	return fn, qual, nil
}

func (s *Server) arn(name string) string {
	return "arn:aws:lambda:" + s.cfg.Region + ":" + s.cfg.AccountID + ":function:" + name
}

// readBody reads a request body of at most limit bytes; a larger one is
// RequestEntityTooLargeException in Lambda's words (API_Invoke.html,
// API_CreateFunction.html; observed messages).
func readBody(w http.ResponseWriter, r *http.Request, limit int64, op string) ([]byte, *apiError) {
	tooLarge := errTooLarge(fmt.Sprintf("Request must be smaller than %d bytes for the %s operation", limit, op))
	if r.ContentLength > limit {
		// Drain a bounded amount so the client reads the reply instead of
		// a reset, then drop the connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 2*limit))
		w.Header().Set("Connection", "close")
		return nil, tooLarge
	}
	body, n, err := readCapped(r.Body, limit)
	if err != nil {
		return nil, &apiError{http.StatusBadRequest, "InvalidRequestContentException", "could not read the request body: " + err.Error(), ""}
	}
	if n > limit {
		w.Header().Set("Connection", "close")
		return nil, tooLarge
	}
	return body, nil
}

func (s *Server) functionsSorted() []*function {
	s.mu.Lock()
	defer s.mu.Unlock()
	fns := make([]*function, 0, len(s.fns))
	for _, fn := range s.fns {
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].name < fns[j].name })
	return fns
}
