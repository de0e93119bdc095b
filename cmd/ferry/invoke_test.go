package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/build"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// invokeBundle builds a bundle of WAT jobs: echo (profiled), and
// guesterror and spin (no samples: a failing sample would fail the build,
// and spin's would be slow).
func invokeBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"echo", "guesterror", "spin"} {
		b, err := examples.WAT(name)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".wasm"), b, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blueprint.toml"), []byte(`[blueprint]
name = "invoke-test"

[blueprint.jobs.echo]
source = "echo.wasm"
inline_samples = ["hi"]

[blueprint.jobs.guesterror]
source = "guesterror.wasm"

[blueprint.jobs.spin]
source = "spin.wasm"
`), 0o644))
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	defer rt.Close(ctx)
	res, err := build.Build(ctx, dir, build.Options{Out: filepath.Join(dir, "out"), Runtime: rt, Runs: 2})
	require.NoError(t, err)
	return res.Bundle
}

var serveListeningRE = regexp.MustCompile(`msg="ferry serve listening" url=(http://\S+)`)

// startServe starts `ferry serve` for bundleDir on a free loopback port
// with token (serverless off: every job local), waits until it listens,
// and stops it (SIGTERM) at cleanup.
func startServe(t *testing.T, bundleDir, token string) *hostProc {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte("{}"), 0o644))
	return startFerry(t, serveListeningRE, []string{"FERRY_TOKEN=" + token}, "serve", "--bundle", bundleDir, "--policy", pol,
		"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--state", "memory", "--cache-dir", filepath.Join(dir, "cache"))
}

