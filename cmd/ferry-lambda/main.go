// Command ferry-lambda is the bootstrap of Ferry's AWS Lambda functions: the
// provided.al2023 custom runtime that runs one job's WebAssembly module
// with Ferry's runtime. The Lambda host (hosts/lambda) zips it as
// `bootstrap` with the job's module.wasm and manifest.json; Lambda starts
// it, and it serves invocations through the Runtime API with
// aws-lambda-go.
//
// Build it for Lambda with
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags '-s -w' -o bootstrap ./cmd/ferry-lambda
//
// (`make lambda` does, for arm64 and x86_64). It is not meant to be run by
// hand: outside Lambda (no AWS_LAMBDA_RUNTIME_API) it says so and exits.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ferryrun/ferry/hosts/lambda/bootstrap"
	"github.com/ferryrun/ferry/hosts/lambda/event"
	"github.com/ferryrun/ferry/runtime/state"
)

func main() {
	os.Exit(run(context.Background(), os.Getenv, os.Stderr))
}

func run(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	api := getenv("AWS_LAMBDA_RUNTIME_API")
	if api == "" {
		fmt.Fprintln(stderr, "ferry-lambda: AWS_LAMBDA_RUNTIME_API is not set: this is the bootstrap of a Lambda function, started by Lambda (or `ferry host lambda-local`), not by hand")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	setMemoryLimit(getenv)
	h, err := load(ctx, getenv, log)
	if err != nil {
		// aws-lambda-go never reports an init failure; Ferry does, so the
		// first invocation gets the reason rather than "Runtime exited".
		log.Error("init failed", "err", err)
		if perr := initError(api, err); perr != nil {
			log.Error("could not report the init error", "err", perr)
		}
		return 1
	}
	lambda.Start(h) // serves until the environment is shut down
	return 0
}

func load(ctx context.Context, getenv func(string) string, log *slog.Logger) (*bootstrap.Handler, error) {
	cfg := bootstrap.ConfigFromEnv(getenv)
	cfg.Logger = log
	if spec := getenv(bootstrap.EnvState); spec != "" {
		st, err := state.Open(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("open the state store %s: %w", state.Redacted(spec), err)
		}
		cfg.State = st
	}
	return bootstrap.Load(ctx, cfg)
}

// setMemoryLimit keeps the Go heap under the function's memory, so the
// collector works harder before Lambda kills the environment for running
// out (Runtime.OutOfMemory): 85% of AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
// unless GOMEMLIMIT says otherwise. Guest memory is outside the Go heap;
// the Lambda host sizes functions for both.
func setMemoryLimit(getenv func(string) string) {
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	mb, err := strconv.Atoi(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
	if err != nil || mb <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(mb) << 20 * 85 / 100)
}

// initError posts the failure to the Runtime API's /runtime/init/error
// (docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-initerror).
func initError(api string, cause error) error {
	body, _ := json.Marshal(event.ErrorBody{ErrorMessage: cause.Error(), ErrorType: string(event.TypeInit)})
	req, err := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Lambda-Runtime-Function-Error-Type", string(event.TypeInit))
	req.Header.Set("Content-Type", "application/vnd.aws.lambda.error+json")
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("runtime API answered %s", resp.Status)
	}
	return nil
}
