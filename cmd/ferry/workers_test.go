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

	"github.com/ferryrun/ferry/hosts/workers/cflocal"
)

// End to end: `ferry deploy --provider cloudflare-workers` uploads the
// forced heavy job's Worker to a local Cloudflare (the Workers API, with
// every upload running in a real workerd), and `ferry serve` routes that
// job's calls to it while the light job stays local.
func TestDeployWorkers_ThenServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	cf := cflocal.Start(t, cflocal.Options{Log: func(string) {}})
	bundleDir := e2eBundle(t, "cloudflare_workers")
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.json")
	var out, errOut bytes.Buffer
	code := doMain(context.Background(), []string{"cloud", "--policy", pol, "policy", "--serverless", "true",
		"--faas-provider", "cloudflare-workers", "--faas-cf-account", cf.API.AccountID, "--faas-add"}, nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())

	env := []string{envCFToken + "=" + cf.API.Token, envCFAPI + "=" + cf.API.URL, envWorkersEdge + "=" + cf.Edge,
		"FERRY_HOST_TOKEN=e2e-worker-token"}
	cmd := exec.Command(ferryBinary(t), "deploy", "--provider", "cloudflare-workers", "--policy", pol, "--json", bundleDir)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	var res struct {
		Deployments []deployed `json:"deployments"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), stdout.String())
	byJob := map[string]deployed{}
	for _, d := range res.Deployments {
		byJob[d.Job] = d
	}
	require.Equal(t, "deployed", byJob["digest"].Status, stderr.String())
	assert.Contains(t, stderr.String(), "upload ferry-digest", "progress shows each step")
	assert.Contains(t, stderr.String(), "enable ferry-digest on workers.dev")
	s, ok := cf.API.Script("ferry-digest")
	require.True(t, ok, "the Worker was uploaded")
	assert.Equal(t, "e2e-worker-token", s.Secrets["FERRY_TOKEN"])

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
		got, where := call("digest", fmt.Sprintf("payload %d", i))
		assert.Equal(t, "cloudflare-workers", where, "the forced heavy job runs on Workers")
		assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), got)
	}
	_, where := call("echo", "hi")
	assert.Equal(t, "local", where)
}

// What bad input to a Workers deploy gets: a usage error naming the fix,
// before anything is sent.
func TestDeployWorkers_BadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a bundle")
	}
	bundleDir := e2eBundle(t, "cloudflare_workers")
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.json")
	var out, errOut bytes.Buffer
	code := doMain(context.Background(), []string{"cloud", "--policy", pol, "policy", "--serverless", "true",
		"--faas-provider", "cloudflare-workers", "--faas-cf-account", strings.Repeat("a", 32), "--faas-add"}, nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	for name, tc := range map[string]struct {
		env  []string
		want string
	}{
		"no api token": {env: []string{"FERRY_HOST_TOKEN=x"}, want: envCFToken},
		"no bearer":    {env: []string{envCFToken + "=x"}, want: "bearer token"},
		"bad edge":     {env: []string{envCFToken + "=x", "FERRY_HOST_TOKEN=x", envWorkersEdge + "=nope"}, want: envWorkersEdge},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(ferryBinary(t), "deploy", "--provider", "cloudflare-workers", "--policy", pol, bundleDir)
			cmd.Env = append(filterEnv(os.Environ(), envCFToken, "FERRY_HOST_TOKEN", envWorkersEdge), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			require.Error(t, err)
			assert.Equal(t, exitUsage, cmd.ProcessState.ExitCode(), stderr.String())
			assert.Contains(t, stderr.String(), tc.want)
		})
	}
}

func filterEnv(env []string, drop ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, d := range drop {
			keep = keep && !strings.HasPrefix(kv, d+"=")
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

var workerdListeningRE = regexp.MustCompile(`ferry host workerd listening url=(http://\S+)`)

// ferry host workerd serves a bundle's jobs in a local workerd, behind one
// address, with the bearer token it was given.
func TestHostWorkerd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bundleDir := e2eBundle(t, "cloudflare_workers")
	dir := t.TempDir()
	p := startFerry(t, workerdListeningRE, []string{"FERRY_HOST_TOKEN=local-token"}, "host", "workerd",
		"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), bundleDir)
	call := func(job, token string, in []byte) (int, string) {
		nums := make([]int, len(in)) // bytes as numbers, not base64
		for i, b := range in {
			nums[i] = int(b)
		}
		args, _ := json.Marshal(nums)
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/functions/"+job+"/invoke",
			strings.NewReader(`{"job_id":0,"args":`+string(args)+`}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var r struct {
			Result []int `json:"result"`
		}
		body, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(body, &r)
		out := make([]byte, len(r.Result))
		for i, b := range r.Result {
			out[i] = byte(b)
		}
		return resp.StatusCode, string(out)
	}
	st, out := call("echo", "local-token", []byte("hi workerd"))
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "hi workerd", out)
	st, out = call("digest", "local-token", []byte("abc"))
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", out)
	st, _ = call("echo", "wrong", []byte("x"))
	assert.Equal(t, http.StatusUnauthorized, st)
	st, _ = call("nope", "local-token", []byte("x"))
	assert.Equal(t, http.StatusNotFound, st)

	// --print-config writes what workerd runs.
	var stdout, stderr bytes.Buffer
	code := doMain(context.Background(), []string{"host", "workerd", "--print-config", "--config-dir", filepath.Join(dir, "cfg"), bundleDir}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	cfg, err := os.ReadFile(filepath.Join(dir, "cfg", "config.capnp"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), `using Workerd = import "/workerd/workerd.capnp";`)
	assert.Contains(t, string(cfg), `"w-ferry-digest"`)
}
