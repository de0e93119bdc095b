package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/build"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// echoBundle builds a one-job bundle (WAT echo) and returns its directory.
func echoBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := examples.WAT("echo")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "echo.wasm"), b, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blueprint.toml"), []byte(`[blueprint]
name = "serve-test"

[blueprint.jobs.echo]
source = "echo.wasm"
inline_samples = ["hi"]
`), 0o644))
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	defer rt.Close(ctx)
	res, err := build.Build(ctx, dir, build.Options{Out: filepath.Join(dir, "out"), Runtime: rt, Runs: 2})
	require.NoError(t, err)
	return res.Bundle
}

func TestServe_Usage(t *testing.T) {
	bundleDir := echoBundle(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("listen = \"127.0.0.1:0\"\nunknown_key = 1\n"), 0o644))
	bad := filepath.Join(dir, "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte("listen = \n"), 0o644))
	pol := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte("{}"), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		code int
		has  string
	}{
		{"no bundle", []string{"serve", "--policy", pol}, exitUsage, "--bundle is required"},
		{"missing bundle", []string{"serve", "--bundle", filepath.Join(dir, "nope"), "--policy", pol}, exitModule, "nope"},
		{"unknown config key", []string{"serve", "--config", cfg}, exitUsage, "unknown_key"},
		{"bad config syntax", []string{"serve", "--config", bad}, exitUsage, "bad.toml:1"},
		{"bad job id", []string{"serve", "--bundle", bundleDir, "--policy", pol, "--job-id", "x=echo"}, exitUsage, "job id"},
		{"job id without =", []string{"serve", "--bundle", bundleDir, "--policy", pol, "--job-id", "3"}, exitUsage, "ID=JOB"},
		{"job id for an unknown job", []string{"serve", "--bundle", bundleDir, "--policy", pol, "--job-id", "3=nope"}, exitUsage, "no job \"nope\""},
		{"bad log format", []string{"serve", "--bundle", bundleDir, "--log-format", "xml"}, exitUsage, "--log-format"},
		{"bad listen", []string{"serve", "--bundle", bundleDir, "--policy", pol, "--listen", "nope:x", "--data-dir", dir, "--state", "memory"}, exitHost, "--listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ferry(t, "", tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.has)
		})
	}
	r := ferry(t, "", "serve", "--help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "Example")
}

// A real `ferry serve` process: configured by a file plus a flag, it
// serves calls, then shuts down cleanly on SIGTERM.
func TestServe_Process(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bundleDir := echoBundle(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte("{}"), 0o644))
	cfg := filepath.Join(dir, "serve.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(`bundle = "`+bundleDir+`"
policy = "`+pol+`"
listen = "127.0.0.1:0"
data_dir = "`+filepath.Join(dir, "data")+`"
[job_ids]
"5" = "echo"
`), 0o644))
	cmd := exec.Command(ferryBinary(t), "serve", "--config", cfg, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "FERRY_TOKEN=tok")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill() }()
	re := regexp.MustCompile(`msg="ferry serve listening" url=(http://\S+)`)
	urlc := make(chan string, 1)
	var log strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := stderr.Read(buf)
			log.Write(buf[:n])
			if m := re.FindStringSubmatch(log.String()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	var url string
	select {
	case url = <-urlc:
	case <-time.After(30 * time.Second):
		t.Fatal("ferry serve did not start")
	}
	req, _ := http.NewRequest("POST", url+"/v1/jobs/echo/invoke", strings.NewReader("over the wire"))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "over the wire", string(out))
	assert.Equal(t, "local", resp.Header.Get("X-Ferry-Ran-On"))

	req, _ = http.NewRequest("POST", url+"/job/5", strings.NewReader(`{"job_id":5,"args":[104,105]}`))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "%s", out)
	assert.Contains(t, string(out), `"result":[104,105]`)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "clean exit")
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop")
	}
}
