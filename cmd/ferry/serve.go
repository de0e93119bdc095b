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
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/orchestrator/api"
	"github.com/ferryrun/ferry/orchestrator/policy"
	"github.com/ferryrun/ferry/orchestrator/queue"
	"github.com/ferryrun/ferry/orchestrator/service"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/telemetry/otlp"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// serveConfig is ferry serve's configuration: a TOML file (--config) whose
// keys are the flags' names with underscores; flags given on the command
// line win.
type serveConfig struct {
	Bundle          string            `toml:"bundle"`
	Policy          string            `toml:"policy"`
	Listen          string            `toml:"listen"`
	DataDir         string            `toml:"data_dir"`
	TokenFile       string            `toml:"token_file"`
	HostTokenFile   string            `toml:"host_token_file"`
	NoHedge         bool              `toml:"no_hedge"`
	NoBatch         bool              `toml:"no_batch"`
	FreshInstances  bool              `toml:"fresh_instances"`
	JobIDs          map[string]string `toml:"job_ids"` // Tangle job id → job name
	MaxInputBytes   int64             `toml:"max_input_bytes"`
	CacheDir        string            `toml:"cache_dir"`
	State           string            `toml:"state"`
	LocalCapacity   int               `toml:"local_capacity"`
	MemoryLimitMB   int               `toml:"memory_limit_mb"`
	ShutdownTimeout string            `toml:"shutdown_timeout"`
	LogLevel        string            `toml:"log_level"`
	LogFormat       string            `toml:"log_format"`
	OTLPEndpoint    string            `toml:"otlp_endpoint"`
	LambdaBootstrap string            `toml:"lambda_bootstrap"`
	LambdaEngine    string            `toml:"lambda_engine"`
	QueueWorkers    int               `toml:"queue_workers"`
	ResultTTL       string            `toml:"result_ttl"`
}

