package locallambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Handler errors, panics, crashes, timeouts and oversize replies are
// function errors: 200, X-Amz-Function-Error: Unhandled, the error JSON
// (spec 1.9, 2.3). Those that end the process make the next invoke cold.
func TestLambdaLocal_Invoke_FunctionErrors(t *testing.T) {
	t.Parallel()
	_, url := Start(t, Config{})
	c := newClient(url)
	// A generous timeout: on a loaded machine a 6 MB reply takes a while.
	createActive(t, c, "errs", fnOpts{timeout: 30})

	for _, tc := range []struct {
		name     string
		payload  string
		errType  string
		msg      *regexp.Regexp
		logHas   []string
		nextCold bool
	}{
		{"handler error", `{"op":"error","message":"something went wrong!"}`, "errorString",
			regexp.MustCompile(`^something went wrong!$`), nil, false},
		{"panic", `{"op":"panic","message":"boom"}`, "string",
			regexp.MustCompile(`^boom$`), nil, true},
		{"crash", `{"op":"exit","code":3}`, "Runtime.ExitError",
			regexp.MustCompile(`^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 3$`),
			[]string{"exiting mid-invoke", "Error: Runtime exited with error: exit status 3", "Runtime.ExitError"}, true},
		{"clean exit", `{"op":"exit","code":0}`, "Runtime.ExitError",
			regexp.MustCompile(`^RequestId: [0-9a-f-]{36} Error: Runtime exited without providing a reason$`), nil, true},
		{"reply too large", fmt.Sprintf(`{"op":"big","bytes":%d}`, maxResponseBytes), "Function.ResponseSizeTooLarge",
			regexp.MustCompile(`^Response payload size \(6291558 bytes\) exceeded maximum allowed payload size \(6291556 bytes\)\.$`), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _ = pidOf(t, c, "errs") // a ready environment
			out, log := invoke(t, c, "errs", tc.payload)
			assert.Equal(t, int32(200), out.StatusCode)
			e := decodeError(t, out)
			assert.Equal(t, tc.errType, e.ErrorType, "%s", out.Payload)
			assert.Regexp(t, tc.msg, e.ErrorMessage)
			r := parseReport(t, log)
			if strings.Contains(tc.msg.String(), "RequestId") {
				assert.Contains(t, e.ErrorMessage, r.requestID, "the message names the request")
			}
			for _, want := range tc.logHas {
				assert.Contains(t, log, want)
			}
			_, next := pidOf(t, c, "errs")
			assert.Equal(t, tc.nextCold, next.cold, "is the next invoke cold?")
		})
	}
}

