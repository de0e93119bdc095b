package httphost_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
)

// kinds are the host error kinds; an error must match exactly one.
var kinds = []error{host.ErrNotFound, host.ErrLimit, host.ErrTimeout, host.ErrJob, host.ErrHost}

func assertKind(t *testing.T, err error, want error) {
	t.Helper()
	require.Error(t, err)
	var he *host.Error
	require.True(t, errors.As(err, &he), "%v is not a *host.Error", err)
	for _, k := range kinds {
		assert.Equal(t, k == want, errors.Is(err, k), "errors.Is(%v, %v)", err, k)
	}
}

// fakeServer is an httptest server answering every request with fn and
// counting requests.
type fakeServer struct {
	*httptest.Server
	requests atomic.Int64
}

func newFake(t *testing.T, fn http.HandlerFunc) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		fn(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// canned answers every request with status and body.
func canned(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func fakeDeployment(pure bool) *host.Deployment {
	return &host.Deployment{ID: "f-1", Job: "f", Host: "custom/test", Limits: host.Limits{Timeout: 5 * time.Second}, Pure: pure}
}

func clientFor(t *testing.T, cfg httphost.ClientConfig) *httphost.Client {
	t.Helper()
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	c, err := httphost.NewClient(cfg)
	require.NoError(t, err)
	return c
}

func TestClient_StatusErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		kind   error
		msg    []string
	}{
		{"404", 404, `{"error":"Function not found","code":"NOT_FOUND","function_id":"f-1"}`, host.ErrNotFound, []string{"Function not found", "404"}},
		{"413", 413, `{"error":"request body is over the limit of 10 bytes","code":"PAYLOAD_TOO_LARGE","details":{"limit":10}}`, host.ErrLimit, []string{"over the limit"}},
		{"413 from the job", 413, `{"job_id":0,"result":[],"success":false,"error":"input too large","code":"PAYLOAD_TOO_LARGE","details":{"kind":"input_too_large"}}`, host.ErrLimit, []string{"input too large"}},
		{"500 trap", 500, `{"job_id":0,"result":[],"success":false,"error":"trapped: unreachable","code":"EXECUTION_ERROR","details":{"kind":"trap"}}`, host.ErrJob, []string{"unreachable", "EXECUTION_ERROR", "trap"}},
		{"500 exit", 500, `{"job_id":0,"result":[],"success":false,"error":"exit 3","code":"EXECUTION_ERROR","details":{"kind":"exit"}}`, host.ErrJob, []string{"exit 3"}},
		{"500 guest error", 500, `{"job_id":0,"result":[],"success":false,"error":"bad input","code":"EXECUTION_ERROR","details":{"kind":"guest_error"}}`, host.ErrJob, []string{"bad input"}},
		{"500 timeout", 500, `{"job_id":0,"result":[],"success":false,"error":"ran out of time","code":"EXECUTION_ERROR","details":{"kind":"timeout"}}`, host.ErrTimeout, []string{"ran out of time"}},
		{"500 memory limit", 500, `{"job_id":0,"result":[],"success":false,"error":"memory","code":"EXECUTION_ERROR","details":{"kind":"memory_limit"}}`, host.ErrLimit, nil},
		{"500 output limit", 500, `{"job_id":0,"result":[],"success":false,"error":"output","code":"EXECUTION_ERROR","details":{"kind":"output_too_large"}}`, host.ErrLimit, nil},
		{"500 execution without kind", 500, `{"job_id":0,"result":[],"success":false,"error":"boom","code":"EXECUTION_ERROR"}`, host.ErrJob, []string{"boom"}},
		{"500 reference server (no code)", 500, `{"job_id":0,"result":[],"success":false,"error":"boom"}`, host.ErrJob, []string{"boom"}},
		{"200 but success false", 200, `{"job_id":0,"result":[],"success":false,"error":"quietly failed"}`, host.ErrJob, []string{"quietly failed"}},
		{"500 infrastructure", 500, `{"job_id":0,"result":[],"success":false,"error":"disk on fire","code":"INFRASTRUCTURE_ERROR","details":{"kind":"host"}}`, host.ErrHost, []string{"disk on fire"}},
		{"500 not JSON", 500, `<html>Internal Server Error</html>`, host.ErrHost, []string{"Internal Server Error"}},
		{"401", 401, `{"error":"wrong bearer token","code":"UNAUTHORIZED"}`, host.ErrHost, []string{"token", "wrong bearer token"}},
		{"403", 403, ``, host.ErrHost, []string{"token"}},
		{"503", 503, `{"error":"shutting down","code":"UNAVAILABLE"}`, host.ErrHost, []string{"shutting down", "503"}},
		{"502 empty", 502, ``, host.ErrHost, []string{"Bad Gateway"}},
		{"400", 400, `{"error":"invalid invoke request: args: missing","code":"INVALID_REQUEST"}`, host.ErrHost, []string{"args: missing"}},
		{"200 not JSON", 200, `OK`, host.ErrHost, []string{"JSON"}},
		{"200 base64 result", 200, `{"job_id":0,"result":"AQI=","success":true}`, host.ErrHost, []string{"base64"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, canned(tc.status, tc.body))
			c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL})
			resp, err := c.Invoke(context.Background(), fakeDeployment(false), host.Request{Input: []byte{1}})
			assert.Nil(t, resp)
			assertKind(t, err, tc.kind)
			for _, m := range tc.msg {
				assert.Contains(t, err.Error(), m)
			}
			assert.False(t, host.Retryable(err, false), "a request the server answered is not retryable for a non-pure job: %v", err)
			assert.EqualValues(t, 1, f.requests.Load(), "a non-pure invocation is sent once")
		})
	}
}