func newServeCmd(e *env) *cobra.Command {
	var (
		cfgFile string
		c       = serveConfig{}
		jobIDs  []string
		shutd   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve --bundle BUNDLE",
		Short: "Run the orchestrator: deploy a bundle's jobs and route every call",
		Long: `Run Ferry's orchestrator for a bundle. It reads the deployment policy, plans
where each job may run (as "ferry plan" shows), deploys every eligible job to
the local host and to the remote hosts the policy names (custom FaaS hosts
such as "ferry host serve"; Lambda and Workers come with their hosts), and
then routes every call: hard limits first, then expected latency (learned
per host), cost and local load, with hedging for pure deterministic jobs,
failover with circuit breakers, and fallback to the local host.

API (docs/serve.md):
  POST /v1/jobs/{job}/invoke     body: the input; answer: the output (or JSON
                                 with Accept: application/json), X-Ferry-* headers
  POST /v1/jobs/{job}/submit     queue a call (durable; Idempotency-Key header
                                 makes retries safe); answer 202 + Location
  GET  /v1/invocations/{id}      a submitted call's status and result
  GET  /v1/jobs                  jobs, eligibility, routes and what was learned
  GET  /v1/decisions/{id}        why a call went where it went
  POST /api/functions/{job}/invoke, POST /job/{id}   the custom FaaS protocol,
                                 so a Tangle runner can use Ferry as its FaaS endpoint
  GET  /healthz   GET /metrics

Deployments are recorded in --data-dir: a restart redeploys only what
changed. SIGINT/SIGTERM stop accepting calls and let running ones finish.`,
		Example: `  ferry serve --bundle build/app.bundle
  ferry serve --bundle build/app.bundle --listen 127.0.0.1:8700 --job-id 0=square
  ferry serve --config ferry-serve.toml
  curl --data-binary 12345 http://127.0.0.1:8700/v1/jobs/square/invoke`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgFile != "" {
				if err := mergeServeConfig(cmd.Flags(), cfgFile, &c); err != nil {
					return withCode(exitUsage, err)
				}
			}
			if c.ShutdownTimeout != "" && !cmd.Flags().Changed("shutdown-timeout") {
				d, err := time.ParseDuration(c.ShutdownTimeout)
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("shutdown_timeout %q: %w", c.ShutdownTimeout, err))
				}
				shutd = d
			}
			for _, kv := range jobIDs {
				id, name, ok := strings.Cut(kv, "=")
				if !ok {
					return withCode(exitUsage, fmt.Errorf("--job-id %q: want ID=JOB", kv))
				}
				if c.JobIDs == nil {
					c.JobIDs = map[string]string{}
				}
				c.JobIDs[id] = name
			}
			return runServe(cmd.Context(), e, &c, shutd)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfgFile, "config", "", "TOML `FILE` with any of these settings (keys: the flag names with _); flags win")
	fl.StringVar(&c.Bundle, "bundle", "", "the bundle `DIR` written by ferry build (required)")
	fl.StringVar(&c.Policy, "policy", "", "deployment policy `FILE` (default: the Tangle CLI's file)")
	fl.StringVar(&c.Listen, "listen", "127.0.0.1:8700", "`ADDR` to listen on (port 0 picks a free one)")
	fl.StringVar(&c.DataDir, "data-dir", filepath.Join(defaultDir("data"), "serve"), "`DIR` for the deployment registry and the queue")
	fl.StringVar(&c.TokenFile, "token-file", "", "bearer token callers must send, from `FILE` (default: $FERRY_TOKEN; none: no auth)")
	fl.StringVar(&c.HostTokenFile, "host-token-file", "", "bearer token for custom FaaS hosts, from `FILE` (default: $FERRY_HOST_TOKEN)")
	fl.BoolVar(&c.NoHedge, "no-hedge", false, "never hedge calls (by default pure deterministic jobs may be)")
	fl.BoolVar(&c.NoBatch, "no-batch", false, "send every remote call alone (by default small concurrent calls share round trips)")
	fl.BoolVar(&c.FreshInstances, "fresh-instances", false, "a fresh local instance for every call, also for pure jobs")
	fl.StringArrayVar(&jobIDs, "job-id", nil, "map a Tangle job id to a job for POST /job/{id}: `ID=JOB` (repeatable)")
	fl.Int64Var(&c.MaxInputBytes, "max-input-bytes", 8<<20, "largest request body")
	fl.StringVar(&c.CacheDir, "cache-dir", filepath.Join(defaultDir("cache"), "compile"), "compilation cache `DIR` (\"\" for none)")
	fl.StringVar(&c.State, "state", "", "state store for jobs run here: a bbolt `FILE`, \"memory\" or redis://host:port/db (default: the policy's ferry.state.url, else state.db in --data-dir)")
	fl.StringVar(&c.OTLPEndpoint, "otlp-endpoint", "", "export traces to this OTLP/HTTP collector `URL` (default: $OTEL_EXPORTER_OTLP_ENDPOINT; none: no export)")
	fl.StringVar(&c.LambdaBootstrap, "lambda-bootstrap", "", "ferry-lambda executable for aws-lambda functions (default: $"+envLambdaBootstrap+", else bin/ferry-lambda-linux-ARCH)")
	fl.StringVar(&c.LambdaEngine, "lambda-engine", "", "engine the Lambda bootstrap runs jobs on: tiered (default), compiler or interpreter")
	fl.IntVar(&c.QueueWorkers, "queue-workers", service.DefaultQueueWorkers, "submitted calls run at once")
	fl.StringVar(&c.ResultTTL, "result-ttl", "24h", "how long a submitted call's result is kept (a Go `DURATION`)")
	fl.IntVar(&c.LocalCapacity, "local-capacity", 0, "local calls in flight that count as full load (default 4 × CPUs)")
	fl.IntVar(&c.MemoryLimitMB, "memory-limit-mb", 400, "resident memory that counts as full memory pressure")
	fl.DurationVar(&shutd, "shutdown-timeout", 30*time.Second, "how long running calls may take to finish on shutdown")
	fl.StringVar(&c.LogLevel, "log-level", "info", "log level: debug (a line per call), info, warn, error")
	fl.StringVar(&c.LogFormat, "log-format", "text", "log format on stderr: text or json")
	return cmd
}