// tokenFile writes tok to a file and returns its path.
func tokenFile(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(p, []byte(tok+"\n"), 0o600))
	return p
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// A real `ferry serve` process, called through `ferry invoke`.
func TestInvoke_Server(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	srv := startServe(t, invokeBundle(t), "invoke-token")
	tok := tokenFile(t, "invoke-token")
	common := []string{"--server", srv.URL, "--token-file", tok}
	invoke := func(t *testing.T, stdin string, args ...string) result {
		t.Helper()
		return ferry(t, stdin, append(append([]string{"invoke"}, args...), common...)...)
	}

	t.Run("output and the summary line", func(t *testing.T) {
		r := invoke(t, "", "echo", "--input", "over the wire")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "over the wire", r.stdout)
		assert.Regexp(t, `^ran on local \(direct, local: the only target\) in [0-9.]+ ms, \$[0-9.]+\n$`, r.stderr)
	})
	t.Run("stdin", func(t *testing.T) {
		r := invoke(t, "piped in", "echo", "-q")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "piped in", r.stdout)
		assert.Empty(t, r.stderr, "-q: no summary line")
	})
	t.Run("input file", func(t *testing.T) {
		in := filepath.Join(t.TempDir(), "in")
		require.NoError(t, os.WriteFile(in, []byte{0, 1, 2, 0xff}, 0o644))
		r := invoke(t, "", "echo", "--input-file", in)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, string([]byte{0, 1, 2, 0xff}), r.stdout)
	})
	t.Run("json", func(t *testing.T) {
		r := invoke(t, "", "echo", "--input", "as json", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var got invokeJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
		assert.Equal(t, "echo", got.Job)
		assert.Equal(t, []byte("as json"), got.Output)
		assert.Equal(t, "local", got.RanOn)
		assert.Equal(t, 1, got.Attempts)
		assert.NotEmpty(t, got.DecisionID)
		assert.Nil(t, got.Decision, "the decision only with --explain")
		assert.Empty(t, r.stderr)
	})
	t.Run("json and explain", func(t *testing.T) {
		r := invoke(t, "", "echo", "--input", "x", "--json", "--explain")
		require.Equal(t, exitOK, r.code, r.stderr)
		var got invokeJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
		require.NotNil(t, got.Decision)
		assert.Equal(t, got.DecisionID, got.Decision.ID)
		require.Len(t, got.Decision.Chain, 1)
		assert.Equal(t, "local", got.Decision.Chain[0].Target)
		require.Len(t, got.Decision.Attempts, 1)
		assert.Equal(t, "ok", got.Decision.Attempts[0].Outcome)
	})
	t.Run("explain", func(t *testing.T) {
		r := invoke(t, "", "echo", "--input", "why", "--explain")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "why", r.stdout, "the explanation goes to stderr")
		for _, want := range []string{"decision ", "job echo, 3 bytes in, direct", "candidates, best first:", "1. local  score ",
			"why: local: the only target", "local load: cpu ", "attempt 1:  local", " ok\n", "ran on local in "} {
			assert.Contains(t, r.stderr, want)
		}
	})
	t.Run("unknown job", func(t *testing.T) {
		r := invoke(t, "", "nope", "--input", "x")
		assert.Equal(t, exitUsage, r.code)
		assert.Equal(t, "ferry: invoke nope: unknown job: \"nope\" (404 NOT_FOUND)\n", r.stderr)
		assert.Empty(t, r.stdout)
	})
	t.Run("bad token", func(t *testing.T) {
		r := ferry(t, "", "invoke", "echo", "--input", "x", "--server", srv.URL, "--token-file", tokenFile(t, "wrong"))
		assert.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "wrong bearer token (401 UNAUTHORIZED)")
		assert.Contains(t, r.stderr, "$FERRY_TOKEN or --token-file")
	})
	t.Run("no token", func(t *testing.T) {
		t.Setenv("FERRY_TOKEN", "")
		r := ferry(t, "", "invoke", "echo", "--input", "x", "--server", srv.URL)
		assert.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "missing bearer token")
	})
	t.Run("server and token from the environment", func(t *testing.T) {
		t.Setenv("FERRY_SERVER", srv.URL+"/")
		t.Setenv("FERRY_TOKEN", "invoke-token")
		r := ferry(t, "", "invoke", "echo", "--input", "env")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "env", r.stdout)
	})
	t.Run("job failure", func(t *testing.T) {
		r := invoke(t, "", "guesterror", "--input", "x", "--explain")
		assert.Equal(t, exitJobError, r.code)
		assert.Contains(t, r.stderr, "(500 EXECUTION_ERROR)")
		assert.Contains(t, r.stderr, "attempt 1:  local", "the failed call's decision is explained")
		assert.Contains(t, r.stderr, "job_error")
		assert.Contains(t, r.stderr, "failed after ")
	})
	t.Run("timeout", func(t *testing.T) {
		in := string(binary.LittleEndian.AppendUint32(nil, 2_000_000_000))
		r := invoke(t, "", "spin", "--input", in, "--timeout", "100ms")
		assert.Equal(t, exitHost, r.code)
		assert.Contains(t, r.stderr, "no answer from "+srv.URL+" within --timeout 100ms")
	})
	t.Run("repeat counts timeouts", func(t *testing.T) {
		in := string(binary.LittleEndian.AppendUint32(nil, 2_000_000_000))
		r := invoke(t, "", "spin", "--input", in, "--timeout", "100ms", "--repeat", "2")
		assert.Equal(t, exitHost, r.code)
		assert.Contains(t, r.stdout, "spin: 2 calls in ")
		assert.Contains(t, r.stdout, "errors   TIMEOUT 2")
		assert.Contains(t, r.stderr, "2 of 2 calls failed; the last: no answer from")
	})
	t.Run("repeat", func(t *testing.T) {
		r := invoke(t, "", "echo", "--input", "again", "--repeat", "40", "--concurrency", "4")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "echo: 40 calls in ")
		assert.Contains(t, r.stdout, "0 failed")
		assert.Contains(t, r.stdout, "ran on   local 40\n")
		assert.Regexp(t, `latency  p50 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms`, r.stdout)
	})
	t.Run("repeat json and explain", func(t *testing.T) {
		r := invoke(t, "", "echo", "--input", "again", "--repeat", "10", "--json", "--explain")
		require.Equal(t, exitOK, r.code, r.stderr)
		var got repeatJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
		assert.Equal(t, 10, got.Calls)
		assert.Equal(t, map[string]int{"local": 10}, got.RanOn)
		assert.LessOrEqual(t, got.LatencyMs["p50"], got.LatencyMs["p99"])
		assert.LessOrEqual(t, got.LatencyMs["p99"], got.LatencyMs["max"])
		require.NotNil(t, got.Slowest)
		require.NotNil(t, got.Decision, "--explain: the slowest call's decision")
		assert.Equal(t, got.Slowest.DecisionID, got.Decision.ID)
		assert.Equal(t, got.LatencyMs["max"], got.Slowest.LatencyMs)
	})
	t.Run("repeat counts failures", func(t *testing.T) {
		r := invoke(t, "", "guesterror", "--input", "x", "--repeat", "5")
		assert.Equal(t, exitJobError, r.code)
		assert.Contains(t, r.stdout, "guesterror: 5 calls in ")
		assert.Contains(t, r.stdout, "5 failed")
		assert.Contains(t, r.stdout, "errors   EXECUTION_ERROR 5")
		assert.Contains(t, r.stderr, "5 of 5 calls failed")
	})
	t.Run("repeat stops at an unknown job", func(t *testing.T) {
		r := invoke(t, "", "nope", "--repeat", "1000", "--concurrency", "8")
		assert.Equal(t, exitUsage, r.code)
		assert.Equal(t, "ferry: invoke nope: unknown job: \"nope\" (404 NOT_FOUND)\n", r.stderr)
		assert.Empty(t, r.stdout)
	})
}