// The real server's errors, through the client.
func TestClient_RealServerErrors(t *testing.T) {
	s := newTestServer(t, httphost.ServerConfig{Token: "tok"})
	c := newClient(t, s.URL, "tok")
	ctx := context.Background()
	deploy := func(name, example string, l host.Limits) *host.Deployment {
		d, err := c.Deploy(ctx, host.Job{Name: name, Module: wat(t, example), Limits: l})
		require.NoError(t, err)
		return d
	}

	d := deploy("trap", "trap", host.Limits{})
	_, err := c.Invoke(ctx, d, host.Request{Input: []byte{1}})
	assertKind(t, err, host.ErrJob)
	assert.Contains(t, err.Error(), "trap")

	d = deploy("exit3", "exit3", host.Limits{})
	_, err = c.Invoke(ctx, d, host.Request{})
	assertKind(t, err, host.ErrJob)

	d = deploy("loop", "loop", host.Limits{Timeout: 150 * time.Millisecond})
	assert.Equal(t, 150*time.Millisecond, d.Limits.Timeout)
	_, err = c.Invoke(ctx, d, host.Request{})
	assertKind(t, err, host.ErrTimeout)

	d = deploy("membomb", "membomb", host.Limits{MemoryMB: 16})
	assert.Equal(t, 16, d.Limits.MemoryMB)
	_, err = c.Invoke(ctx, d, host.Request{})
	assertKind(t, err, host.ErrLimit)

	d = deploy("small", "echo", host.Limits{MaxInputBytes: 8})
	assert.Equal(t, 8, d.Limits.MaxInputBytes)
	r, err := c.Invoke(ctx, d, host.Request{Input: []byte("12345678")})
	require.NoError(t, err)
	assert.Equal(t, []byte("12345678"), r.Output)
	_, err = c.Invoke(ctx, d, host.Request{Input: []byte("123456789")})
	assertKind(t, err, host.ErrLimit)

	require.NoError(t, c.Remove(ctx, d))
	_, err = c.Invoke(ctx, d, host.Request{Input: []byte{1}})
	assertKind(t, err, host.ErrNotFound)
	assertKind(t, c.Remove(ctx, d), host.ErrNotFound)

	// A client with the wrong token is told so.
	bad := newClient(t, s.URL, "wrong")
	_, err = bad.Deploy(ctx, host.Job{Name: "echo", Module: wat(t, "echo")})
	assertKind(t, err, host.ErrHost)
	assert.Contains(t, err.Error(), "token")
	assert.Contains(t, err.Error(), "401")
	none := newClient(t, s.URL, "")
	_, err = none.Invoke(ctx, d, host.Request{Input: []byte{1}})
	assertKind(t, err, host.ErrHost)
	assert.Contains(t, err.Error(), "token")

	// A module the server refuses.
	_, err = c.Deploy(ctx, host.Job{Name: "abi", Module: wat(t, "abiv99")})
	assertKind(t, err, host.ErrHost)
	assert.Contains(t, err.Error(), "400")
}