// mergeServeConfig reads the TOML file and takes each setting whose flag
// was not given.
func mergeServeConfig(fl *pflag.FlagSet, path string, c *serveConfig) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var f serveConfig
	dec := toml.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return fmt.Errorf("--config %s: unknown setting:\n%s", path, sm.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return fmt.Errorf("--config %s:%d:%d: %v", path, row, col, err)
		}
		return fmt.Errorf("--config %s: %w", path, err)
	}
	take := func(flag string, set func()) {
		if !fl.Changed(flag) {
			set()
		}
	}
	str := func(flag string, dst *string, v string) {
		if v != "" {
			take(flag, func() { *dst = v })
		}
	}
	str("bundle", &c.Bundle, f.Bundle)
	str("lambda-bootstrap", &c.LambdaBootstrap, f.LambdaBootstrap)
	str("lambda-engine", &c.LambdaEngine, f.LambdaEngine)
	str("policy", &c.Policy, f.Policy)
	str("listen", &c.Listen, f.Listen)
	str("data-dir", &c.DataDir, f.DataDir)
	str("token-file", &c.TokenFile, f.TokenFile)
	str("host-token-file", &c.HostTokenFile, f.HostTokenFile)
	str("cache-dir", &c.CacheDir, f.CacheDir)
	str("state", &c.State, f.State)
	str("log-level", &c.LogLevel, f.LogLevel)
	str("log-format", &c.LogFormat, f.LogFormat)
	str("otlp-endpoint", &c.OTLPEndpoint, f.OTLPEndpoint)
	if f.NoHedge {
		take("no-hedge", func() { c.NoHedge = true })
	}
	if f.NoBatch {
		take("no-batch", func() { c.NoBatch = true })
	}
	if f.FreshInstances {
		take("fresh-instances", func() { c.FreshInstances = true })
	}
	if f.MaxInputBytes != 0 {
		take("max-input-bytes", func() { c.MaxInputBytes = f.MaxInputBytes })
	}
	if f.QueueWorkers != 0 {
		take("queue-workers", func() { c.QueueWorkers = f.QueueWorkers })
	}
	str("result-ttl", &c.ResultTTL, f.ResultTTL)
	if f.LocalCapacity != 0 {
		take("local-capacity", func() { c.LocalCapacity = f.LocalCapacity })
	}
	if f.MemoryLimitMB != 0 {
		take("memory-limit-mb", func() { c.MemoryLimitMB = f.MemoryLimitMB })
	}
	c.ShutdownTimeout = f.ShutdownTimeout
	if len(f.JobIDs) > 0 {
		if c.JobIDs == nil {
			c.JobIDs = map[string]string{}
		}
		for k, v := range f.JobIDs {
			c.JobIDs[k] = v
		}
	}
	return nil
}