// The timeout kills the process group: the caller gets Sandbox.Timedout,
// the log has AWS's line, and the next invoke is cold.
func TestLambdaLocal_Invoke_TimeoutLog(t *testing.T) {
	t.Parallel()
	s, url := Start(t, Config{})
	c := newClient(url)
	createActive(t, c, "slowpoke", fnOpts{timeout: 1})
	pid, _ := pidOf(t, c, "slowpoke")
	out, log := invoke(t, c, "slowpoke", `{"op":"sleep","ms":30000}`)
	e := decodeError(t, out)
	assert.Equal(t, "Sandbox.Timedout", e.ErrorType)
	r := parseReport(t, log)
	// N.NN is the time actually waited: 1.00 on an idle machine.
	assert.Regexp(t, `^RequestId: `+r.requestID+` Error: Task timed out after [1-9]\.\d\d seconds$`, e.ErrorMessage)
	ls := lines(log)
	require.GreaterOrEqual(t, len(ls), 4, log)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `+r.requestID+` Task timed out after [1-9]\.\d\d seconds$`, ls[len(ls)-3])
	assert.GreaterOrEqual(t, r.duration, 1000.0)
	assert.Less(t, r.duration, 10000.0)
	assertProcessGone(t, pid)
	assert.Eventually(t, func() bool { return s.Environments("slowpoke") == 0 }, 5*time.Second, 10*time.Millisecond)
	_, next := pidOf(t, c, "slowpoke")
	assert.True(t, next.cold, "the next invoke is cold")
}

// Inits that fail: a reported init error is served to the first invoke;
// an exit is retried once in the invoke phase; a missing or unusable
// bootstrap is Runtime.InvalidEntrypoint.
func TestLambdaLocal_Invoke_InitFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, url := Start(t, Config{})
	c := newClient(url)
	// One upload of the real bootstrap; TEST_INIT picks the failure.
	createActive(t, c, "init", fnOpts{timeout: 30})
	setInit := func(t *testing.T, mode string) {
		t.Helper()
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("init"),
			Environment:  &types.Environment{Variables: map[string]string{"TEST_INIT": mode}},
		})
		require.NoError(t, err)
		waitUpdated(t, c, "init")
	}

	t.Run("init error", func(t *testing.T) {
		setInit(t, "init-error")
		out, log := invoke(t, c, "init", `{}`)
		decodeError(t, out)
		assert.JSONEq(t, `{"errorMessage":"config missing","errorType":"Runtime.ConfigInvalid"}`, string(out.Payload))
		assert.Regexp(t, `(?m)^INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: init\tStatus: error\tError Type: Runtime.ConfigInvalid$`, log)
		assert.Eventually(t, func() bool { return s.Environments("init") == 0 }, 5*time.Second, 10*time.Millisecond,
			"the environment is discarded")
	})
	t.Run("exit at init", func(t *testing.T) {
		setInit(t, "exit:3")
		out, log := invoke(t, c, "init", `{}`)
		e := decodeError(t, out)
		assert.Equal(t, "Runtime.ExitError", e.ErrorType)
		assert.Regexp(t, `^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 3$`, e.ErrorMessage)
		assert.Regexp(t, `(?m)^INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError$`, log)
		assert.Regexp(t, `(?m)^INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: invoke\tStatus: error\tError Type: Runtime.ExitError$`, log)
		assert.Contains(t, log, "init: exiting with 3", "the init's output explains it")
		parseReport(t, log)
		assert.Equal(t, 0, s.Environments("init"))
	})
	t.Run("exit 0 at init", func(t *testing.T) {
		setInit(t, "exit:0")
		out, _ := invoke(t, c, "init", `{}`)
		assert.Regexp(t, `Error: Runtime exited without providing a reason$`, decodeError(t, out).ErrorMessage)
	})
	t.Run("exit once at init", func(t *testing.T) {
		setInit(t, "exit-once")
		out, log := invoke(t, c, "init", `{"op":"echo"}`)
		assert.Nil(t, out.FunctionError, "the retried init succeeds: %s", out.Payload)
		assert.Contains(t, log, "Phase: init\tStatus: error")
		assert.True(t, parseReport(t, log).cold)
	})

	for _, tc := range []struct {
		name, msg string
		files     map[string]zipEntry
	}{
		{"no bootstrap", `^RequestId: [0-9a-f-]{36} Error: Couldn't find valid bootstrap\(s\): \[\S+/bootstrap /opt/bootstrap\]$`,
			map[string]zipEntry{"main": {[]byte("#!/bin/sh\n"), 0o755}}},
		{"not executable", `^RequestId: [0-9a-f-]{36} Error: fork/exec \S+/bootstrap: permission denied$`,
			map[string]zipEntry{"bootstrap": {[]byte("#!/bin/sh\n"), 0o644}}},
		{"exec format error", `^RequestId: [0-9a-f-]{36} Error: fork/exec \S+/bootstrap: exec format error$`,
			map[string]zipEntry{"bootstrap": {[]byte("\x7fELF-but-not-really"), 0o755}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			createActive(t, c, name, fnOpts{zip: makeZip(t, tc.files)})
			out, log := invoke(t, c, name, `{}`)
			e := decodeError(t, out)
			assert.Equal(t, "Runtime.InvalidEntrypoint", e.ErrorType)
			assert.Regexp(t, tc.msg, e.ErrorMessage)
			assert.Contains(t, log, "Error Type: Runtime.InvalidEntrypoint")
			parseReport(t, log)
			assert.Equal(t, 0, s.Environments(name))
		})
	}
}

