package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/hosts/lambda/locallambda"
)

type lambdaLocalFlags struct {
	listen, dir, region, accountID, logLevel string
	env                                      []string
	maxConcurrency                           int
	idleTimeout, shutdownTimeout             time.Duration
	jsonOut                                  bool
}

func newHostLambdaLocalCmd(e *env) *cobra.Command {
	f := &lambdaLocalFlags{}
	cmd := &cobra.Command{
		Use:   "lambda-local",
		Short: "Serve a local AWS Lambda that runs functions' real bootstrap executables",
		Long: `Serve a local imitation of AWS Lambda for tests and development.

The control plane is imitated: CreateFunction, UpdateFunctionCode,
UpdateFunctionConfiguration, GetFunction, GetFunctionConfiguration,
DeleteFunction, ListFunctions and Invoke, over the same REST/JSON protocol
the AWS CLI and SDKs speak, with Lambda's validation, states (Pending, then
Active) and error codes. The data plane is real: each function's zip is
unpacked under --dir and its "bootstrap" executable (provided.al2023,
provided.al2 or provided) runs as a child process that talks the real
Runtime API, one process per concurrent invocation, reused while warm.
Functions see Lambda's environment variables; their output, with START,
END and REPORT lines, goes to stderr and to X-Amz-Log-Result on Tail
invokes. Timeouts, MemorySize, crashes and oversize payloads behave as on
Lambda.

Not imitated: versions and aliases, layers, container images, code from
S3, the Extensions API, event sources, IAM (any credentials are accepted).
docs/local-lambda.md lists every wire detail and where it comes from.

Functions live in memory; a restart forgets them. The server stops on
SIGINT or SIGTERM, killing every function process.`,
		Example: `  ferry host lambda-local --listen 127.0.0.1:9001
  export AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:9001 AWS_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  aws lambda create-function --function-name hello --runtime provided.al2023 \
      --handler bootstrap --role arn:aws:iam::123456789012:role/local \
      --zip-file fileb://function.zip
  aws lambda wait function-active-v2 --function-name hello
  aws lambda invoke --function-name hello --payload '{"name":"ferry"}' \
      --cli-binary-format raw-in-base64-out --log-type Tail out.json
  ferry host lambda-local --listen 127.0.0.1:0 --json   # print the endpoint as JSON`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runLambdaLocal(cmd.Context(), e, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9001", "`ADDR` to listen on (host:port; port 0 picks a free one)")
	fl.StringVar(&f.dir, "dir", filepath.Join(defaultDir("cache"), "lambda-local"), "`DIR` where function code is unpacked (a fresh subdirectory, removed on exit)")
	fl.StringVar(&f.region, "region", "us-east-1", "`REGION` in function ARNs and AWS_REGION")
	fl.StringVar(&f.accountID, "account-id", "123456789012", "12-digit `ID` in function ARNs")
	fl.StringArrayVar(&f.env, "env", nil, "`KEY=VALUE` added to every function's environment (repeatable; e.g. credentials or endpoints the functions need)")
	fl.IntVar(&f.maxConcurrency, "max-concurrency", 64, "most execution environments per function; more concurrent invokes get TooManyRequestsException")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 5*time.Minute, "how long an idle execution environment is kept warm")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight invocations may take to finish on shutdown")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.BoolVar(&f.jsonOut, "json", false, "print the endpoint and settings as one JSON line on stdout")
	return cmd
}

// lambdaLocalInfo is what lambda-local prints on stdout once it listens.
type lambdaLocalInfo struct {
	Endpoint  string            `json:"endpoint"`
	Region    string            `json:"region"`
	AccountID string            `json:"account_id"`
	Dir       string            `json:"dir"`
	Env       map[string]string `json:"env"` // what to export to point the AWS CLI or an SDK here
}

func runLambdaLocal(ctx context.Context, e *env, f *lambdaLocalFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return withCode(exitUsage, fmt.Errorf("--log-level %q: %w", f.logLevel, err))
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	extra := map[string]string{}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return withCode(exitUsage, fmt.Errorf("--env %q: want KEY=VALUE", kv))
		}
		extra[k] = v
	}
	if f.shutdownTimeout < 0 {
		return withCode(exitUsage, fmt.Errorf("--shutdown-timeout %v: must not be negative", f.shutdownTimeout))
	}
	cfg := locallambda.Config{
		Dir: f.dir, Region: f.region, AccountID: f.accountID, Env: extra,
		MaxConcurrency: f.maxConcurrency, IdleTimeout: f.idleTimeout,
		Logger: logger, FunctionLogs: e.stderr,
	}
	if err := cfg.Validate(); err != nil {
		return withCode(exitUsage, err)
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return withCode(exitHost, fmt.Errorf("--listen %s: %w", f.listen, err))
	}
	defer ln.Close()
	srv, err := locallambda.New(cfg)
	if err != nil {
		return withCode(exitHost, err)
	}

	url := "http://" + ln.Addr().String()
	info := lambdaLocalInfo{
		Endpoint: url, Region: f.region, AccountID: f.accountID, Dir: f.dir,
		Env: map[string]string{"AWS_ENDPOINT_URL_LAMBDA": url, "AWS_REGION": f.region},
	}
	if f.jsonOut {
		if err := json.NewEncoder(e.stdout).Encode(info); err != nil {
			_ = srv.Close(context.WithoutCancel(ctx))
			return withCode(exitHost, err)
		}
	} else {
		fmt.Fprintf(e.stdout, `Local Lambda at %s (region %s, account %s).
Point the AWS CLI or an SDK at it (any credentials will do):
  export AWS_ENDPOINT_URL_LAMBDA=%s AWS_REGION=%s
  aws lambda list-functions
In Go: lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(%q) })
`, url, f.region, f.accountID, url, f.region, url)
	}
	logger.Info("ferry lambda-local listening", "url", url, "region", f.region, "dir", f.dir)

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
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
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("shutdown", "err", err)
	}
	// Invocations still running are cut short: their processes are killed.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer ccancel()
	if err := srv.Close(cctx); err != nil {
		return withCode(exitHost, fmt.Errorf("shutdown: %w", err))
	}
	_ = hs.Close()
	logger.Info("ferry lambda-local stopped")
	return nil
}