func TestClient_Retries(t *testing.T) {
	ctx := context.Background()
	unavailable := canned(503, `{"error":"busy","code":"UNAVAILABLE"}`)

	t.Run("non-pure is not retried after a 503", func(t *testing.T) {
		f := newFake(t, unavailable)
		c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL, Retries: 3})
		_, err := c.Invoke(ctx, fakeDeployment(false), host.Request{Input: []byte{1}})
		assertKind(t, err, host.ErrHost)
		assert.EqualValues(t, 1, f.requests.Load())
		assert.False(t, host.Retryable(err, false))
	})

	t.Run("non-pure is not retried after an infrastructure 500", func(t *testing.T) {
		f := newFake(t, canned(500, `{"job_id":0,"result":[],"success":false,"error":"x","code":"INFRASTRUCTURE_ERROR"}`))
		c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL, Retries: 3})
		_, err := c.Invoke(ctx, fakeDeployment(false), host.Request{Input: []byte{1}})
		assertKind(t, err, host.ErrHost)
		assert.EqualValues(t, 1, f.requests.Load())
	})

	for _, retries := range []int{1, 2, 4} {
		t.Run("pure is retried", func(t *testing.T) {
			f := newFake(t, unavailable)
			c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL, Retries: retries})
			_, err := c.Invoke(ctx, fakeDeployment(true), host.Request{Input: []byte{1}})
			assertKind(t, err, host.ErrHost)
			assert.EqualValues(t, retries+1, f.requests.Load(), "Retries=%d", retries)
			assert.Contains(t, err.Error(), "attempts")
			assert.Contains(t, err.Error(), "busy")
		})
	}

	t.Run("negative Retries: none", func(t *testing.T) {
		f := newFake(t, unavailable)
		c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL, Retries: -1})
		_, err := c.Invoke(ctx, fakeDeployment(true), host.Request{Input: []byte{1}})
		assertKind(t, err, host.ErrHost)
		assert.EqualValues(t, 1, f.requests.Load())
	})

	t.Run("pure recovers after a retry", func(t *testing.T) {
		var n atomic.Int64
		ok := canned(200, `{"job_id":0,"result":[7,8],"success":true,"execution_ms":1,"memory_used_mb":1}`)
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				unavailable(w, r)
				return
			}
			ok(w, r)
		})
		c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL})
		r, err := c.Invoke(ctx, fakeDeployment(true), host.Request{Input: []byte{1}})
		require.NoError(t, err)
		assert.Equal(t, []byte{7, 8}, r.Output)
		assert.EqualValues(t, 2, f.requests.Load())
		// The protocol's whole numbers stand in for Ferry's exact ones.
		assert.Equal(t, time.Millisecond, r.Duration)
		assert.EqualValues(t, 1<<20, r.MemoryUsedBytes)
	})

	t.Run("a job failure is never retried", func(t *testing.T) {
		f := newFake(t, canned(500, `{"job_id":0,"result":[],"success":false,"error":"t","code":"EXECUTION_ERROR","details":{"kind":"trap"}}`))
		c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL, Retries: 3})
		_, err := c.Invoke(ctx, fakeDeployment(true), host.Request{Input: []byte{1}})
		assertKind(t, err, host.ErrJob)
		assert.EqualValues(t, 1, f.requests.Load())
	})

	t.Run("connection refused is retried even for non-pure", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		c := clientFor(t, httphost.ClientConfig{BaseURL: "http://" + addr, Retries: 2})
		start := time.Now()
		_, err = c.Invoke(ctx, fakeDeployment(false), host.Request{Input: []byte{1}})
		assertKind(t, err, host.ErrHost)
		var he *host.Error
		require.True(t, errors.As(err, &he))
		assert.True(t, he.NotDelivered, "%v", err)
		assert.True(t, host.Retryable(err, false))
		assert.Contains(t, err.Error(), "after 3 attempts")
		assert.Contains(t, err.Error(), "refused")
		assert.Less(t, time.Since(start), 5*time.Second)
	})
}

