package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var lambdaLocalUp = regexp.MustCompile(`msg="ferry lambda-local listening" url=(http://\S+)`)

func TestLambdaLocal_Usage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		has  string
	}{
		{"bad env", []string{"--env", "NOEQUALS"}, exitUsage, "--env"},
		{"bad region", []string{"--region", "moon"}, exitUsage, "Region"},
		{"reserved env", []string{"--env", "AWS_LAMBDA_RUNTIME_API=x"}, exitUsage, "AWS_LAMBDA_RUNTIME_API"},
		{"bad log level", []string{"--log-level", "loud"}, exitUsage, "--log-level"},
		{"bad listen", []string{"--listen", "nope:xx"}, exitHost, "--listen"},
		{"extra argument", []string{"extra"}, exitUsage, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ferry(t, "", append([]string{"host", "lambda-local", "--dir", dir}, tc.args...)...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.has)
		})
	}
	r := ferry(t, "", "host", "lambda-local", "--help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "Examples:")
	assert.Contains(t, r.stdout, "AWS_ENDPOINT_URL_LAMBDA")
}

// A real `ferry host lambda-local` process: the AWS SDK creates a function
// from a real aws-lambda-go bootstrap and invokes it; SIGTERM stops the
// server and the function's process with it.
func TestLambdaLocal_Process(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	out, err := exec.Command("go", "build", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", bin,
		"../../hosts/lambda/locallambda/testdata/bootstrap").CombinedOutput()
	require.NoError(t, err, "%s", out)
	code, err := os.ReadFile(bin)
	require.NoError(t, err)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	require.NoError(t, err)
	_, err = w.Write(code)
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	p := startFerry(t, lambdaLocalUp, nil, "host", "lambda-local", "--listen", "127.0.0.1:0", "--dir", dir)
	c := lambda.New(lambda.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(p.URL),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("hello"), Role: aws.String("arn:aws:iam::123456789012:role/local"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Code: &types.FunctionCode{ZipFile: zb.Bytes()},
	})
	require.NoError(t, err)
	waiter := lambda.NewFunctionActiveV2Waiter(c, func(o *lambda.FunctionActiveV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	require.NoError(t, waiter.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")}, 30*time.Second))

	res, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{"op":"echo","name":"ferry"}`), LogType: types.LogTypeTail})
	require.NoError(t, err)
	assert.Nil(t, res.FunctionError)
	assert.JSONEq(t, `{"op":"echo","name":"ferry"}`, string(res.Payload))
	tail, err := base64.StdEncoding.DecodeString(aws.ToString(res.LogResult))
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^REPORT RequestId: \S+\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms\t$`, string(tail))

	res, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{"op":"pid"}`)})
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(res.Payload))
	require.NoError(t, err, "%s", res.Payload)

	require.NoError(t, p.stop(t), "a clean shutdown exits 0\n%s", p.stderr)
	stderr := p.stderr.String()
	assert.Contains(t, stderr, "ferry lambda-local stopped")
	assert.Contains(t, stderr, "[hello] START RequestId: ", "function logs go to stderr")
	assert.True(t, errors.Is(syscall.Kill(pid, 0), syscall.ESRCH), "the function's process is gone")
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, left, "the work directory is removed")
}

// --json prints one line a script can read the endpoint from.
func TestLambdaLocal_JSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	cmd := exec.Command(ferryBinary(t), "host", "lambda-local", "--listen", "127.0.0.1:0", "--dir", t.TempDir(), "--json", "--region", "eu-west-1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill() }()
	var info lambdaLocalInfo
	require.NoError(t, json.NewDecoder(stdout).Decode(&info))
	assert.Regexp(t, `^http://127\.0\.0\.1:\d+$`, info.Endpoint)
	assert.Equal(t, "eu-west-1", info.Region)
	assert.Equal(t, info.Endpoint, info.Env["AWS_ENDPOINT_URL_LAMBDA"])

	resp, err := http.Get(info.Endpoint + "/2015-03-31/functions/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"Functions":[]}`, string(b))

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.NoError(t, cmd.Wait(), "SIGTERM is a clean exit")
}