// readToken reads a bearer token from file, or from $env when no file is
// given; an empty file is an error.
func readToken(file, env string) (string, error) {
	if file == "" {
		return os.Getenv(env), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return tok, nil
}

func runServe(ctx context.Context, e *env, c *serveConfig, shutdownTimeout time.Duration) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return withCode(exitUsage, fmt.Errorf("--log-level %q: %w", c.LogLevel, err))
	}
	var logger *slog.Logger
	switch c.LogFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	case "json":
		logger = slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	default:
		return withCode(exitUsage, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	if c.Bundle == "" {
		return withCode(exitUsage, errors.New("--bundle is required (a directory written by ferry build)"))
	}
	if c.MaxInputBytes <= 0 || c.MemoryLimitMB <= 0 || c.LocalCapacity < 0 || c.QueueWorkers <= 0 || c.QueueWorkers > 4096 {
		return withCode(exitUsage, errors.New("--max-input-bytes and --memory-limit-mb must be positive, --local-capacity not negative, --queue-workers 1–4096"))
	}
	resultTTL, err := time.ParseDuration(c.ResultTTL)
	if err != nil || resultTTL < time.Second {
		return withCode(exitUsage, fmt.Errorf("--result-ttl %q: want a duration of at least 1s, like 24h", c.ResultTTL))
	}
	jobIDs := map[uint32]string{}
	for k, v := range c.JobIDs {
		id, err := strconv.ParseUint(k, 10, 32)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("job id %q: want a number 0–4294967295", k))
		}
		jobIDs[uint32(id)] = v
	}
	token, err := readToken(c.TokenFile, "FERRY_TOKEN")
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("--token-file: %w", err))
	}
	hostToken, err := readToken(c.HostTokenFile, "FERRY_HOST_TOKEN")
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("--host-token-file: %w", err))
	}
	b, err := bundle.Open(c.Bundle)
	if err != nil {
		return withCode(exitModule, err)
	}
	for id, name := range jobIDs {
		if _, ok := b.Manifest.Job(name); !ok {
			return withCode(exitUsage, fmt.Errorf("--job-id %d=%s: the bundle has no job %q", id, name, name))
		}
	}
	pol, polPath, polExists, err := loadPolicy(c.Policy)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as ferry host serve: see docs/rationale.md
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return withCode(exitHost, fmt.Errorf("--data-dir: %w", err))
	}
	// The state store of jobs run here: --state, else the policy's
	// external store (so the local host and the remote ones share it),
	// else a bbolt file in the data directory.
	spec := c.State
	if spec == "" && pol.State() != nil {
		spec = pol.State().URL
	}
	if spec == "" {
		spec = filepath.Join(c.DataDir, "state.db")
	}
	store, err := state.Open(ctx, spec)
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return withCode(exitUsage, fmt.Errorf("state store: %w", err))
		}
		return withCode(exitHost, fmt.Errorf("state store: %w", err))
	}
	defer store.Close()
	shutdownTracing, tracing, err := otlp.Setup(ctx, otlp.Config{Service: "ferry-serve", Version: version, Endpoint: c.OTLPEndpoint})
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("--otlp-endpoint: %w", err))
	}
	defer shutdownTracing(context.WithoutCancel(ctx))
	rt, err := wasmrt.New(ctx, wasmrt.Config{CacheDir: c.CacheDir, Logger: logger, State: store})
	if err != nil {
		return withCode(exitHost, err)
	}
	defer rt.Close(context.WithoutCancel(ctx))

	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return withCode(exitHost, fmt.Errorf("--listen %s: %w", c.Listen, err))
	}
	defer ln.Close()

	polNote := polPath
	if !polExists {
		polNote += " (absent: defaults, serverless off)"
	}
	fmt.Fprintf(e.stderr, "ferry serve: bundle %s, policy %s\n", c.Bundle, polNote)
	start := time.Now()
	lambdas := &lambdaHosts{pol: pol, bootstrap: c.LambdaBootstrap, engine: c.LambdaEngine}
	svc, err := service.Start(ctx, service.Config{
		Bundle: b, Policy: pol, DataDir: c.DataDir, Runtime: rt, HostToken: hostToken, NoHedge: c.NoHedge, NoBatch: c.NoBatch,
		FreshInstances: c.FreshInstances, LocalCapacity: c.LocalCapacity, MemoryLimitBytes: uint64(c.MemoryLimitMB) << 20,
		Logger: logger, Progress: e.stderr,
		NewHost: func(p policy.Provider) (host.Host, error) {
			if p.Type == policy.CloudflareWorkers {
				return workersHost(p, hostToken)
			}
			return lambdas.newHost(ctx, p)
		},
		Queue: queue.Config{Workers: c.QueueWorkers, TTL: resultTTL, MaxInputBytes: int(c.MaxInputBytes)},
	})
	if err != nil {
		return withCode(exitHost, err)
	}
	defer svc.Close(context.WithoutCancel(ctx))
	a, err := api.New(api.Config{Exec: svc.Exec, Plan: svc.Plan, Router: svc.Router, Queue: svc.Queue, Token: token,
		MaxInputBytes: c.MaxInputBytes, JobIDs: jobIDs, Logger: logger,
		Extra: func() map[string]any {
			queued, running := svc.Queue.Depth()
			return map[string]any{"rss_bytes": svc.Sampler.RSS(), "queue": map[string]int{"queued": queued, "running": running}}
		}})
	if err != nil {
		return withCode(exitHost, err)
	}
	svc.Exec.SetObserver(a.Observer())
	auth := "no token"
	if token != "" {
		auth = "bearer token required"
	} else if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		logger.Warn("listening beyond loopback without a token: set FERRY_TOKEN or --token-file", "listen", c.Listen)
	}
	logger.Info("ferry serve listening", "url", "http://"+ln.Addr().String(), "strategy", svc.Plan.Strategy,
		"jobs", len(svc.Router.Jobs()), "remote_jobs", len(svc.Plan.RemoteJobs), "auth", auth, "state", storeName(store), "tracing", tracing, "startup", time.Since(start).Round(time.Millisecond))

	hs := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	select {
	case err := <-serveErr:
		return withCode(exitHost, fmt.Errorf("serve: %w", err))
	case <-ctx.Done():
	}
	logger.Info("shutting down: no new calls; waiting for running ones", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return withCode(exitHost, fmt.Errorf("shutdown: %w", err))
	}
	logger.Info("ferry serve stopped")
	return nil
}

// storeName says which state store is in use, without secrets.
func storeName(s state.Store) string {
	switch s := s.(type) {
	case *state.Memory:
		return "memory"
	case *state.Bolt:
		return s.Path()
	case *state.Redis:
		return s.String()
	}
	return fmt.Sprintf("%T", s)
}
