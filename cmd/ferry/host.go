package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/runtime/engine"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/telemetry/otlp"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

func newHostCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Run a host that other Ferry processes (or Tangle runners) send jobs to",
		Long: `Hosts run jobs for an orchestrator. "ferry host serve" is an HTTP host that
speaks the custom FaaS protocol (docs/http-host.md): deploy a WebAssembly
module under a function id, invoke it, check its health, delete it.`,
		Example: `  ferry host serve --listen 127.0.0.1:8080
  FERRY_HOST_TOKEN=s3cret ferry host serve --listen :8080 --data-dir /var/lib/ferry-host`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newHostServeCmd(e))
	cmd.AddCommand(newHostLambdaLocalCmd(e))
	cmd.AddCommand(newHostWorkerdCmd(e))
	return cmd
}

type hostServeFlags struct {
	listen, dataDir, tokenFile, publicURL     string
	cacheDir, engine, statePath, logLevel     string
	logFormat                                 string
	maxRequest, maxPackage                    int64
	maxFunctions, poolSize                    int
	shutdownTimeout, readTimeout, idleTimeout time.Duration
	noCache, fresh                            bool
	gcPercent                                 int
	otlpEndpoint                              string
}

func newHostServeCmd(e *env) *cobra.Command {
	f := &hostServeFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the custom FaaS HTTP protocol: deploy and invoke WebAssembly functions",
		Long: `Serve the custom FaaS HTTP protocol (specs/custom-faas-http.md) with Ferry's
extensions (docs/http-host.md):

  PUT    /api/functions/{id}          deploy a module (application/wasm) or a zip
                                      holding module.wasm and manifest.json
  POST   /api/functions/{id}/invoke   {"job_id": N, "args": [bytes]} → {"result": [bytes], …}
  GET    /api/functions/{id}/health   GET /api/functions/{id}   DELETE /api/functions/{id}
  POST   /api/functions/{id}/warm     POST /api/functions/{id}/invoke-batch
  POST   /job/{job_id}, HEAD /job/{job_id}   the Tangle client's paths
  GET    /api/functions   GET /healthz   GET /metrics (Prometheus)

Every function runs in Ferry's sandbox with the limits it was deployed with
(memory_mb, timeout_secs): the same runtime and ABI as "ferry run".
Deployments are kept in --data-dir and come back after a restart.

When a token is set (FERRY_HOST_TOKEN or --token-file), every request but
/healthz must carry "Authorization: Bearer <token>". On SIGINT or SIGTERM
the server stops accepting connections and lets in-flight invocations
finish (up to --shutdown-timeout).

The server listens on loopback by default; give --listen :8080 to serve
other machines, and set a token when you do.`,
		Example: `  ferry host serve
  ferry host serve --listen 127.0.0.1:0      # any free port; the address is printed
  FERRY_HOST_TOKEN=s3cret ferry host serve --listen :8080 --data-dir /var/lib/ferry-host
  curl -X PUT --data-binary @echo.wasm -H 'Content-Type: application/wasm' \
       http://127.0.0.1:8080/api/functions/echo
  curl -d '{"job_id":0,"args":[104,105]}' http://127.0.0.1:8080/api/functions/echo/invoke`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runHostServe(cmd.Context(), e, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "`ADDR` to listen on (host:port; port 0 picks a free one)")
	fl.StringVar(&f.dataDir, "data-dir", filepath.Join(defaultDir("data"), "host"), "`DIR` keeping deployed functions across restarts")
	fl.StringVar(&f.tokenFile, "token-file", "", "read the bearer token from `FILE` (default: $FERRY_HOST_TOKEN; none: no auth)")
	fl.StringVar(&f.publicURL, "public-url", "", "base `URL` reported as functions' endpoint (default: from each request's Host)")
	fl.Int64Var(&f.maxRequest, "max-request-bytes", httphost.DefaultMaxRequestBytes, "largest invocation body; larger gets 413")
	fl.Int64Var(&f.maxPackage, "max-package-bytes", httphost.DefaultMaxPackageBytes, "largest deployment package; larger gets 413")
	fl.IntVar(&f.maxFunctions, "max-functions", httphost.DefaultMaxFunctions, "most functions deployed at once")
	fl.IntVar(&f.poolSize, "pool-size", 0, "ready instances kept per function (default: number of CPUs; -1: none)")
	fl.BoolVar(&f.fresh, "fresh-instances", false, "give every invocation a fresh instance (default: pure reactor jobs keep theirs between calls)")
	fl.IntVar(&f.gcPercent, "gc-percent", 400, "Go GC target percentage when $GOGC is unset (higher: fewer collections, more memory)")
	fl.StringVar(&f.cacheDir, "cache-dir", filepath.Join(defaultDir("cache"), "compile"), "compilation cache `DIR`")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use the compilation cache")
	fl.StringVar(&f.engine, "engine", wasmrt.EngineWazero, "engine: "+strings.Join(engine.Names(), ", ")+" (wasmtime in a build with -tags wasmtime)")
	fl.StringVar(&f.statePath, "state", "", "state store for stateful jobs: a bbolt `FILE`, \"memory\", or redis://host:port/db shared with the orchestrator (default: state.db in --data-dir)")
	fl.StringVar(&f.otlpEndpoint, "otlp-endpoint", "", "export traces to this OTLP/HTTP collector `URL` (default: $OTEL_EXPORTER_OTLP_ENDPOINT; none: no export)")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight invocations may take to finish on shutdown")
	fl.DurationVar(&f.readTimeout, "read-timeout", 5*time.Minute, "longest time to read one request, body included")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	return cmd
}