// One environment per concurrent invoke, reused once free; beyond
// MaxConcurrency, 429 TooManyRequestsException.
func TestLambdaLocal_Invoke_Concurrency(t *testing.T) {
	t.Parallel()
	s, url := Start(t, Config{MaxConcurrency: 8})
	c := newClient(url)
	createActive(t, c, "par", fnOpts{timeout: 120})

	// Eight invokes held until release: eight environments.
	hold := func() (release func(), wait func()) {
		file := filepath.Join(t.TempDir(), "release")
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("par"),
					Payload: fmt.Appendf(nil, `{"op":"block","path":%q}`, file)})
				if assert.NoError(t, err) {
					assert.Equal(t, `"released"`, string(out.Payload))
				}
			})
		}
		require.Eventually(t, func() bool { return busy(s, "par") == 8 }, 60*time.Second, 5*time.Millisecond)
		return func() { require.NoError(t, os.WriteFile(file, nil, 0o644)) }, wg.Wait
	}
	release, wait := hold()
	assert.Equal(t, 8, s.Environments("par"), "eight at once need eight environments")
	// All eight busy: the ninth is throttled.
	_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("par"), Payload: []byte(`{}`)}, noRetries)
	var tm *types.TooManyRequestsException
	require.ErrorAs(t, err, &tm)
	assert.Equal(t, types.ThrottleReasonConcurrentInvocationLimitExceeded, tm.Reason)
	release()
	wait()

	// Eight more at once run warm on the same eight.
	release, wait = hold()
	assert.Equal(t, 8, s.Environments("par"), "warm environments were reused")
	release()
	wait()
}

// busy counts the function's environments reserved for or serving an invoke.
func busy(s *Server, name string) int {
	s.mu.Lock()
	fn := s.fns[name]
	s.mu.Unlock()
	fn.mu.Lock()
	defer fn.mu.Unlock()
	n := 0
	for e := range fn.envs {
		e.mu.Lock()
		if e.assigned != nil || e.phase == phaseBusy {
			n++
		}
		e.mu.Unlock()
	}
	return n
}

