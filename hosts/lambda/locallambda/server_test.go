package locallambda

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The whole life of a function through the real SDK: create, wait, cold
// and warm invokes, code and configuration updates, delete.
func TestLambdaLocal_Lifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, url := Start(t, Config{})
	c := newClient(url)
	zip1 := codeZip(t, "v1")

	created := createActive(t, c, "life", fnOpts{memory: 256, env: map[string]string{"GREETING": "hi"}})
	assert.Equal(t, types.StatePending, created.State, "CreateFunction answers Pending")
	assert.Equal(t, types.StateReasonCodeCreating, created.StateReasonCode)
	sum := sha256.Sum256(zip1)
	assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), *created.CodeSha256)

	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("life")})
	require.NoError(t, err)
	cfg := got.Configuration
	assert.Equal(t, "arn:aws:lambda:us-east-1:123456789012:function:life", *cfg.FunctionArn)
	assert.Equal(t, types.StateActive, cfg.State)
	assert.Equal(t, types.LastUpdateStatusSuccessful, cfg.LastUpdateStatus)
	assert.Equal(t, int64(len(zip1)), cfg.CodeSize)
	assert.Equal(t, *created.CodeSha256, *cfg.CodeSha256)
	assert.Equal(t, "$LATEST", *cfg.Version)
	assert.Equal(t, types.PackageTypeZip, cfg.PackageType)
	assert.Equal(t, []types.Architecture{types.ArchitectureX8664}, cfg.Architectures)
	assert.Equal(t, int32(256), *cfg.MemorySize)
	assert.Equal(t, int32(3), *cfg.Timeout)
	assert.Equal(t, types.RuntimeProvidedal2023, cfg.Runtime)
	assert.Equal(t, "bootstrap", *cfg.Handler)
	assert.Equal(t, testRole, *cfg.Role)
	assert.Equal(t, map[string]string{"GREETING": "hi"}, cfg.Environment.Variables)
	assert.Regexp(t, uuidRE, *cfg.RevisionId)
	_, err = time.Parse("2006-01-02T15:04:05.000-0700", *cfg.LastModified)
	assert.NoError(t, err, "LastModified %q", *cfg.LastModified)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$`, *cfg.LastModified)

	// Cold, then warm on the same process.
	out, log := invoke(t, c, "life", `{"op":"echo","n":1}`)
	assert.Equal(t, int32(200), out.StatusCode)
	assert.Equal(t, `{"op":"echo","n":1}`, string(out.Payload))
	assert.Nil(t, out.FunctionError)
	assert.Equal(t, "$LATEST", *out.ExecutedVersion)
	r := parseReport(t, log)
	assert.True(t, r.cold, "the first invoke reports Init Duration:\n%s", log)
	assert.Positive(t, r.initDuration)
	assert.Equal(t, 256, r.memorySize)
	assert.Positive(t, r.maxUsed)
	ls := lines(log)
	assert.Equal(t, "START RequestId: "+r.requestID+" Version: $LATEST", ls[0])
	assert.Equal(t, "END RequestId: "+r.requestID, ls[len(ls)-2])

	pid1, r1 := pidOf(t, c, "life")
	assert.False(t, r1.cold, "a warm invoke has no Init Duration")
	pid2, r2 := pidOf(t, c, "life")
	assert.Equal(t, pid1, pid2, "the environment is reused")
	assert.False(t, r2.cold)
	assert.Equal(t, 1, s.Environments("life"))

	// New code: the next invoke runs it in a new environment.
	rev := *cfg.RevisionId
	up, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("life"), ZipFile: codeZip(t, "v2")})
	require.NoError(t, err)
	assert.Equal(t, types.LastUpdateStatusInProgress, up.LastUpdateStatus)
	assert.NotEqual(t, rev, *up.RevisionId, "RevisionId changes on update")
	waitUpdated(t, c, "life")
	out, log = invoke(t, c, "life", `{"op":"version"}`)
	assert.Equal(t, `"v2"`, string(out.Payload))
	assert.True(t, parseReport(t, log).cold, "updated code starts a new environment")
	pid3, _ := pidOf(t, c, "life")
	assert.NotEqual(t, pid1, pid3)
	assert.Eventually(t, func() bool { return s.Environments("life") == 1 }, 5*time.Second, 10*time.Millisecond,
		"the old environment is retired")

	// New configuration, also in a new environment.
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("life"),
		Environment:  &types.Environment{Variables: map[string]string{"GREETING": "hello"}},
		MemorySize:   aws.Int32(512),
	})
	require.NoError(t, err)
	waitUpdated(t, c, "life")
	out, log = invoke(t, c, "life", `{"op":"env"}`)
	var env map[string]string
	require.NoError(t, json.Unmarshal(out.Payload, &env))
	assert.Equal(t, "hello", env["GREETING"])
	assert.Equal(t, "512", env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
	assert.Equal(t, 512, parseReport(t, log).memorySize)

	gc, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("life")})
	require.NoError(t, err)
	assert.Equal(t, int32(512), *gc.MemorySize)
	assert.Equal(t, types.LastUpdateStatusSuccessful, gc.LastUpdateStatus)

	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("life")})
	require.NoError(t, err)
	assert.Equal(t, 0, s.Environments("life"), "delete kills the environments")
	assertProcessGone(t, pid3)
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("life")})
	var nf *types.ResourceNotFoundException
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "Function not found: arn:aws:lambda:us-east-1:123456789012:function:life", nf.ErrorMessage())
}

func assertProcessGone(t *testing.T, pid int) {
	t.Helper()
	assert.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }, 5*time.Second, 10*time.Millisecond,
		"process %d is gone", pid)
}

// FunctionName may be a name, name:$LATEST, a partial or a full ARN, URL-encoded.
func TestLambdaLocal_FunctionNameForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := Start(t, Config{})
	c := newClient(url)
	createActive(t, c, "named", fnOpts{})
	for _, ref := range []string{
		"named", "named:$LATEST", "123456789012:function:named",
		"arn:aws:lambda:us-east-1:123456789012:function:named",
		"arn:aws:lambda:us-east-1:123456789012:function:named:$LATEST",
	} {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(ref), Payload: []byte(`{"op":"context"}`)})
		require.NoError(t, err, ref)
		var got map[string]any
		require.NoError(t, json.Unmarshal(out.Payload, &got))
		want := "arn:aws:lambda:us-east-1:123456789012:function:named"
		if strings.HasSuffix(ref, ":$LATEST") {
			want += ":$LATEST"
		}
		assert.Equal(t, want, got["function_arn"], "Lambda-Runtime-Invoked-Function-Arn for %s", ref)
	}
	for _, ref := range []string{"named:7", "arn:aws:lambda:eu-west-1:123456789012:function:named", "other"} {
		_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(ref)})
		var nf *types.ResourceNotFoundException
		assert.ErrorAs(t, err, &nf, ref)
	}
	_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("named"), Qualifier: aws.String("$LATEST")})
	assert.NoError(t, err)
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("named"), Qualifier: aws.String("1")})
	var nf *types.ResourceNotFoundException
	assert.ErrorAs(t, err, &nf)
}

// Every validation of spec 3.2 answers InvalidParameterValueException.
func TestLambdaLocal_CreateFunction_Invalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := Start(t, Config{})
	c := newClient(url)
	big := map[string]string{}
	for i := range 100 {
		big[fmt.Sprintf("KEY_%03d", i)] = strings.Repeat("v", 40)
	}
	good := func() *lambda.CreateFunctionInput { return createInput("fn", fnOpts{zip: smallZip(t)}) }
	for _, tc := range []struct {
		name   string
		modify func(*lambda.CreateFunctionInput)
		msg    string
	}{
		{"name pattern", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("bad name") }, "functionName"},
		{"name too long", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String(strings.Repeat("a", 65)) }, "functionName"},
		{"name with qualifier", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("fn:$LATEST") }, "qualifier"},
		{"role", func(in *lambda.CreateFunctionInput) { in.Role = aws.String("admin") }, "role"},
		{"runtime", func(in *lambda.CreateFunctionInput) { in.Runtime = types.RuntimeNodejs20x }, "nodejs20.x"},
		{"no runtime", func(in *lambda.CreateFunctionInput) { in.Runtime = "" }, "Runtime is required"},
		{"no handler", func(in *lambda.CreateFunctionInput) { in.Handler = nil }, "Handler is required"},
		{"handler space", func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("a b") }, "handler"},
		{"memory low", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(127) }, "greater than or equal to 128"},
		{"memory high", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(10241) }, "less than or equal to 10240"},
		{"timeout zero", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(0) }, "timeout"},
		{"timeout high", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(901) }, "less than or equal to 900"},
		{"two architectures", func(in *lambda.CreateFunctionInput) {
			in.Architectures = []types.Architecture{types.ArchitectureX8664, types.ArchitectureArm64}
		}, "architectures"},
		{"architecture", func(in *lambda.CreateFunctionInput) { in.Architectures = []types.Architecture{"mips"} }, "architectures"},
		{"env key", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"1BAD": "x"}}
		}, "environment.variables"},
		{"reserved env", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"AWS_REGION": "x", "AWS_LAMBDA_FUNCTION_NAME": "y"}}
		}, "Reserved keys used in this request: AWS_LAMBDA_FUNCTION_NAME, AWS_REGION"},
		{"env over 4 KB", func(in *lambda.CreateFunctionInput) { in.Environment = &types.Environment{Variables: big} }, "exceeded the 4KB limit"},
		{"not a zip", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = []byte("not a zip") }, "Could not unzip uploaded file"},
		{"zip slip", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = makeZip(t, map[string]zipEntry{"../evil": {[]byte("x"), 0o644}})
		}, "Could not unzip uploaded file"},
		{"s3 code", func(in *lambda.CreateFunctionInput) {
			in.Code = &types.FunctionCode{S3Bucket: aws.String("b"), S3Key: aws.String("k")}
		}, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := good()
			tc.modify(in)
			_, err := c.CreateFunction(ctx, in)
			var ipv *types.InvalidParameterValueException
			require.ErrorAs(t, err, &ipv)
			assert.Contains(t, ipv.ErrorMessage(), tc.msg)
		})
	}
	// Nothing was created.
	_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("fn")})
	var nf *types.ResourceNotFoundException
	assert.ErrorAs(t, err, &nf)
}

// Pending and InProgress refuse what the service refuses (spec 3.4), and
// the SDK's waiters see them through.
func TestLambdaLocal_StateMachine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gate := make(chan struct{})
	_, url := Start(t, Config{beforeApply: func(string) { <-gate }})
	c := newClient(url)

	_, err := c.CreateFunction(ctx, createInput("slow", fnOpts{zip: codeZip(t, "v1")}))
	require.NoError(t, err)
	var conflict *types.ResourceConflictException
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("slow")})
	require.ErrorAs(t, err, &conflict, "invoke while Pending")
	assert.Equal(t, "The operation cannot be performed at this time. The function is currently in the following state: Pending", conflict.ErrorMessage())
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("slow"), Timeout: aws.Int32(5)})
	require.ErrorAs(t, err, &conflict, "update while Pending")
	_, err = c.CreateFunction(ctx, createInput("slow", fnOpts{zip: codeZip(t, "v1")}))
	require.ErrorAs(t, err, &conflict, "name taken")
	assert.Contains(t, conflict.ErrorMessage(), "Function already exist: slow")

	// The waiter polls through Pending.
	waited := make(chan error, 1)
	go func() {
		w := lambda.NewFunctionActiveV2Waiter(c, func(o *lambda.FunctionActiveV2WaiterOptions) {
			o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
		})
		waited <- w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("slow")}, 30*time.Second)
	}()
	time.Sleep(100 * time.Millisecond)
	gate <- struct{}{}
	require.NoError(t, <-waited)

	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("slow"), Timeout: aws.Int32(5)})
	require.NoError(t, err)
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("slow"), ZipFile: codeZip(t, "v2")})
	require.ErrorAs(t, err, &conflict, "update while InProgress")
	assert.Equal(t, "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:us-east-1:123456789012:function:slow", conflict.ErrorMessage())
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("slow"), Payload: []byte(`{"op":"context"}`)})
	require.NoError(t, err, "invokes run the old configuration during an update")
	var got struct {
		DeadlineMs int64 `json:"deadline_ms"`
	}
	require.NoError(t, json.Unmarshal(out.Payload, &got))
	assert.Less(t, got.DeadlineMs, time.Now().Add(3500*time.Millisecond).UnixMilli(), "still the 3 s timeout")

	updated := make(chan error, 1)
	go func() {
		w := lambda.NewFunctionUpdatedV2Waiter(c, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
			o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
		})
		updated <- w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("slow")}, 30*time.Second)
	}()
	time.Sleep(100 * time.Millisecond)
	gate <- struct{}{}
	require.NoError(t, <-updated)

	// A stale RevisionId is refused.
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("slow"), RevisionId: aws.String("00000000-0000-4000-8000-000000000000")})
	var pre *types.PreconditionFailedException
	assert.ErrorAs(t, err, &pre)
}

// A failed unpack leaves the function Failed, and the waiter says so.
func TestLambdaLocal_CreateFunction_UnpackFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := Start(t, Config{})
	c := newClient(url)
	// Two entries with one name: readable, but not unpackable.
	dup := makeZip(t, map[string]zipEntry{"a": {[]byte("1"), 0o644}, "./a": {[]byte("2"), 0o644}})
	_, err := c.CreateFunction(ctx, createInput("dup", fnOpts{zip: dup}))
	require.NoError(t, err)
	w := lambda.NewFunctionActiveV2Waiter(c, func(o *lambda.FunctionActiveV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	err = w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("dup")}, 10*time.Second)
	require.Error(t, err)
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("dup")})
	require.NoError(t, err)
	assert.Equal(t, types.StateFailed, got.Configuration.State)
	assert.Equal(t, types.StateReasonCodeInvalidZipFileException, got.Configuration.StateReasonCode)
}

// Bodies over the documented caps are 413 RequestEntityTooLargeException.
func TestLambdaLocal_RequestTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := Start(t, Config{})
	c := newClient(url)
	createActive(t, c, "big", fnOpts{})

	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("big"), Payload: []byte(`"` + strings.Repeat("x", maxInvokeBytes-1) + `"`)})
	var api smithy.APIError
	require.ErrorAs(t, err, &api)
	assert.Equal(t, "RequestEntityTooLargeException", api.ErrorCode())
	assert.Equal(t, "Request must be smaller than 6291456 bytes for the InvokeFunction operation", api.ErrorMessage())

	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("big"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`"` + strings.Repeat("x", maxEventBytes) + `"`)})
	require.ErrorAs(t, err, &api)
	assert.Equal(t, "RequestEntityTooLargeException", api.ErrorCode())
	assert.Equal(t, fmt.Sprintf("%d byte payload is too large for the Event invocation type (limit 1048576 bytes)", maxEventBytes+2), api.ErrorMessage())

	// CreateFunction's cap applies to the JSON body: raw HTTP, streamed.
	body := io.MultiReader(strings.NewReader(`{"FunctionName":"huge","Code":{"ZipFile":"`),
		io.LimitReader(zeros{}, maxCodeRequestBytes), strings.NewReader(`"}}`))
	req, err := http.NewRequest(http.MethodPost, url+"/2015-03-31/functions", body)
	require.NoError(t, err)
	req.ContentLength = int64(len(`{"FunctionName":"huge","Code":{"ZipFile":"`)+len(`"}}`)) + maxCodeRequestBytes
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "RequestEntityTooLargeException", resp.Header.Get("X-Amzn-ErrorType"))
	b, _ := io.ReadAll(resp.Body)
	assert.JSONEq(t, `{"Type":"User","message":"Request must be smaller than 69905067 bytes for the CreateFunction operation"}`, string(b))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}

