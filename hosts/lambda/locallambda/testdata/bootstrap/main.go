// Command bootstrap is the function the locallambda tests deploy: a real
// aws-lambda-go program whose behaviour each invoke chooses with its
// payload ({"op": ...}) and whose init the function's environment
// variables choose (TEST_INIT). It lives under testdata so ./... skips it;
// the tests build it by its path.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type request struct {
	Op      string   `json:"op"`
	Message string   `json:"message"`
	Ms      int      `json:"ms"`
	Code    int      `json:"code"`
	MB      int      `json:"mb"`
	Bytes   int      `json:"bytes"`
	Lines   []string `json:"lines"`
	Path    string   `json:"path"`
}

// ballast keeps allocations alive, so the process's resident set stays up.
var ballast [][]byte

func main() {
	initStep(os.Getenv("TEST_INIT"))
	lambda.Start(handle)
}

// initStep misbehaves at init as TEST_INIT asks.
func initStep(mode string) {
	switch {
	case mode == "":
	case mode == "log":
		fmt.Println("init: hello from init")
	case strings.HasPrefix(mode, "exit:"):
		var code int
		fmt.Sscanf(strings.TrimPrefix(mode, "exit:"), "%d", &code)
		fmt.Fprintln(os.Stderr, "init: exiting with", code)
		os.Exit(code)
	case mode == "exit-once":
		// The first process exits; the retry finds the marker and runs.
		marker := filepath.Join(os.Getenv("LAMBDA_TASK_ROOT"), "crashed-once")
		if _, err := os.Stat(marker); err != nil {
			_ = os.WriteFile(marker, nil, 0o644)
			os.Exit(2)
		}
	case mode == "init-error":
		body := `{"errorMessage":"config missing","errorType":"Runtime.ConfigInvalid"}`
		req, _ := http.NewRequest(http.MethodPost, "http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+"/2018-06-01/runtime/init/error", strings.NewReader(body))
		req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.ConfigInvalid")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "init error post:", err)
			os.Exit(3)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println("init error posted:", resp.StatusCode)
		os.Exit(1)
	case mode == "probe":
		// Breaks the Runtime API's rules once at init and reports what it got.
		base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/"
		for _, path := range []string{"invocation/nope/response", "invocation/nope/error"} {
			resp, err := http.Post(base+path, "application/json", strings.NewReader("{}"))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				fmt.Printf("probe %s %d %s\n", path, resp.StatusCode, bytes.TrimSpace(b))
			}
		}
	}
}

func handle(ctx context.Context, ev json.RawMessage) (any, error) {
	var req request
	_ = json.Unmarshal(ev, &req)
	lc, _ := lambdacontext.FromContext(ctx)
	switch req.Op {
	case "", "echo":
		return ev, nil
	case "error":
		return nil, errors.New(req.Message)
	case "panic":
		panic(req.Message)
	case "sleep":
		time.Sleep(time.Duration(req.Ms) * time.Millisecond)
		return map[string]int{"slept": req.Ms}, nil
	case "block":
		// Holds the invoke until the test creates the file.
		for {
			if _, err := os.Stat(req.Path); err == nil {
				return "released", nil
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	case "log":
		for i, l := range req.Lines {
			if i%2 == 0 {
				fmt.Println(l)
			} else {
				fmt.Fprintln(os.Stderr, l)
			}
		}
		return "logged", nil
	case "exit":
		fmt.Println("exiting mid-invoke")
		os.Exit(req.Code)
	case "alloc":
		b := make([]byte, req.MB<<20)
		for i := range b {
			b[i] = byte(i)
		}
		ballast = append(ballast, b)
		return map[string]int{"allocated": req.MB}, nil
	case "big":
		return strings.Repeat("x", req.Bytes), nil
	case "version":
		b, err := os.ReadFile(filepath.Join(os.Getenv("LAMBDA_TASK_ROOT"), "version.txt"))
		return strings.TrimSpace(string(b)), err
	case "env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		wd, _ := os.Getwd()
		env["cwd"] = wd
		return env, nil
	case "context":
		dl, _ := ctx.Deadline()
		return map[string]any{
			"request_id":   lc.AwsRequestID,
			"function_arn": lc.InvokedFunctionArn,
			"deadline_ms":  dl.UnixMilli(),
			"trace_id":     os.Getenv("_X_AMZN_TRACE_ID"),
			"custom":       lc.ClientContext.Custom,
			"pid":          os.Getpid(),
		}, nil
	case "pid":
		return os.Getpid(), nil
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}