func TestClient_KeepAlive(t *testing.T) {
	var conns atomic.Int64
	ts := httptest.NewUnstartedServer(canned(200, `{"job_id":0,"result":[1,2,3],"success":true,"execution_ms":1,"memory_used_mb":1,"execution_us":12,"memory_used_bytes":65536}`))
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	c := clientFor(t, httphost.ClientConfig{BaseURL: ts.URL})
	for i := range 50 {
		r, err := c.Invoke(context.Background(), fakeDeployment(false), host.Request{Input: []byte{byte(i)}})
		require.NoError(t, err)
		require.Equal(t, []byte{1, 2, 3}, r.Output)
		require.Equal(t, 12*time.Microsecond, r.Duration)
		require.EqualValues(t, 65536, r.MemoryUsedBytes)
	}
	assert.LessOrEqual(t, conns.Load(), int64(2), "50 sequential calls opened %d connections", conns.Load())
	assert.GreaterOrEqual(t, conns.Load(), int64(1))
}

func TestClient_SlackTimeout(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL, Slack: 100 * time.Millisecond, Retries: 3})
	d := fakeDeployment(false)
	d.Limits.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := c.Invoke(context.Background(), d, host.Request{Input: []byte{1}})
	took := time.Since(start)
	// A server that does not answer is the host's failure, not the job's
	// timeout (that is the server's to report).
	assertKind(t, err, host.ErrHost)
	assert.False(t, errors.Is(err, host.ErrTimeout))
	assert.GreaterOrEqual(t, took, 190*time.Millisecond)
	assert.Less(t, took, 2*time.Second)
	var he *host.Error
	require.True(t, errors.As(err, &he))
	assert.False(t, he.NotDelivered, "the request was delivered")
	assert.False(t, host.Retryable(err, false))
	assert.EqualValues(t, 1, f.requests.Load(), "a delivered non-pure call is not retried")
}

// The error says the server did not answer in time (once() means to add
// this; see the report).
func TestClient_SlackTimeoutMessage(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL, Slack: 50 * time.Millisecond})
	d := fakeDeployment(false)
	d.Limits.Timeout = 50 * time.Millisecond
	_, err := c.Invoke(context.Background(), d, host.Request{Input: []byte{1}})
	assertKind(t, err, host.ErrHost)
	assert.Contains(t, err.Error(), "no answer within 100ms")
}

func TestClient_BatchWarmHealth(t *testing.T) {
	s := newTestServer(t, httphost.ServerConfig{})
	c := newClient(t, s.URL, "")
	ctx := context.Background()

	trap, err := c.Deploy(ctx, host.Job{Name: "trap", Module: wat(t, "trap")})
	require.NoError(t, err)
	res := c.InvokeBatch(ctx, trap, []host.Request{{Input: []byte{1}}, {Input: []byte{2}}, {Input: nil}})
	require.Len(t, res, 3)
	for i, r := range res {
		assert.Nil(t, r.Response, "result %d", i)
		assertKind(t, r.Err, host.ErrJob)
	}

	echo, err := c.Deploy(ctx, host.Job{Name: "echo", Module: wat(t, "echo"), Limits: host.Limits{MaxInputBytes: 4}})
	require.NoError(t, err)
	reqs := []host.Request{{Input: []byte("a")}, {Input: []byte("toolong")}, {Input: []byte{}}, {Input: []byte("dcba"), InvocationID: "inv-3"}}
	res = c.InvokeBatch(ctx, echo, reqs)
	require.Len(t, res, 4)
	require.NoError(t, res[0].Err)
	assert.Equal(t, []byte("a"), res[0].Response.Output)
	assertKind(t, res[1].Err, host.ErrLimit)
	require.NoError(t, res[2].Err)
	assert.Equal(t, []byte{}, res[2].Response.Output)
	require.NoError(t, res[3].Err)
	assert.Equal(t, []byte("dcba"), res[3].Response.Output)
	assert.Equal(t, "inv-3", res[3].Response.InvocationID)
	assert.Equal(t, "loopback", res[3].Response.Region)

	// More than one round trip's worth is split, and kept in order.
	many := make([]host.Request, httphost.MaxBatch+10)
	for i := range many {
		many[i].Input = []byte{byte(i), byte(i >> 8)}
	}
	res = c.InvokeBatch(ctx, echo, many)
	require.Len(t, res, len(many))
	for i, r := range res {
		require.NoError(t, r.Err, "result %d", i)
		require.Equal(t, many[i].Input, r.Response.Output, "result %d", i)
	}

	// Warm fills the pool (PoolSize 2 in newTestServer).
	n, err := c.Warm(ctx, echo, 2)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = c.Warm(ctx, echo, 1)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 1)

	// Health after the calls above.
	before := time.Now()
	_, err = c.Invoke(ctx, echo, host.Request{Input: []byte{1}})
	require.NoError(t, err)
	h, err := c.Health(ctx, echo)
	require.NoError(t, err)
	assert.True(t, h.Healthy)
	assert.EqualValues(t, 4+len(many)+1, h.TotalInvocations)
	assert.WithinDuration(t, before, h.LastInvocation, 10*time.Second)

	// Unknown deployments.
	require.NoError(t, c.Remove(ctx, echo))
	_, err = c.Warm(ctx, echo, 1)
	assertKind(t, err, host.ErrNotFound)
	_, err = c.Health(ctx, echo)
	assertKind(t, err, host.ErrNotFound)
	res = c.InvokeBatch(ctx, echo, []host.Request{{Input: []byte{1}}, {Input: []byte{2}}})
	for _, r := range res {
		assertKind(t, r.Err, host.ErrNotFound)
	}
}