// Service errors carry the code in X-Amzn-ErrorType and a JSON body.
func TestLambdaLocal_ErrorWireFormat(t *testing.T) {
	t.Parallel()
	_, url := Start(t, Config{})
	resp, err := http.Get(url + "/2015-03-31/functions/nope")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "ResourceNotFoundException", resp.Header.Get("X-Amzn-ErrorType"))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.NotEmpty(t, resp.Header.Get("X-Amzn-Requestid"))
	b, _ := io.ReadAll(resp.Body)
	assert.JSONEq(t, `{"Type":"User","message":"Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"}`, string(b))
}

func TestLambdaLocal_ConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Dir: "d"}, true},
		{"no dir", Config{}, false},
		{"bad region", Config{Dir: "d", Region: "moon"}, false},
		{"bad account", Config{Dir: "d", AccountID: "12"}, false},
		{"negative concurrency", Config{Dir: "d", MaxConcurrency: -1}, false},
		{"env sets a runtime variable", Config{Dir: "d", Env: map[string]string{"AWS_LAMBDA_RUNTIME_API": "x"}}, false},
		{"env with credentials", Config{Dir: "d", Env: map[string]string{"AWS_ACCESS_KEY_ID": "x"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalidConfig)
			}
		})
	}
}

// Close kills every environment and leaves no process behind.
func TestLambdaLocal_Close(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Dir: t.TempDir()})
	require.NoError(t, err)
	hs := &http.Server{Handler: s}
	ln := listen(t)
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	c := newClient("http://" + ln.Addr().String())
	createActive(t, c, "closing", fnOpts{})
	pid, _ := pidOf(t, c, "closing")

	// An invoke in flight when Close comes is told the service is going.
	errc := make(chan error, 1)
	go func() {
		_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("closing"), Payload: []byte(`{"op":"sleep","ms":2000}`)},
			noRetries)
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, s.Close(context.Background()))
	assert.Equal(t, 0, s.Environments("closing"))
	assertProcessGone(t, pid)
	var api smithy.APIError
	require.ErrorAs(t, <-errc, &api)
	assert.Equal(t, "ServiceException", api.ErrorCode())
}
