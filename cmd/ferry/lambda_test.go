package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/build"
	"github.com/ferryrun/ferry/hosts/lambda/lambdatest"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

var lambdaLocalRE = regexp.MustCompile(`msg="ferry lambda-local listening" url=(http://\S+)`)

// lambdaBundle builds a blueprint with a heavy job (sha256 of its input,
// forced to serverless) and a light one that stays local.
func lambdaBundle(t *testing.T) string { return e2eBundle(t, "aws_lambda") }

// e2eBundle is lambdaBundle's blueprint for a serverless provider (as
// blueprint.toml names it).
func e2eBundle(t *testing.T, provider string) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	sha, err := examples.BuildGo(ctx, "sha256", examples.Reactor)
	require.NoError(t, err)
	echo, err := examples.WAT("echo")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sha256.wasm"), sha, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "echo.wasm"), echo, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blueprint.toml"), []byte(`[blueprint]
name = "lambda-e2e"

[blueprint.serverless]
providers = ["`+provider+`"]

[blueprint.jobs.digest]
source = "sha256.wasm"
inline_samples = ["a heavy job"]
force_serverless = true
timeout = 30

[blueprint.jobs.echo]
source = "echo.wasm"
inline_samples = ["hello"]
`), 0o644))
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	defer rt.Close(ctx)
	res, err := build.Build(ctx, dir, build.Options{Out: filepath.Join(dir, "out"), Runtime: rt, Runs: 1})
	require.NoError(t, err)
	return res.Bundle
}

// End to end: `ferry deploy --provider aws-lambda` creates the function on
// a local Lambda (`ferry host lambda-local`, a separate process running
// the real bootstrap), a second deploy changes nothing, and `ferry serve`
// routes the forced heavy job there while the light job's calls stay
// local.
func TestDeployLambda_ThenServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bundleDir := lambdaBundle(t)
	boot := lambdatest.File(t)
	dir := t.TempDir()
	ll := startFerry(t, lambdaLocalRE, nil, "host", "lambda-local", "--listen", "127.0.0.1:0", "--dir", filepath.Join(dir, "lambda"))

	arch := lambdatest.NativeArch()
	pol := filepath.Join(dir, "policy.json")
	var out, errOut bytes.Buffer
	code := doMain(context.Background(), []string{"cloud", "--policy", pol, "policy", "--serverless", "true",
		"--faas-provider", "aws-lambda", "--faas-aws-region", "us-east-1", "--faas-arch", arch,
		"--faas-aws-role", "arn:aws:iam::123456789012:role/ferry-e2e"}, nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())

	env := []string{"AWS_ENDPOINT_URL_LAMBDA=" + ll.URL, "AWS_ACCESS_KEY_ID=AKIDE2E", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", envLambdaBootstrap + "=" + boot}
	deploy := func() ([]deployed, string) {
		cmd := exec.Command(ferryBinary(t), "deploy", "--provider", "aws-lambda", "--policy", pol, "--json", bundleDir)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), stderr.String())
		var res struct {
			Deployments []deployed `json:"deployments"`
		}
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), stdout.String())
		return res.Deployments, stderr.String()
	}
	first, progress := deploy()
	byJob := map[string]deployed{}
	for _, d := range first {
		byJob[d.Job] = d
	}
	require.Equal(t, "deployed", byJob["digest"].Status, progress)
	assert.Equal(t, "ferry-digest", byJob["digest"].ID)
	// The light job may run on Lambda too (the plan allows it), so it is
	// deployed; the router keeps its calls here, where they are cheaper.
	assert.Equal(t, "deployed", byJob["echo"].Status)
	assert.Contains(t, progress, "create function ferry-digest", "progress shows each step")
	assert.Contains(t, progress, "wait until ferry-digest is active")
	again, _ := deploy()
	for _, d := range again {
		assert.Equal(t, "unchanged", d.Status, "a second deploy uploads nothing: %+v", d)
	}

	srv := startFerry(t, serveListeningRE, env, "serve", "--bundle", bundleDir, "--policy", pol, "--listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "data"), "--state", "memory", "--cache-dir", filepath.Join(dir, "cache"))
	hc := &http.Client{Timeout: time.Minute}
	call := func(job, in string) (string, string) {
		resp, err := hc.Post(srv.URL+"/v1/jobs/"+job+"/invoke", "application/octet-stream", strings.NewReader(in))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		return string(body), resp.Header.Get("X-Ferry-Ran-On")
	}
	for i := range 3 {
		in := fmt.Sprintf("payload %d", i)
		got, where := call("digest", in)
		assert.Equal(t, "aws-lambda/us-east-1", where, "the forced heavy job runs on Lambda")
		assert.Len(t, got, 64, "a hex sha256: %q", got)
	}
	_, where := call("echo", "hi")
	assert.Equal(t, "local", where)
}

// What bad input to ferry deploy gets: a usage error that says what to do,
// before anything is sent.
func TestDeploy_BadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a bundle")
	}
	bundleDir := lambdaBundle(t)
	dir := t.TempDir()
	policy := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		var out, errOut bytes.Buffer
		code := doMain(context.Background(), append([]string{"cloud", "--policy", p, "policy"}, args...), nil, &out, &errOut)
		require.Equal(t, 0, code, errOut.String())
		return p
	}
	noRole := policy("norole.json", "--serverless", "true", "--faas-provider", "aws-lambda", "--faas-aws-region", "us-east-1")
	off := policy("off.json", "--serverless", "false", "--faas-provider", "aws-lambda", "--faas-aws-role", "arn:aws:iam::123456789012:role/r")
	withRole := policy("role.json", "--serverless", "true", "--faas-provider", "aws-lambda", "--faas-aws-role", "arn:aws:iam::123456789012:role/r")
	t.Setenv(envLambdaBootstrap, "")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no provider", []string{"deploy", "--policy", withRole, bundleDir}, exitUsage, "--provider is required"},
		{"unknown provider", []string{"deploy", "--policy", withRole, "--provider", "aws-lambda/eu-west-1", bundleDir}, exitUsage, "no such provider"},
		{"serverless off", []string{"deploy", "--policy", off, "--provider", "aws-lambda", bundleDir}, exitUsage, "serverless is off"},
		{"no role", []string{"deploy", "--policy", noRole, "--provider", "aws-lambda", bundleDir}, exitUsage, "--faas-aws-role"},
		{"no bootstrap", []string{"deploy", "--policy", withRole, "--provider", "aws-lambda", "--lambda-bootstrap", filepath.Join(dir, "missing"), bundleDir}, exitUsage, "make lambda"},
		{"not a bootstrap", []string{"deploy", "--policy", withRole, "--provider", "aws-lambda", "--lambda-bootstrap", noRole, bundleDir}, exitUsage, "not a Linux executable"},
		{"unknown job", []string{"deploy", "--policy", withRole, "--provider", "aws-lambda", "--job", "nope", bundleDir}, exitUsage, "no such job"},
		{"no bundle there", []string{"deploy", "--policy", withRole, "--provider", "aws-lambda", dir}, exitHost, "open bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := doMain(context.Background(), tc.args, nil, &out, &errOut)
			assert.Equal(t, tc.code, code, errOut.String())
			assert.Contains(t, errOut.String(), tc.want)
		})
	}
}