// An unhealthy answer (503 with the protocol's body) is reported, not an
// error: Client.Health parses 503 bodies for this.
func TestClient_HealthUnhealthy(t *testing.T) {
	f := newFake(t, canned(503, `{"function_id":"f-1","status":"unhealthy","error":"pool broken"}`))
	c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL, Retries: -1})
	h, err := c.Health(context.Background(), fakeDeployment(false))
	require.NoError(t, err)
	assert.False(t, h.Healthy)
	assert.Equal(t, "pool broken", h.Detail)
}

// The client sends what the protocol says: the invoke JSON with args as a
// number array, the bearer token, and the invocation id header.
func TestClient_Wire(t *testing.T) {
	var got struct {
		method, path, auth, ctype, invID, body string
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.method, got.path, got.auth = r.Method, r.URL.Path, r.Header.Get("Authorization")
		got.ctype, got.invID, got.body = r.Header.Get("Content-Type"), r.Header.Get("X-Ferry-Invocation-Id"), string(b)
		canned(200, `{"job_id":0,"result":[],"success":true,"execution_ms":0,"memory_used_mb":0}`)(w, r)
	})
	c := clientFor(t, httphost.ClientConfig{BaseURL: f.URL + "/base/", Token: "t0k"})
	r, err := c.Invoke(context.Background(), fakeDeployment(false), host.Request{Input: []byte{0, 10, 255}, InvocationID: "abc-1"})
	require.NoError(t, err)
	assert.Equal(t, []byte{}, r.Output)
	assert.Equal(t, http.MethodPost, got.method)
	assert.Equal(t, "/base/api/functions/f-1/invoke", got.path)
	assert.Equal(t, "Bearer t0k", got.auth)
	assert.Equal(t, "application/json", got.ctype)
	assert.Equal(t, "abc-1", got.invID)
	assert.JSONEq(t, `{"job_id":0,"args":[0,10,255],"invocation_id":"abc-1"}`, got.body)
	assert.False(t, strings.Contains(got.body, `"`+"AAr/"), "args must not be base64")
}

// host.Job allows names of up to 128 characters; the client must deploy
// every name the contract allows.
func TestClient_LongJobName(t *testing.T) {
	s := newTestServer(t, httphost.ServerConfig{})
	c := newClient(t, s.URL, "")
	ctx := context.Background()
	ok := strings.Repeat("j", 115) // + "-" + 12 hex digits = 128
	d, err := c.Deploy(ctx, host.Job{Name: ok, Module: wat(t, "echo")})
	require.NoError(t, err)
	assert.Len(t, d.ID, 128)

	_, err = c.Deploy(ctx, host.Job{Name: strings.Repeat("j", 128), Module: wat(t, "echo")})
	require.NoError(t, err)
}
