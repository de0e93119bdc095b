package lambda_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/hosttest"
	"github.com/ferryrun/ferry/hosts/lambda"
	"github.com/ferryrun/ferry/hosts/lambda/lambdatest"
	"github.com/ferryrun/ferry/hosts/lambda/locallambda"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

const testRole = "arn:aws:iam::123456789012:role/ferry-test"

func awsConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDFERRYTEST", "secret", "")}
}

type setup struct {
	server *locallambda.Server
	url    string
	host   *lambda.Host
}

func newSetup(t *testing.T, tune func(c *lambda.Config, l *locallambda.Config)) *setup {
	t.Helper()
	lc := locallambda.Config{}
	hc := lambda.Config{
		Region: "us-east-1", AWS: awsConfig(), Role: testRole, Arch: lambdatest.NativeArch(), Bootstrap: lambdatest.Bootstrap(t, ""),
		WaitMinDelay: 10 * time.Millisecond, WaitMax: time.Minute,
	}
	if tune != nil {
		tune(&hc, &lc)
	}
	srv, url := locallambda.Start(t, lc)
	hc.BaseEndpoint = url
	h, err := lambda.New(hc)
	require.NoError(t, err)
	return &setup{server: srv, url: url, host: h}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func wat(t *testing.T, name string) []byte {
	t.Helper()
	b, err := examples.WAT(name)
	require.NoError(t, err)
	return b
}

func deploy(t *testing.T, h host.Host, name string, wasm []byte, lim host.Limits) *host.Deployment {
	t.Helper()
	d, err := h.Deploy(ctx(t), host.Job{Name: name, Module: wasm, Digest: modstore.Digest(wasm), Limits: lim})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Remove(context.Background(), d) })
	return d
}

// The hosts conformance suite, on the Lambda host against the local
// Lambda running the real bootstrap.
func TestConformance(t *testing.T) {
	hosttest.Run(t, func(t *testing.T) host.Host { return newSetup(t, nil).host }, hosttest.Options{Concurrency: 16})
}

// A cold call reports Init Duration; the next call reuses the environment.
func TestInvoke_ColdThenWarm(t *testing.T) {
	s := newSetup(t, nil)
	d := deploy(t, s.host, "echo", wat(t, "echo"), host.Limits{})
	assert.Equal(t, "ferry-echo", d.ID)
	assert.True(t, strings.HasPrefix(d.Endpoint, "arn:aws:lambda:us-east-1:"), d.Endpoint)
	first, err := s.host.Invoke(ctx(t), d, host.Request{Input: []byte("one")})
	require.NoError(t, err)
	assert.True(t, first.Cold, "the first call starts an environment")
	assert.GreaterOrEqual(t, first.Billed, first.Duration)
	// Max Memory Used is the bootstrap process's peak: the Go runtime,
	// wazero and the instance, well over the guest's linear memory.
	assert.Greater(t, first.EnvironmentMemoryBytes, first.MemoryUsedBytes)
	second, err := s.host.Invoke(ctx(t), d, host.Request{Input: []byte("two")})
	require.NoError(t, err)
	assert.False(t, second.Cold, "the second call is warm")
	assert.Equal(t, "two", string(second.Output))
	assert.Equal(t, 1, s.server.Environments("ferry-echo"))
}

// Deploying the same job twice uploads nothing; a new limit updates only
// the configuration.
func TestDeploy_Unchanged(t *testing.T) {
	s := newSetup(t, nil)
	wasm := wat(t, "echo")
	d := deploy(t, s.host, "same", wasm, host.Limits{})
	rev := func() string {
		out, err := s.host.Client().GetFunction(ctx(t), &awslambda.GetFunctionInput{FunctionName: aws.String(d.ID)})
		require.NoError(t, err)
		return aws.ToString(out.Configuration.RevisionId)
	}
	before := rev()
	var steps []string
	pctx := lambda.WithProgress(ctx(t), func(s string) { steps = append(steps, s) })
	_, err := s.host.Deploy(pctx, host.Job{Name: "same", Module: wasm})
	require.NoError(t, err)
	assert.Empty(t, steps)
	assert.Equal(t, before, rev(), "an unchanged deploy changes nothing")

	_, err = s.host.Deploy(pctx, host.Job{Name: "same", Module: wasm, Limits: host.Limits{MemoryMB: 256}})
	require.NoError(t, err)
	// The limits travel in the package's manifest and in the function's
	// configuration, so both change.
	assert.Equal(t, []string{"update code of ferry-same", "wait for the code update",
		"update configuration of ferry-same", "wait for the configuration update"}, steps)
	out, err := s.host.Client().GetFunction(ctx(t), &awslambda.GetFunctionInput{FunctionName: aws.String(d.ID)})
	require.NoError(t, err)
	assert.EqualValues(t, 256+lambda.DefaultOverheadMB, aws.ToInt32(out.Configuration.MemorySize))
}

func TestDeploy_Refused(t *testing.T) {
	s := newSetup(t, func(c *lambda.Config, _ *locallambda.Config) { c.Role = "" })
	_, err := s.host.Deploy(ctx(t), host.Job{Name: "echo", Module: wat(t, "echo")})
	require.ErrorIs(t, err, host.ErrHost)
	assert.ErrorContains(t, err, "execution role")

	s = newSetup(t, nil)
	counter, err := examples.BuildGo(ctx(t), "counter", examples.Reactor)
	require.NoError(t, err)
	_, err = s.host.Deploy(ctx(t), host.Job{Name: "counter", Module: counter})
	assert.ErrorContains(t, err, "no state store", "a stateful job needs a store on Lambda")

	_, err = lambda.New(lambda.Config{Region: "us-east-1", Arch: "sparc"})
	assert.ErrorContains(t, err, "arch")
}