// The environment of spec 1.7, exactly, and the Runtime API's headers.
func TestLambdaLocal_Invoke_Environment(t *testing.T) {
	t.Parallel()
	_, url := Start(t, Config{Env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIDFN", "SHARED": "cfg"}})
	c := newClient(url)
	createActive(t, c, "envfn", fnOpts{memory: 192, timeout: 7, env: map[string]string{"SHARED": "fn", "TZ": "Europe/Paris"}})

	out, _ := invoke(t, c, "envfn", `{"op":"env"}`)
	var env map[string]string
	require.NoError(t, json.Unmarshal(out.Payload, &env))
	cwd := env["cwd"]
	delete(env, "cwd")
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{
		"AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_NAME",
		"AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
		"AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_REGION", "LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT",
		"LANG", "PATH", "SHARED", "TMPDIR", "TZ", "_HANDLER", "_X_AMZN_TRACE_ID",
	}, keys, "exactly these variables (aws-lambda-go sets _X_AMZN_TRACE_ID per invoke)")
	assert.Regexp(t, `^127\.0\.0\.1:\d+$`, env["AWS_LAMBDA_RUNTIME_API"])
	assert.Equal(t, "bootstrap", env["_HANDLER"])
	assert.Equal(t, cwd, env["LAMBDA_TASK_ROOT"], "cwd is the code directory")
	assert.FileExists(t, cwd+"/version.txt")
	assert.DirExists(t, env["LAMBDA_RUNTIME_DIR"])
	assert.DirExists(t, env["TMPDIR"])
	assert.Equal(t, "envfn", env["AWS_LAMBDA_FUNCTION_NAME"])
	assert.Equal(t, "192", env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
	assert.Equal(t, "$LATEST", env["AWS_LAMBDA_FUNCTION_VERSION"])
	assert.Equal(t, "us-east-1", env["AWS_REGION"])
	assert.Equal(t, "us-east-1", env["AWS_DEFAULT_REGION"])
	assert.Equal(t, "/aws/lambda/envfn", env["AWS_LAMBDA_LOG_GROUP_NAME"])
	assert.Regexp(t, `^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$`, env["AWS_LAMBDA_LOG_STREAM_NAME"])
	assert.Equal(t, "on-demand", env["AWS_LAMBDA_INITIALIZATION_TYPE"])
	assert.Equal(t, "Europe/Paris", env["TZ"], "TZ may be overridden")
	assert.Equal(t, "en_US.UTF-8", env["LANG"])
	assert.Equal(t, "fn", env["SHARED"], "the function's variables win over Config.Env")
	assert.Equal(t, "AKIDFN", env["AWS_ACCESS_KEY_ID"])
	assert.Regexp(t, `^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`, env["_X_AMZN_TRACE_ID"])

	before := time.Now()
	out, _ = invoke(t, c, "envfn", `{"op":"context"}`)
	var got struct {
		RequestID   string `json:"request_id"`
		FunctionArn string `json:"function_arn"`
		DeadlineMs  int64  `json:"deadline_ms"`
	}
	require.NoError(t, json.Unmarshal(out.Payload, &got))
	assert.Regexp(t, uuidRE, got.RequestID)
	assert.Equal(t, "arn:aws:lambda:us-east-1:123456789012:function:envfn", got.FunctionArn)
	assert.InDelta(t, before.Add(7*time.Second).UnixMilli(), got.DeadlineMs, 2000, "Lambda-Runtime-Deadline-Ms is now + Timeout")

	// The client context reaches the function on synchronous invokes.
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("envfn"), Payload: []byte(`{"op":"context"}`),
		ClientContext: aws.String(base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`)))})
	require.NoError(t, err)
	assert.Contains(t, string(out.Payload), `"custom":{"k":"v"}`)
	_, err = c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("envfn"), ClientContext: aws.String("%%%")})
	var ipv *types.InvalidParameterValueException
	assert.ErrorAs(t, err, &ipv)
}

// Output written during an invoke lands between START and END, in order;
// Tail carries at most the last 4 KB.
func TestLambdaLocal_Invoke_Logs(t *testing.T) {
	t.Parallel()
	var sink strings.Builder
	var mu sync.Mutex
	s, url := Start(t, Config{FunctionLogs: writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return sink.Write(p)
	})})
	c := newClient(url)
	createActive(t, c, "logger", fnOpts{env: map[string]string{"TEST_INIT": "log"}})

	for range 3 { // every time, not by luck
		out, log := invoke(t, c, "logger", `{"op":"log","lines":["one","two","three"]}`)
		assert.Equal(t, `"logged"`, string(out.Payload))
		ls := lines(log)
		require.Len(t, ls, 6, log)
		assert.Regexp(t, `^START RequestId: `, ls[0])
		assert.Equal(t, []string{"one", "two", "three"}, ls[1:4])
		assert.Regexp(t, `^END RequestId: `, ls[4])
		assert.Regexp(t, `^REPORT RequestId: `, ls[5])
	}
	assert.Contains(t, strings.Join(s.Logs("logger"), "\n"), "init: hello from init", "init output reaches the log stream")

	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf("line %03d %s", i, strings.Repeat("x", 20))
	}
	b, _ := json.Marshal(map[string]any{"op": "log", "lines": many})
	_, log := invoke(t, c, "logger", string(b))
	assert.LessOrEqual(t, len(log), 4096)
	assert.Greater(t, len(log), 4000)
	assert.Contains(t, log, "line 299")
	assert.NotContains(t, log, "line 000")
	parseReport(t, log)

	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, sink.String(), "[logger] START RequestId: ")
	assert.Contains(t, sink.String(), "[logger] two\n")
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Event runs in the background (202); DryRun runs nothing (204).
func TestLambdaLocal_Invoke_Types(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, url := Start(t, Config{eventRetryDelays: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}})
	c := newClient(url)
	createActive(t, c, "async", fnOpts{})

	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("async"), InvocationType: types.InvocationTypeDryRun})
	require.NoError(t, err)
	assert.Equal(t, int32(204), out.StatusCode)
	assert.Equal(t, 0, s.Environments("async"), "DryRun starts nothing")

	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("async"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`{"op":"log","lines":["from the event"]}`)})
	require.NoError(t, err)
	assert.Equal(t, int32(202), out.StatusCode)
	assert.Eventually(t, func() bool { return strings.Contains(strings.Join(s.Logs("async"), "\n"), "from the event") },
		10*time.Second, 10*time.Millisecond)

	// A failing event is tried three times in all, under one request id.
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("async"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`{"op":"error","message":"nope"}`)})
	require.NoError(t, err)
	starts := func() map[string]int {
		n := map[string]int{}
		for _, l := range s.Logs("async") {
			if id, ok := strings.CutPrefix(l, "START RequestId: "); ok {
				n[strings.Fields(id)[0]]++
			}
		}
		return n
	}
	assert.Eventually(t, func() bool {
		for _, n := range starts() {
			if n == 3 {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "%v", starts())

	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("async"), Payload: []byte(`{not json`)})
	var bad *types.InvalidRequestContentException
	assert.ErrorAs(t, err, &bad)
}

// MemorySize is enforced and Max Memory Used follows the process.
func TestLambdaLocal_Invoke_Memory(t *testing.T) {
	t.Parallel()
	_, url := Start(t, Config{})
	c := newClient(url)
	// A long timeout: on a loaded machine touching the memory is slow.
	createActive(t, c, "mem", fnOpts{memory: 256, timeout: 60})
	_, log := invoke(t, c, "mem", `{"op":"alloc","mb":96}`)
	assert.GreaterOrEqual(t, parseReport(t, log).maxUsed, 96)

	out, log := invoke(t, c, "mem", `{"op":"alloc","mb":300}`)
	e := decodeError(t, out)
	assert.Equal(t, "Runtime.OutOfMemory", e.ErrorType)
	assert.Regexp(t, `^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: signal: killed$`, e.ErrorMessage)
	assert.GreaterOrEqual(t, parseReport(t, log).maxUsed, 256)
}

// The Runtime API's refusals (spec 1.5), seen by a real runtime.
func TestLambdaLocal_RuntimeAPI_Rules(t *testing.T) {
	t.Parallel()
	s, url := Start(t, Config{})
	c := newClient(url)
	createActive(t, c, "probe", fnOpts{env: map[string]string{"TEST_INIT": "probe"}})
	out, _ := invoke(t, c, "probe", `{"op":"env"}`)
	logs := strings.Join(s.Logs("probe"), "\n")
	assert.Contains(t, logs, `probe invocation/nope/response 403 {"errorType":"InvalidStateTransition"`, "a reply before /next")
	assert.Contains(t, logs, `probe invocation/nope/error 403`)

	var env map[string]string
	require.NoError(t, json.Unmarshal(out.Payload, &env))
	base := "http://" + env["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
	post := func(path string) (int, string) {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("/invocation/00000000-0000-4000-8000-000000000000/response")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.JSONEq(t, `{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}`, body)
	code, _ = post("/init/error")
	assert.Equal(t, http.StatusForbidden, code, "init/error after init")

	// The environment still works.
	out, _ = invoke(t, c, "probe", `{"op":"echo"}`)
	assert.Nil(t, out.FunctionError)
}

// Idle environments are shut down after IdleTimeout.
func TestLambdaLocal_IdleTimeout(t *testing.T) {
	t.Parallel()
	s, url := Start(t, Config{IdleTimeout: 100 * time.Millisecond})
	c := newClient(url)
	createActive(t, c, "idle", fnOpts{})
	pid, _ := pidOf(t, c, "idle")
	assert.Eventually(t, func() bool { return s.Environments("idle") == 0 }, 5*time.Second, 10*time.Millisecond)
	assertProcessGone(t, pid)
	_, r := pidOf(t, c, "idle")
	assert.True(t, r.cold)
}

// A crash resets the sandbox without wiping /tmp (spec 1.8): the new
// environment gets the same TMPDIR. An update brings new sandboxes.
func TestLambdaLocal_Invoke_TmpSurvivesReset(t *testing.T) {
	t.Parallel()
	_, url := Start(t, Config{})
	c := newClient(url)
	createActive(t, c, "tmpfn", fnOpts{})
	tmpdir := func() string {
		out, _ := invoke(t, c, "tmpfn", `{"op":"env"}`)
		var env map[string]string
		require.NoError(t, json.Unmarshal(out.Payload, &env))
		return env["TMPDIR"]
	}
	before := tmpdir()
	require.NoError(t, os.WriteFile(before+"/kept", []byte("x"), 0o644))
	out, _ := invoke(t, c, "tmpfn", `{"op":"exit","code":2}`)
	decodeError(t, out)
	after := tmpdir()
	assert.Equal(t, before, after)
	assert.FileExists(t, after+"/kept")

	_, err := c.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("tmpfn"), Timeout: aws.Int32(4)})
	require.NoError(t, err)
	waitUpdated(t, c, "tmpfn")
	assert.NotEqual(t, before, tmpdir())
	assert.Eventually(t, func() bool { _, err := os.Stat(before); return err != nil }, 5*time.Second, 10*time.Millisecond,
		"the old sandbox's TMPDIR is removed")
}
