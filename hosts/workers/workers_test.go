package workers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/hosttest"
	"github.com/ferryrun/ferry/hosts/workers"
	"github.com/ferryrun/ferry/hosts/workers/cflocal"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

const token = "workers-test-token"

func newHost(t *testing.T, cf *cflocal.Cloudflare, mod func(*workers.Config)) *workers.Host {
	t.Helper()
	cfg := workers.Config{
		AccountID: cf.API.AccountID, APIToken: cf.API.Token, APIBaseURL: cf.API.URL,
		Token: token, URL: cflocal.URL, HTTPClient: cf.HTTPClient(),
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := workers.New(cfg)
	require.NoError(t, err)
	return h
}

// quiet keeps workerd's lines out of the test log unless asked for.
func quiet(string) {}

func TestConformance(t *testing.T) {
	cf := cflocal.Start(t, cflocal.Options{Log: quiet})
	hosttest.Run(t, func(t *testing.T) host.Host { return newHost(t, cf, nil) }, hosttest.Options{Concurrency: 32})
}

func deployGo(t *testing.T, h host.Host, name, example string, shape examples.Shape) *host.Deployment {
	t.Helper()
	if testing.Short() {
		t.Skip("Go examples skipped in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wasm, err := examples.BuildGo(ctx, example, shape)
	require.NoError(t, err)
	d, err := h.Deploy(ctx, host.Job{Name: name, Module: wasm, Digest: modstore.Digest(wasm)})
	require.NoError(t, err)
	return d
}

func TestGoShapes(t *testing.T) {
	cf := cflocal.Start(t, cflocal.Options{Log: quiet})
	h := newHost(t, cf, nil)
	for _, shape := range []examples.Shape{examples.Reactor, examples.Command} {
		t.Run(string(shape), func(t *testing.T) {
			d := deployGo(t, h, "square-"+string(shape), "incredible-squaring", shape)
			for i := range 3 {
				res, err := h.Invoke(context.Background(), d, host.Request{Input: []byte("99999")})
				require.NoError(t, err, "call %d", i)
				assert.Equal(t, "9999800001", string(res.Output))
				assert.Equal(t, "cloudflare-workers", res.Host)
			}
		})
	}
}

// TestCounter is the state check: concurrent increments through the
// Workers, committed in the ferry-state Durable Object, lose nothing.
func TestCounter(t *testing.T) {
	cf := cflocal.Start(t, cflocal.Options{Log: quiet})
	h := newHost(t, cf, nil)
	d := deployGo(t, h, "counter", "counter", examples.Reactor)
	const callers, each = 16, 20
	seen := make(chan string, callers*each)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				res, err := h.Invoke(context.Background(), d, host.Request{Input: []byte("1")})
				if !assert.NoError(t, err) {
					return
				}
				seen <- string(res.Output)
			}
		}()
	}
	wg.Wait()
	close(seen)
	distinct := map[string]bool{}
	for v := range seen {
		assert.False(t, distinct[v], "two calls saw counter value %s", v)
		distinct[v] = true
	}
	res, err := h.Invoke(context.Background(), d, host.Request{Input: []byte("0")})
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(callers*each), string(res.Output))

	// State outlives the job's Worker: remove and deploy again.
	require.NoError(t, h.Remove(context.Background(), d))
	d = deployGo(t, h, "counter", "counter", examples.Reactor)
	res, err = h.Invoke(context.Background(), d, host.Request{Input: []byte("1")})
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(callers*each+1), string(res.Output))
}

func TestIdempotency(t *testing.T) {
	cf := cflocal.Start(t, cflocal.Options{Log: quiet})
	h := newHost(t, cf, nil)
	d := deployGo(t, h, "counter", "counter", examples.Reactor)
	ctx := context.Background()
	a, err := h.Invoke(ctx, d, host.Request{Input: []byte("5"), IdempotencyKey: "once-1"})
	require.NoError(t, err)
	b, err := h.Invoke(ctx, d, host.Request{Input: []byte("5"), IdempotencyKey: "once-1"})
	require.NoError(t, err)
	assert.Equal(t, "5", string(a.Output))
	assert.Equal(t, "5", string(b.Output), "a second delivery returns the recorded output")
	c, err := h.Invoke(ctx, d, host.Request{Input: []byte("0")})
	require.NoError(t, err)
	assert.Equal(t, "5", string(c.Output), "the second delivery did not run the job")
}