func TestInvoke_Unreachable(t *testing.T) {
	url := closedURL(t)
	r := ferry(t, "", "invoke", "echo", "--input", "x", "--server", url)
	assert.Equal(t, exitHost, r.code)
	assert.Contains(t, r.stderr, "cannot reach ferry serve at "+url)
	assert.Contains(t, r.stderr, "connection refused")

	r = ferry(t, "", "invoke", "echo", "--input", "x", "--server", url, "--repeat", "50")
	assert.Equal(t, exitHost, r.code, "--repeat stops at the first unreachable call")
	assert.Contains(t, r.stderr, "cannot reach ferry serve")
}

func TestInvoke_Usage(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, maxInvokeInput+1), 0o644))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	// A later --server wins, so a case can name its own; none gets as far
	// as calling the server.
	srv := closedURL(t)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		has   string
	}{
		{"no job", "", nil, "accepts 1 arg"},
		{"empty job", "", []string{""}, "job name is empty"},
		{"repeat zero", "", []string{"j", "--repeat", "0"}, "--repeat 0: want 1–100000"},
		{"repeat too many", "", []string{"j", "--repeat", "100001"}, "--repeat 100001"},
		{"concurrency without repeat", "", []string{"j", "--concurrency", "4"}, "--concurrency needs --repeat"},
		{"concurrency too high", "", []string{"j", "--repeat", "10", "--concurrency", "1000"}, "--concurrency 1000"},
		{"both inputs", "", []string{"j", "--input", "a", "--input-file", big}, "mutually exclusive"},
		{"missing input file", "", []string{"j", "--input-file", filepath.Join(dir, "none")}, "no such file"},
		{"input file too big", "", []string{"j", "--input-file", big}, "over the 8 MiB limit"},
		{"stdin too big", strings.Repeat("x", maxInvokeInput+1), []string{"j"}, "over the 8 MiB limit"},
		{"server without a scheme", "", []string{"j", "--server", "127.0.0.1:8700"}, "want a URL such as http://127.0.0.1:8700"},
		{"server with a query", "", []string{"j", "--server", "http://h:1/?x=1"}, "--server"},
		{"negative timeout", "", []string{"j", "--timeout", "-1s"}, "--timeout -1s"},
		{"missing token file", "", []string{"j", "--token-file", filepath.Join(dir, "none")}, "--token-file"},
		{"empty token file", "", []string{"j", "--token-file", empty}, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ferry(t, tc.stdin, append([]string{"invoke", "--server", srv}, tc.args...)...)
			assert.Equal(t, exitUsage, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.has)
		})
	}
	r := ferry(t, "", "invoke", "--help")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "Examples:")
	assert.Contains(t, r.stdout, "ferry invoke square --input 12345 --explain")
}

