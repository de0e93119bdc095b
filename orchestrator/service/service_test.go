package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/build"
	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/orchestrator/api"
	"github.com/ferryrun/ferry/orchestrator/policy"
	"github.com/ferryrun/ferry/orchestrator/queue"
	"github.com/ferryrun/ferry/orchestrator/route"
	"github.com/ferryrun/ferry/orchestrator/service"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// buildBundle builds a blueprint of WAT jobs that may run on custom hosts:
// echo (profiled, pure), trap (fails), spin (takes a while).
func buildBundle(t testing.TB) *bundle.Bundle { return buildBundleFor(t, `"custom"`) }

// buildBundleFor builds the same blueprint allowing the given providers
// (blueprint.toml spelling, quoted and comma-separated).
func buildBundleFor(t testing.TB, providers string) *bundle.Bundle {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"echo", "trap"} {
		b, err := examples.WAT(name)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".wasm"), b, 0o644))
	}
	toml := `[blueprint]
name = "svc-test"

[blueprint.serverless]
providers = [` + providers + `]

[blueprint.jobs.echo]
source = "echo.wasm"
inline_samples = ["hello"]

[blueprint.jobs.trap]
source = "trap.wasm"
force_serverless = true
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blueprint.toml"), []byte(toml), 0o644))
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	defer rt.Close(ctx)
	res, err := build.Build(ctx, dir, build.Options{Out: filepath.Join(dir, "out"), Runtime: rt, Runs: 2})
	require.NoError(t, err)
	b, err := bundle.Open(res.Bundle)
	require.NoError(t, err)
	return b
}

// remote is a real HTTP host (server in process on loopback).
type remote struct {
	srv *httphost.Server
	ts  *httptest.Server
}

func newRemote(t testing.TB, token string) *remote {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	srv, err := httphost.NewServer(ctx, httphost.ServerConfig{Runtime: rt, DataDir: t.TempDir(), Token: token})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		_ = srv.Close(ctx)
		_ = rt.Close(ctx)
	})
	return &remote{srv: srv, ts: ts}
}

func policyFor(t testing.TB, endpoint string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("policy.json", []byte(`{"serverless": {"enable": true, "provider": {"type": "custom", "endpoint": "`+endpoint+`"},
		"default_memory_mb": 128, "timeout_secs": 30, "fallback_to_vm": true}}`))
	require.NoError(t, err)
	return p
}

func start(t testing.TB, b *bundle.Bundle, pol *policy.Policy, dataDir, hostToken string, progress io.Writer) *service.Service {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	s, err := service.Start(ctx, service.Config{Bundle: b, Policy: pol, DataDir: dataDir, Runtime: rt, HostToken: hostToken, Progress: progress})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = s.Close(ctx)
		_ = rt.Close(ctx)
	})
	return s
}

func TestService_DeploysRoutesAndRemembers(t *testing.T) {
	b := buildBundle(t)
	r := newRemote(t, "host-secret")
	pol := policyFor(t, r.ts.URL)
	data := t.TempDir()
	var progress bytes.Buffer
	s := start(t, b, pol, data, "host-secret", &progress)
	assert.Contains(t, progress.String(), "deployed  echo")
	assert.Equal(t, 2, r.srv.Functions(), "echo and trap deployed remotely:\n%s", progress.String())

	ctx := context.Background()
	res, err := s.Execute(ctx, "echo", []byte("hi"))
	require.NoError(t, err)
	assert.Equal(t, "hi", string(res.Output))

	// trap is force_serverless: it runs remotely, fails as a job, and is
	// not retried locally.
	_, err = s.Execute(ctx, "trap", nil)
	require.ErrorIs(t, err, host.ErrJob)
	d := s.Exec.Decisions().Recent(1)[0]
	require.Len(t, d.Attempts, 1)
	assert.Equal(t, "custom/"+strings.TrimPrefix(r.ts.URL, "http://"), d.Attempts[0].Target)

	// A restart finds its deployments in the registry: nothing is
	// uploaded again.
	require.NoError(t, s.Close(ctx))
	progress.Reset()
	s2 := start(t, b, pol, data, "host-secret", &progress)
	assert.Contains(t, progress.String(), "unchanged echo")
	assert.NotContains(t, progress.String(), "deployed  echo             custom")
	res, err = s2.Execute(ctx, "echo", []byte("again"))
	require.NoError(t, err)
	assert.Equal(t, "again", string(res.Output))

	// The remote dies: calls fall back to the local host.
	r.ts.Close()
	for range 3 {
		res, err := s2.Execute(ctx, "echo", []byte("still"))
		require.NoError(t, err)
		assert.Equal(t, "still", string(res.Output))
	}
}

func TestService_SecondInstanceRefused(t *testing.T) {
	b := buildBundle(t)
	data := t.TempDir()
	start(t, b, nil, data, "", nil)
	rt, err := wasmrt.New(context.Background(), wasmrt.Config{})
	require.NoError(t, err)
	defer rt.Close(context.Background())
	_, err = service.Start(context.Background(), service.Config{Bundle: b, DataDir: data, Runtime: rt})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "in use")
}

func TestService_SkipsProvidersWithoutHost(t *testing.T) {
	b := buildBundleFor(t, `"aws_lambda"`)
	p, err := policy.Parse("p.json", []byte(`{"serverless": {"enable": true, "provider": {"type": "aws-lambda", "region": "us-east-1"}, "fallback_to_vm": true}}`))
	require.NoError(t, err)
	var progress bytes.Buffer
	s := start(t, b, p, t.TempDir(), "", &progress)
	jp, ok := s.Plan.Job("echo")
	require.True(t, ok)
	require.Contains(t, jp.Deploy, "aws-lambda/us-east-1", "the plan sends echo to Lambda")
	// This build has no Lambda host yet: the provider is skipped, said so,
	// and every job still runs.
	assert.Contains(t, s.Skipped["aws-lambda/us-east-1"], "no host for this provider kind")
	assert.Contains(t, progress.String(), "skipped")
	res, err := s.Execute(context.Background(), "echo", []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, route.LocalID, res.Target)
	// trap is forced serverless but has nowhere remote to go: it falls back
	// to the local host, where it runs (and traps as a job).
	_, err = s.Execute(context.Background(), "trap", nil)
	assert.ErrorIs(t, err, host.ErrJob)
}

func TestAPI(t *testing.T) {
	b := buildBundle(t)
	r := newRemote(t, "")
	s := start(t, b, policyFor(t, r.ts.URL), t.TempDir(), "", nil)
	a, err := api.New(api.Config{Exec: s.Exec, Plan: s.Plan, Router: s.Router, Queue: s.Queue, Token: "api-secret", JobIDs: map[uint32]string{0: "echo"}})
	require.NoError(t, err)
	s.Exec.SetObserver(a.Observer())
	ts := httptest.NewServer(a)
	defer ts.Close()

	var idemKey string
	do := func(method, path, body, accept string, auth bool) (*http.Response, []byte) {
		req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		if auth {
			req.Header.Set("Authorization", "Bearer api-secret")
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, out
	}

	resp, out := do("POST", "/v1/jobs/echo/invoke", "raw bytes", "", true)
	require.Equal(t, 200, resp.StatusCode, "%s", out)
	assert.Equal(t, "raw bytes", string(out))
	decision := resp.Header.Get("X-Ferry-Decision")
	assert.NotEmpty(t, decision)
	assert.NotEmpty(t, resp.Header.Get("X-Ferry-Ran-On"))

	resp, out = do("POST", "/v1/jobs/echo/invoke", "json please", "application/json", true)
	require.Equal(t, 200, resp.StatusCode)
	var ir api.InvokeResult
	require.NoError(t, json.Unmarshal(out, &ir))
	assert.Equal(t, "json please", string(ir.Output))
	assert.NotEmpty(t, ir.RanOn)

	resp, out = do("GET", "/v1/decisions/"+decision, "", "", true)
	require.Equal(t, 200, resp.StatusCode)
	var d route.Decision
	require.NoError(t, json.Unmarshal(out, &d))
	assert.Equal(t, "echo", d.Job)
	assert.NotEmpty(t, d.Chain)
	assert.NotEmpty(t, d.Reasons)
	assert.Equal(t, d.RanOn, d.Attempts[len(d.Attempts)-1].Target)

	resp, out = do("GET", "/v1/jobs", "", "", true)
	require.Equal(t, 200, resp.StatusCode)
	var jobs struct {
		Jobs []api.JobView `json:"jobs"`
	}
	require.NoError(t, json.Unmarshal(out, &jobs))
	require.Len(t, jobs.Jobs, 2)
	assert.Equal(t, "echo", jobs.Jobs[0].Name)
	assert.Len(t, jobs.Jobs[0].Routes, 2, "local and the custom host")

	// Failures and bad input.
	resp, out = do("POST", "/v1/jobs/trap/invoke", "", "", true)
	assert.Equal(t, 500, resp.StatusCode)
	var eb struct {
		Code    string         `json:"code"`
		Details map[string]any `json:"details"`
	}
	require.NoError(t, json.Unmarshal(out, &eb))
	assert.Equal(t, "EXECUTION_ERROR", eb.Code)
	failedID, _ := eb.Details["decision_id"].(string)
	require.NotEmpty(t, failedID, "a failed call names its decision")
	resp, out = do("GET", "/v1/decisions/"+failedID, "", "", true)
	require.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(out), `"job":"trap"`)
	resp, _ = do("POST", "/v1/jobs/nope/invoke", "", "", true)
	assert.Equal(t, 404, resp.StatusCode)
	resp, out = do("POST", "/v1/jobs/echo/invoke", strings.Repeat("x", 7<<20), "", true)
	assert.Equal(t, 413, resp.StatusCode, "an input over every target's limit: %s", out)
	resp, _ = do("POST", "/v1/jobs/echo/invoke", "x", "", false)
	assert.Equal(t, 401, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
	resp, _ = do("GET", "/healthz", "", "", false)
	assert.Equal(t, 200, resp.StatusCode, "health needs no token")

	// The custom FaaS protocol: a Tangle runner's request.
	resp, out = do("POST", "/job/0", `{"job_id":0,"args":[1,2,3]}`, "", true)
	require.Equal(t, 200, resp.StatusCode, "%s", out)
	var fr httphost.InvokeResponse
	require.NoError(t, json.Unmarshal(out, &fr))
	assert.Equal(t, []byte{1, 2, 3}, []byte(fr.Result))
	assert.True(t, fr.Success)
	resp, _ = do("POST", "/job/7", `{"job_id":7,"args":[1]}`, "", true)
	assert.Equal(t, 404, resp.StatusCode)
	resp, out = do("POST", "/api/functions/trap/invoke", `{"job_id":0,"args":[]}`, "", true)
	assert.Equal(t, 500, resp.StatusCode, "a failed job is never 2xx")
	assert.Contains(t, string(out), `"success":false`)
	resp, _ = do("POST", "/api/functions/echo/invoke", `{"job_id":0,"args":"AQI="}`, "", true)
	assert.Equal(t, 400, resp.StatusCode)
	resp, _ = do("HEAD", "/job/0", "", "", true)
	assert.Equal(t, 200, resp.StatusCode)

	// The durable queue: submit, poll, an idempotent retry, a failure.
	idemKey = "order-17"
	resp, out = do("POST", "/v1/jobs/echo/submit", "later", "", true)
	require.Equal(t, 202, resp.StatusCode, "%s", out)
	var inv queue.Invocation
	require.NoError(t, json.Unmarshal(out, &inv))
	assert.Equal(t, "/v1/invocations/"+inv.ID, resp.Header.Get("Location"))
	poll := func(id string) queue.Invocation {
		var got queue.Invocation
		require.Eventually(t, func() bool {
			resp, out := do("GET", "/v1/invocations/"+id, "", "", true)
			require.Equal(t, 200, resp.StatusCode, "%s", out)
			require.NoError(t, json.Unmarshal(out, &got))
			return got.Status.Finished()
		}, 10*time.Second, 5*time.Millisecond)
		return got
	}
	got := poll(inv.ID)
	assert.Equal(t, queue.StatusSucceeded, got.Status)
	assert.Equal(t, "later", string(got.Output))
	assert.NotEmpty(t, got.RanOn)
	assert.NotEmpty(t, got.DecisionID)
	resp, out = do("POST", "/v1/jobs/echo/submit", "later", "", true)
	require.Equal(t, 200, resp.StatusCode, "a retried submission answers the first: %s", out)
	var again queue.Invocation
	require.NoError(t, json.Unmarshal(out, &again))
	assert.Equal(t, inv.ID, again.ID)
	resp, _ = do("POST", "/v1/jobs/echo/submit", "different input", "", true)
	assert.Equal(t, 409, resp.StatusCode, "same key, another input")
	idemKey = ""
	resp, out = do("POST", "/v1/jobs/trap/submit", "", "", true)
	require.Equal(t, 202, resp.StatusCode, "%s", out)
	require.NoError(t, json.Unmarshal(out, &inv))
	got = poll(inv.ID)
	assert.Equal(t, queue.StatusFailed, got.Status)
	assert.Equal(t, "job", got.ErrorKind)
	resp, _ = do("POST", "/v1/jobs/nope/submit", "", "", true)
	assert.Equal(t, 404, resp.StatusCode)
	resp, _ = do("GET", "/v1/invocations/0000", "", "", true)
	assert.Equal(t, 404, resp.StatusCode)

	resp, out = do("GET", "/metrics", "", "", true)
	require.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(out), "ferry_queue_queued 0")
	assert.Contains(t, string(out), `ferry_invocations_total{job="echo"`)
	assert.Contains(t, string(out), `ferry_breaker_state{job="echo"`)
}

// BenchmarkAPI_InvokeLocal is a sync invoke of the trivial echo job through
// ferry serve's HTTP API over loopback keep-alive connections, 32 callers
// (client in the same process), serverless off so every call runs locally.
func BenchmarkAPI_InvokeLocal(b *testing.B) {
	bd := buildBundle(b)
	s := start(b, bd, nil, b.TempDir(), "", nil)
	a, err := api.New(api.Config{Exec: s.Exec, Plan: s.Plan, Router: s.Router, Token: "t"})
	if err != nil {
		b.Fatal(err)
	}
	s.Exec.SetObserver(a.Observer())
	ts := httptest.NewServer(a)
	defer ts.Close()
	hc := &http.Client{Transport: httphost.NewTransport()}
	url := ts.URL + "/v1/jobs/echo/invoke"
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("ferry loopback!!"))
			req.Header.Set("Authorization", "Bearer t")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
