package workerd_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/hosts/workers/shim"
	"github.com/ferryrun/ferry/hosts/workers/workerd"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

func binary(t *testing.T) string {
	t.Helper()
	b, err := workerd.Find()
	if err != nil {
		t.Skipf("%v", err)
	}
	return b
}

func start(t *testing.T, workers ...*shim.Worker) *workerd.Process {
	t.Helper()
	addr, err := workerd.FreeAddr()
	require.NoError(t, err)
	cfg := workerd.Config{Addr: addr, DataDir: t.TempDir(), AllowPrivateNetwork: true}
	for _, w := range workers {
		cfg.Workers = append(cfg.Workers, *w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := workerd.Start(ctx, cfg, workerd.Options{Binary: binary(t), Dir: t.TempDir(), Log: testWriter{t}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(5 * time.Second) })
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("workerd: %s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func TestEchoWorker(t *testing.T) {
	wasm, err := examples.WAT("echo")
	require.NoError(t, err)
	w, err := shim.Build(shim.Spec{Script: "ferry-echo", FunctionID: "echo-1", Job: host.Job{Name: "echo", Module: wasm, Digest: modstore.Digest(wasm)}})
	require.NoError(t, err)
	p := start(t, w, shim.State(""))
	body := `{"job_id":0,"args":[104,105]}`
	resp, err := http.Post(p.URL()+"/api/functions/echo-1/invoke", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var r struct {
		Result  []int `json:"result"`
		Success bool  `json:"success"`
		Cold    bool  `json:"cold"`
	}
	require.NoError(t, json.Unmarshal(b, &r))
	assert.True(t, r.Success)
	assert.True(t, r.Cold, "the isolate's first call")
	assert.Equal(t, []int{104, 105}, r.Result)
}

// deployAll builds a Worker per job, starts one workerd, and returns an
// HTTP client host and the deployments, keyed by job name.
func deployAll(t *testing.T, jobs ...host.Job) (*httphost.Client, map[string]*host.Deployment) {
	t.Helper()
	var ws []*shim.Worker
	deps := map[string]*host.Deployment{}
	for _, j := range jobs {
		j.Digest = modstore.Digest(j.Module)
		fid := j.Name + "-fid"
		w, err := shim.Build(shim.Spec{Script: shim.ScriptName("ferry-", j.Name), FunctionID: fid, Job: j})
		require.NoError(t, err)
		ws = append(ws, w)
		deps[j.Name] = &host.Deployment{ID: fid, Job: j.Name, Digest: j.Digest, Limits: j.Limits, Pure: j.Pure}
	}
	p := start(t, append(ws, shim.State(""))...)
	c, err := httphost.NewClient(httphost.ClientConfig{BaseURL: p.URL(), Name: "workerd", Retries: -1})
	require.NoError(t, err)
	return c, deps
}

func TestJobKinds(t *testing.T) {
	wat := func(name string) []byte {
		b, err := examples.WAT(name)
		require.NoError(t, err)
		return b
	}
	c, deps := deployAll(t,
		host.Job{Name: "echo", Module: wat("echo")},
		host.Job{Name: "cat", Module: wat("cat")},
		host.Job{Name: "trap", Module: wat("trap")},
		host.Job{Name: "exit3", Module: wat("exit3")},
		host.Job{Name: "guesterror", Module: wat("guesterror")},
		host.Job{Name: "loop", Module: wat("loop"), Limits: host.Limits{Timeout: 200 * time.Millisecond}},
		host.Job{Name: "membomb", Module: wat("membomb"), Limits: host.Limits{MemoryMB: 16}},
		host.Job{Name: "bigoutput", Module: wat("bigoutput")},
		host.Job{Name: "small", Module: wat("echo"), Limits: host.Limits{MaxInputBytes: 1024}},
	)
	ctx := context.Background()
	for _, tc := range []struct {
		job, in, out string
		kind         error
	}{
		{job: "echo", in: "hello", out: "hello"},
		{job: "cat", in: "plain WASI", out: "plain WASI"},
		{job: "trap", kind: host.ErrJob},
		{job: "exit3", kind: host.ErrJob},
		{job: "guesterror", in: "x", kind: host.ErrJob},
		{job: "loop", kind: host.ErrTimeout},
		{job: "membomb", kind: host.ErrLimit},
		{job: "bigoutput", kind: host.ErrLimit},
		{job: "small", in: strings.Repeat("x", 2000), kind: host.ErrLimit},
	} {
		t.Run(tc.job, func(t *testing.T) {
			res, err := c.Invoke(ctx, deps[tc.job], host.Request{Input: []byte(tc.in)})
			if tc.kind != nil {
				require.ErrorIs(t, err, tc.kind)
				t.Logf("%v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.out, string(res.Output))
		})
	}
}

func goJob(t *testing.T, name string, shape examples.Shape) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("Go examples skipped in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := examples.BuildGo(ctx, name, shape)
	require.NoError(t, err)
	return b
}

func TestGoJobs(t *testing.T) {
	c, deps := deployAll(t,
		host.Job{Name: "square", Module: goJob(t, "incredible-squaring", examples.Reactor), Pure: true},
		host.Job{Name: "square-cmd", Module: goJob(t, "incredible-squaring", examples.Command)},
		host.Job{Name: "counter", Module: goJob(t, "counter", examples.Reactor)},
	)
	ctx := context.Background()
	for _, job := range []string{"square", "square-cmd"} {
		for i := range 3 {
			res, err := c.Invoke(ctx, deps[job], host.Request{Input: []byte("12345")})
			require.NoError(t, err, "%s call %d", job, i)
			assert.Equal(t, "152399025", string(res.Output))
		}
	}
	// The counter under concurrency is hosts/workers' TestCounter, through
	// the Workers host.
	res, err := c.Invoke(ctx, deps["counter"], host.Request{Input: []byte("2")})
	require.NoError(t, err)
	assert.Equal(t, "2", string(res.Output))
}