// A bootstrap that dies at init, one that reports its init failure, and a
// function that runs past Lambda's own timeout come back as the right
// kinds.
func TestInvoke_Failures(t *testing.T) {
	t.Run("bootstrap exits at init", func(t *testing.T) {
		s := newSetup(t, func(c *lambda.Config, _ *locallambda.Config) {
			c.Bootstrap = []byte("#!/bin/sh\necho 'broken bootstrap' >&2\nexit 3\n")
		})
		d := deploy(t, s.host, "echo", wat(t, "echo"), host.Limits{})
		_, err := s.host.Invoke(ctx(t), d, host.Request{Input: []byte("x")})
		require.ErrorIs(t, err, host.ErrHost)
		var fe *lambda.FunctionError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, "Runtime.ExitError", fe.Type)
		assert.False(t, host.IsJobFault(err))
	})
	t.Run("bootstrap reports init error", func(t *testing.T) {
		s := newSetup(t, func(c *lambda.Config, _ *locallambda.Config) {
			c.State = "dynamodb://no-such-table?region=us-east-1&endpoint=http://127.0.0.1:1"
		})
		counter, err := examples.BuildGo(ctx(t), "counter", examples.Reactor)
		require.NoError(t, err)
		d := deploy(t, s.host, "counter", counter, host.Limits{})
		_, err = s.host.Invoke(ctx(t), d, host.Request{Input: []byte("1")})
		require.ErrorIs(t, err, host.ErrHost)
		var fe *lambda.FunctionError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, "Ferry.InitError", fe.Type)
		assert.Contains(t, fe.Message, "state store")
	})
	t.Run("lambda timeout", func(t *testing.T) {
		s := newSetup(t, nil)
		d := deploy(t, s.host, "loop", wat(t, "loop"), host.Limits{Timeout: 30 * time.Second})
		// Lambda's own limit, below the job's: the bootstrap stops the job
		// just before Lambda's deadline, so the environment survives.
		_, err := s.host.Client().UpdateFunctionConfiguration(ctx(t), &awslambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(d.ID), Timeout: aws.Int32(1)})
		require.NoError(t, err)
		require.Eventually(t, func() bool { _, err := s.host.Health(ctx(t), d); return err == nil }, 10*time.Second, 20*time.Millisecond)
		_, err = s.host.Invoke(ctx(t), d, host.Request{})
		require.ErrorIs(t, err, host.ErrTimeout)
		var fe *lambda.FunctionError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, "Ferry.Timeout", fe.Type, "stopped by the bootstrap, not killed by Lambda")
		assert.Equal(t, 1, s.server.Environments(d.ID), "the environment stays warm")
	})
	t.Run("oversized payload", func(t *testing.T) {
		s := newSetup(t, nil)
		d := deploy(t, s.host, "echo", wat(t, "echo"), host.Limits{})
		_, err := s.host.Invoke(ctx(t), d, host.Request{Input: make([]byte, lambda.MaxPayloadBytes)})
		assert.ErrorIs(t, err, host.ErrLimit)
	})
}

// Health and Warm.
func TestHealthAndWarm(t *testing.T) {
	s := newSetup(t, nil)
	d := deploy(t, s.host, "echo", wat(t, "echo"), host.Limits{})
	hl, err := s.host.Health(ctx(t), d)
	require.NoError(t, err)
	assert.True(t, hl.Healthy)
	n, err := s.host.Warm(ctx(t), d, 3)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.GreaterOrEqual(t, s.server.Environments(d.ID), 1)

	stale := *d
	stale.Digest = modstore.Digest([]byte("another module"))
	_, err = s.host.Health(ctx(t), &stale)
	assert.ErrorIs(t, err, host.ErrNotFound, "the function holds another module")
	_, err = s.host.Invoke(ctx(t), &stale, host.Request{})
	assert.ErrorIs(t, err, host.ErrNotFound)
}

// The bootstrap answers Tangle's own Lambda executor: {job_id, args} in,
// {result} out, and {} as a warm-up.
func TestTanglePayload(t *testing.T) {
	s := newSetup(t, nil)
	d := deploy(t, s.host, "echo", wat(t, "echo"), host.Limits{})
	out, err := s.host.Client().Invoke(ctx(t), &awslambda.InvokeInput{FunctionName: aws.String(d.ID), Payload: []byte(`{"job_id":3,"args":[104,105]}`)})
	require.NoError(t, err)
	require.Nil(t, out.FunctionError)
	var r struct {
		JobID  uint32 `json:"job_id"`
		Result []int  `json:"result"`
	}
	require.NoError(t, json.Unmarshal(out.Payload, &r))
	assert.Equal(t, []int{104, 105}, r.Result)
	out, err = s.host.Client().Invoke(ctx(t), &awslambda.InvokeInput{FunctionName: aws.String(d.ID), Payload: []byte(`{}`)})
	require.NoError(t, err)
	require.Nil(t, out.FunctionError)
	assert.Contains(t, string(out.Payload), `"warm":true`)
}

func TestFunctionName(t *testing.T) {
	h, err := lambda.New(lambda.Config{Region: "us-east-1"})
	require.NoError(t, err)
	assert.Equal(t, "ferry-square", h.FunctionName("square"))
	a, b := h.FunctionName("a.b"), h.FunctionName("a_b")
	assert.NotEqual(t, a, b, "names that had to change get a hash")
	long := h.FunctionName(strings.Repeat("x", 120))
	assert.LessOrEqual(t, len(long), 64)
	assert.Regexp(t, `^[A-Za-z0-9_-]+$`, a)
}