func TestInvoke_ExitCodeOfCall(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"job failed", &apiError{Status: 500, Code: "EXECUTION_ERROR"}, exitJobError},
		{"input over the job's limit", &apiError{Status: 413, Code: "PAYLOAD_TOO_LARGE"}, exitJobError},
		{"unknown job", &apiError{Status: 404, Code: "NOT_FOUND"}, exitUsage},
		{"wrong token", &apiError{Status: 401, Code: "UNAUTHORIZED"}, exitUsage},
		{"bad request without a code", &apiError{Status: 400}, exitUsage},
		{"no target", &apiError{Status: 503, Code: "UNAVAILABLE"}, exitHost},
		{"every target failed", &apiError{Status: 503, Code: "INFRASTRUCTURE_ERROR"}, exitHost},
		{"a proxy's 502", &apiError{Status: 502}, exitHost},
		{"no answer", &transportError{server: "http://x", err: io.EOF}, exitHost},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.code, exitCodeOfCall(tc.err)) })
	}
}

func TestInvoke_APIErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"ferry serve's shape", 404, `{"error":"unknown job: \"x\"","code":"NOT_FOUND","details":{"job":"x"}}`, `unknown job: "x" (404 NOT_FOUND)`},
		{"plain text", 502, "bad gateway\n", "bad gateway (HTTP 502)"},
		{"empty body", 503, "", "Service Unavailable (HTTP 503)"},
		{"long body is cut", 500, strings.Repeat("x", 300), strings.Repeat("x", 200) + "… (HTTP 500)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, newAPIError(tc.status, []byte(tc.body)).Error())
		})
	}
	e := newAPIError(500, []byte(`{"error":"boom","code":"EXECUTION_ERROR","details":{"decision_id":"d-7"}}`))
	assert.Equal(t, "d-7", decisionIDOf(e))
	assert.Equal(t, "EXECUTION_ERROR", codeOf(e))
}

func TestInvoke_Format(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "$0"}, {4.4333e-11, "$0.000000000044"}, {2.08e-7, "$0.00000021"}, {0.5, "$0.50"}, {12.345, "$12.35"},
	} {
		assert.Equal(t, tc.want, fmtUSD(tc.v))
	}
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0.0123, "0.01 ms"}, {1.234, "1.23 ms"}, {12.34, "12.3 ms"}, {123.4, "123 ms"},
	} {
		assert.Equal(t, tc.want, fmtMs(tc.v))
	}
}

func TestInvoke_Tally(t *testing.T) {
	tl := newTally()
	for i := 1; i <= 100; i++ {
		target := "local"
		if i%4 == 0 {
			target = "edge"
		}
		tl.add(target, float64(i), 0.01)
	}
	assert.Equal(t, 50.0, tl.percentile(50))
	assert.Equal(t, 99.0, tl.percentile(99))
	assert.Equal(t, 100.0, tl.percentile(100))
	assert.InDelta(t, 1.0, tl.costUSD, 1e-9)
	assert.Equal(t, "local 75 (75%), edge 25 (25%)", tl.where(true))
	assert.Equal(t, "local 75, edge 25", tl.where(false))
	assert.Equal(t, 0.0, newTally().percentile(50), "no calls")
}