func TestControlPlane(t *testing.T) {
	cf := cflocal.Start(t, cflocal.Options{Log: quiet})
	h := newHost(t, cf, nil)
	ctx := context.Background()
	echo, err := examples.WAT("echo")
	require.NoError(t, err)
	var steps []string
	pctx := host.WithProgress(ctx, func(s string) { steps = append(steps, s) })
	d, err := h.Deploy(pctx, host.Job{Name: "echo_job", Module: echo})
	require.NoError(t, err)
	assert.NotEmpty(t, steps, "deploy shows progress")

	script := "ferry-echo-job-" // the '_' is not a hostname character: a hash keeps it unique
	var up *string
	for name := range cf.API.Scripts() {
		if strings.HasPrefix(name, script) {
			up = &name
		}
	}
	require.NotNil(t, up, "uploaded as %s…", script)
	s, _ := cf.API.Script(*up)
	assert.True(t, s.WorkersDev, "the workers.dev route is on")
	assert.Equal(t, token, s.Secrets["FERRY_TOKEN"], "the bearer token is a secret")
	assert.Equal(t, "worker.js", s.Metadata.MainModule)
	assert.Equal(t, "application/wasm", s.Modules["job.wasm"].ContentType)
	assert.NotContains(t, cf.API.Scripts(), "ferry-state", "a stateless job needs no state Worker")

	// The same job again sends nothing.
	before := len(cf.API.Requests())
	steps = nil
	_, err = h.Deploy(pctx, host.Job{Name: "echo_job", Module: echo})
	require.NoError(t, err)
	assert.Len(t, cf.API.Requests(), before)
	assert.Empty(t, steps)

	// Calls need the token.
	anon := newHost(t, cf, func(c *workers.Config) { c.Token = "wrong" })
	_, err = anon.Invoke(ctx, d, host.Request{Input: []byte("x")})
	require.ErrorIs(t, err, host.ErrHost)
	assert.Contains(t, err.Error(), "token")

	// Limits of the plan are enforced at deploy.
	_, err = h.Deploy(ctx, host.Job{Name: "big", Module: echo, Limits: host.Limits{MemoryMB: 256}})
	require.ErrorIs(t, err, host.ErrLimit)
	free := newHost(t, cf, func(c *workers.Config) { c.Plan = "free" })
	_, err = free.Deploy(ctx, host.Job{Name: "slow", Module: echo, Limits: host.Limits{Timeout: time.Second}})
	require.ErrorIs(t, err, host.ErrLimit)
	assert.Contains(t, err.Error(), "10 ms")

	require.NoError(t, h.Remove(ctx, d))
	assert.NotContains(t, cf.API.Scripts(), *up)
	_, err = h.Invoke(ctx, d, host.Request{Input: []byte("x")})
	require.ErrorIs(t, err, host.ErrNotFound)
}

func TestNew_Refuses(t *testing.T) {
	for name, cfg := range map[string]workers.Config{
		"no token":    {AccountID: strings.Repeat("a", 32), APIToken: "x"},
		"bad plan":    {AccountID: strings.Repeat("a", 32), APIToken: "x", Token: "t", Plan: "pro"},
		"cpu on free": {AccountID: strings.Repeat("a", 32), APIToken: "x", Token: "t", Plan: "free", CPUMs: 50},
		"bad account": {AccountID: "nope", APIToken: "x", Token: "t"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := workers.New(cfg)
			require.Error(t, err)
		})
	}
}

// TestFetchAndBatch: a job's HTTP requests go out through fetch, limited to
// its allow-list (redirects too), and a batch runs in one round trip.
func TestFetchAndBatch(t *testing.T) {
	cf := cflocal.Start(t, cflocal.Options{Log: quiet})
	h := newHost(t, cf, nil)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, "http://localhost:1/elsewhere", http.StatusFound)
		default:
			fmt.Fprintf(w, "hello from %s", r.URL.Path)
		}
	}))
	defer origin.Close()
	if testing.Short() {
		t.Skip("Go examples skipped in -short")
	}
	ctx := context.Background()
	wasm, err := examples.BuildGo(ctx, "fetcher", examples.Reactor)
	require.NoError(t, err)
	allowed := strings.TrimPrefix(origin.URL, "http://")
	d, err := h.Deploy(ctx, host.Job{Name: "fetcher", Module: wasm, AllowHosts: []string{allowed}})
	require.NoError(t, err)

	res, err := h.Invoke(ctx, d, host.Request{Input: []byte(origin.URL + "/page")})
	require.NoError(t, err)
	assert.Equal(t, "hello from /page", string(res.Output))
	_, err = h.Invoke(ctx, d, host.Request{Input: []byte("http://localhost:1/not-allowed")})
	require.ErrorIs(t, err, host.ErrJob, "a host off the allow-list is denied to the job")
	_, err = h.Invoke(ctx, d, host.Request{Input: []byte(origin.URL + "/away")})
	require.ErrorIs(t, err, host.ErrJob, "a redirect off the allow-list is not followed")

	reqs := make([]host.Request, 10)
	for i := range reqs {
		reqs[i].Input = []byte(fmt.Sprintf("%s/%d", origin.URL, i))
	}
	reqs[3].Input = []byte("http://localhost:1/no")
	out := h.InvokeBatch(ctx, d, reqs)
	require.Len(t, out, len(reqs))
	for i, r := range out {
		if i == 3 {
			assert.ErrorIs(t, r.Err, host.ErrJob)
			continue
		}
		require.NoError(t, r.Err, "request %d", i)
		assert.Equal(t, fmt.Sprintf("hello from /%d", i), string(r.Response.Output))
	}
}