func runHostServe(ctx context.Context, e *env, f *hostServeFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return withCode(exitUsage, fmt.Errorf("--log-level %q: %w", f.logLevel, err))
	}
	opts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch f.logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(e.stderr, opts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(e.stderr, opts))
	default:
		return withCode(exitUsage, fmt.Errorf("--log-format %q: want text or json", f.logFormat))
	}
	if f.maxRequest <= 0 || f.maxPackage <= 0 || f.maxFunctions <= 0 {
		return withCode(exitUsage, errors.New("--max-request-bytes, --max-package-bytes and --max-functions must be positive"))
	}
	if f.gcPercent <= 0 {
		return withCode(exitUsage, fmt.Errorf("--gc-percent %d: want a positive percentage", f.gcPercent))
	}
	if os.Getenv("GOGC") == "" {
		// The server's live heap is small (modules live outside it), and
		// every request allocates: collecting less often cuts tail
		// latency (benchmarks/RESULTS.md).
		debug.SetGCPercent(f.gcPercent)
	}
	token, err := readToken(f.tokenFile, "FERRY_HOST_TOKEN")
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("--token-file: %w", err))
	}
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return withCode(exitHost, fmt.Errorf("--data-dir: %w", err))
	}

	// One server per data directory.
	unlock, err := lockDir(f.dataDir)
	if err != nil {
		return withCode(exitHost, fmt.Errorf("%w (is another ferry host serve using --data-dir %s?)", err, f.dataDir))
	}
	defer unlock()

	// The state store: a bbolt file by default, or a Redis server the
	// orchestrator and other hosts share.
	spec := f.statePath
	if spec == "" {
		spec = filepath.Join(f.dataDir, "state.db")
	}
	store, err := state.Open(ctx, spec)
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return withCode(exitUsage, fmt.Errorf("--state: %w", err))
		}
		return withCode(exitHost, fmt.Errorf("--state: %w", err))
	}
	defer store.Close()
	shutdownTracing, tracing, err := otlp.Setup(ctx, otlp.Config{Service: "ferry-host", Version: version, Endpoint: f.otlpEndpoint})
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("--otlp-endpoint: %w", err))
	}
	defer shutdownTracing(context.WithoutCancel(ctx))

	cacheDir := f.cacheDir
	if f.noCache {
		cacheDir = ""
	}
	rt, err := wasmrt.New(ctx, wasmrt.Config{Engine: f.engine, CacheDir: cacheDir, Logger: logger, State: store})
	if err != nil {
		if strings.Contains(err.Error(), "unknown engine") {
			return withCode(exitUsage, err)
		}
		return withCode(exitHost, err)
	}
	defer rt.Close(context.WithoutCancel(ctx))

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return withCode(exitHost, fmt.Errorf("--listen %s: %w", f.listen, err))
	}
	defer ln.Close()

	start := time.Now()
	srv, err := httphost.NewServer(ctx, httphost.ServerConfig{
		Runtime: rt, DataDir: f.dataDir, Token: token, MaxRequestBytes: f.maxRequest, MaxPackageBytes: f.maxPackage,
		MaxFunctions: f.maxFunctions, PoolSize: f.poolSize, PublicURL: f.publicURL, Logger: logger, FreshInstances: f.fresh,
	})
	if err != nil {
		return withCode(exitHost, err)
	}
	auth := "no token: anyone who can reach the address may deploy and invoke"
	if token != "" {
		auth = "bearer token required"
	} else if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		logger.Warn("listening beyond loopback without a token: anyone who can reach "+ln.Addr().String()+
			" may deploy and run code here; set FERRY_HOST_TOKEN or --token-file", "listen", f.listen)
	}
	logger.Info("ferry host listening", "url", "http://"+ln.Addr().String(), "data_dir", f.dataDir,
		"functions", srv.Functions(), "auth", auth, "state", storeName(store), "tracing", tracing, "startup", time.Since(start).Round(time.Millisecond))

	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       f.readTimeout,
		IdleTimeout:       f.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	select {
	case err := <-serveErr:
		_ = srv.Close(context.WithoutCancel(ctx))
		return withCode(exitHost, fmt.Errorf("serve: %w", err))
	case <-ctx.Done():
	}

	logger.Info("shutting down: no new connections; waiting for in-flight invocations", "timeout", f.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.shutdownTimeout)
	defer cancel()
	shutErr := hs.Shutdown(sctx)
	closeErr := srv.Close(sctx)
	if err := errors.Join(shutErr, closeErr); err != nil {
		return withCode(exitHost, fmt.Errorf("shutdown: %w", err))
	}
	logger.Info("ferry host stopped")
	return nil
}
