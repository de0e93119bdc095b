package route_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/hosts/local"
	"github.com/ferryrun/ferry/orchestrator/route"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// env is a local host and a real HTTP host (server in process, client
// over loopback) with the same modules deployed on both.
type env struct {
	local  *local.Host
	remote *httphost.Client
	server *httptest.Server
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	lh, err := local.New(local.Config{Runtime: rt, PoolSize: 2})
	require.NoError(t, err)
	srt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	srv, err := httphost.NewServer(ctx, httphost.ServerConfig{Runtime: srt, DataDir: t.TempDir(), PoolSize: 2})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	c, err := httphost.NewClient(httphost.ClientConfig{BaseURL: ts.URL, Name: "custom/test", Retries: -1})
	require.NoError(t, err)
	t.Cleanup(func() {
		ts.Close()
		_ = srv.Close(ctx)
		_ = lh.Close(ctx)
		_ = rt.Close(ctx)
		_ = srt.Close(ctx)
	})
	return &env{local: lh, remote: c, server: ts}
}

func deploy(t testing.TB, h host.Host, name, example string) *host.Deployment {
	t.Helper()
	wasm, err := examples.WAT(example)
	require.NoError(t, err)
	d, err := h.Deploy(context.Background(), host.Job{Name: name, Module: wasm, Digest: modstore.Digest(wasm)})
	require.NoError(t, err)
	return d
}

// slow delays every call to a host by delay (after the call, so the work
// is really done there): injected tail latency.
type slow struct {
	host.Host
	delay time.Duration
	calls atomic.Int64
}

func (s *slow) Invoke(ctx context.Context, d *host.Deployment, req host.Request) (*host.Response, error) {
	s.calls.Add(1)
	res, err := s.Host.Invoke(ctx, d, req)
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, &host.Error{Kind: host.ErrHost, Op: "invoke", Host: s.Name(), Err: ctx.Err()}
	}
	return res, err
}

type fixedLoad struct{ p route.Pressure }

func (f *fixedLoad) Pressure() route.Pressure { return f.p }

// job builds a routing table for example on local and remote, with priors
// in ms and cost per call.
func (e *env) job(t testing.TB, name, example string, localMs, remoteMs, remoteCost float64) *route.Job {
	dl := deploy(t, e.local, name, example)
	dr := deploy(t, e.remote, name, example)
	return &route.Job{
		Name: name, Pure: true, Deterministic: true, PlanHedge: true,
		Local:  route.NewTarget(route.LocalID, e.local, dl, true, 0, localMs, 0),
		Remote: []*route.Target{route.NewTarget("custom/test", e.remote, dr, false, remoteCost, remoteMs, 0)},
	}
}

func newRouter(t testing.TB, k route.Knobs, load route.LoadSource, jobs ...*route.Job) *route.Router {
	t.Helper()
	r, err := route.NewRouter(k, load, jobs)
	require.NoError(t, err)
	return r
}

func chainOf(d *route.Decision) []string {
	var out []string
	for _, c := range d.Chain {
		out = append(out, c.Target)
	}
	return out
}

func TestDecide_Knobs(t *testing.T) {
	e := newEnv(t)
	on := route.Knobs{Serverless: true, FallbackToVM: true}
	cheap := 1e-9
	for _, tc := range []struct {
		name     string
		knobs    route.Knobs
		load     route.Pressure
		force    bool
		localMs  float64
		remoteMs float64
		input    int
		chain    []string
		excluded string
		reason   string
	}{
		{name: "local is faster", knobs: on, localMs: 1, remoteMs: 5, chain: []string{"local", "custom/test"}},
		{name: "remote is faster", knobs: on, localMs: 50, remoteMs: 5, chain: []string{"custom/test", "local"}},
		{name: "serverless off", knobs: route.Knobs{FallbackToVM: true}, localMs: 50, remoteMs: 5,
			chain: []string{"local"}, reason: "serverless is off"},
		{name: "no fallback to the VM", knobs: route.Knobs{Serverless: true}, localMs: 50, remoteMs: 5,
			chain: []string{"custom/test"}},
		{name: "force_serverless", knobs: on, force: true, localMs: 1, remoteMs: 5,
			chain: []string{"custom/test", "local"}, reason: "force_serverless"},
		{name: "force_serverless without fallback", knobs: route.Knobs{Serverless: true}, force: true, localMs: 1, remoteMs: 5,
			chain: []string{"custom/test"}},
		{name: "local pressure sends remote", knobs: on, load: route.Pressure{CPU: 0.9}, localMs: 1, remoteMs: 5,
			chain: []string{"custom/test", "local"}},
		{name: "queue depth sends remote", knobs: on, load: route.Pressure{QueueDepth: 100}, localMs: 1, remoteMs: 5,
			chain: []string{"custom/test", "local"}},
		{name: "cost threshold", knobs: route.Knobs{Serverless: true, FallbackToVM: true, CostThresholdUSD: &cheap},
			localMs: 50, remoteMs: 5, chain: []string{"local"}, excluded: "cost"},
		{name: "latency threshold", knobs: route.Knobs{Serverless: true, FallbackToVM: true, LatencyThresholdMs: new(3.0)},
			localMs: 50, remoteMs: 5, chain: []string{"local"}, excluded: "latency"},
		{name: "payload over the remote's limit", knobs: on, localMs: 50, remoteMs: 5, input: 7 << 20,
			chain: []string{"local"}, excluded: "payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := e.job(t, "echo", "echo", tc.localMs, tc.remoteMs, 1e-7)
			j.Force = tc.force
			j.Local.MaxInputBytes = 8 << 20
			r := newRouter(t, tc.knobs, &fixedLoad{tc.load}, j)
			d, err := r.Decide("echo", tc.input)
			require.NoError(t, err)
			assert.Equal(t, tc.chain, chainOf(d), "%v", d.Reasons)
			if tc.excluded != "" {
				require.NotEmpty(t, d.Excluded)
				assert.Contains(t, d.Excluded[0].Reason, tc.excluded)
			}
			if tc.reason != "" {
				assert.Contains(t, d.Reasons[0], tc.reason)
			}
			assert.NotEmpty(t, d.ID)
		})
	}
	_, err := newRouter(t, on, nil, e.job(t, "echo", "echo", 1, 1, 0)).Decide("nope", 0)
	assert.ErrorIs(t, err, route.ErrUnknownJob)
}

func TestDecide_LearnsLatency(t *testing.T) {
	e := newEnv(t)
	j := e.job(t, "echo", "echo", 5, 4, 0) // the plan guesses remote is faster
	r := newRouter(t, route.Knobs{Serverless: true, FallbackToVM: true}, nil, j)
	d, err := r.Decide("echo", 10)
	require.NoError(t, err)
	assert.Equal(t, "custom/test", d.Chain[0].Target)
	// Calls show local at 0.01 ms and remote at 20 ms.
	for range 20 {
		j.Local.Observe(10*time.Microsecond, false)
		j.Remote[0].Observe(20*time.Millisecond, false)
	}
	d, err = r.Decide("echo", 10)
	require.NoError(t, err)
	assert.Equal(t, route.LocalID, d.Chain[0].Target, "observed latency overrides the plan's guess")
	// Cold starts count in proportion to how often they happen.
	st := j.Remote[0].Stats()
	assert.InDelta(t, 20, st.LatencyMs, 1)
	assert.Zero(t, st.ColdShare)
}

func TestExecute_DirectAndJobErrors(t *testing.T) {
	e := newEnv(t)
	echo := e.job(t, "echo", "echo", 1, 5, 0)
	trap := e.job(t, "trap", "trap", 1, 5, 0)
	r := newRouter(t, route.Knobs{Serverless: true, FallbackToVM: true}, nil, echo, trap)
	ex, err := route.NewExecutor(route.ExecutorConfig{Router: r})
	require.NoError(t, err)
	ctx := context.Background()

	res, err := ex.Execute(ctx, "echo", []byte("hi"))
	require.NoError(t, err)
	assert.Equal(t, "hi", string(res.Output))
	assert.Equal(t, route.LocalID, res.Target)
	d, ok := ex.Decisions().Get(res.DecisionID)
	require.True(t, ok)
	assert.Equal(t, route.LocalID, d.RanOn)
	require.Len(t, d.Attempts, 1)
	assert.Equal(t, "ok", d.Attempts[0].Outcome)

	// A job's own failure is not failed over: the same module fails the
	// same way everywhere.
	_, err = ex.Execute(ctx, "trap", nil)
	require.ErrorIs(t, err, host.ErrJob)
	recent := ex.Decisions().Recent(1)
	require.Len(t, recent, 1)
	assert.Len(t, recent[0].Attempts, 1, "one attempt only")
	assert.Equal(t, "job_error", recent[0].Attempts[0].Outcome)
	assert.Equal(t, route.Closed, trap.Local.Breaker(), "a job error is not the host's fault")
}

func TestExecute_FailoverToLocal(t *testing.T) {
	e := newEnv(t)
	j := e.job(t, "echo", "echo", 50, 1, 0)
	j.Force = true // remote first on every call, whatever local learns
	r := newRouter(t, route.Knobs{Serverless: true, FallbackToVM: true}, nil, j)
	ex, err := route.NewExecutor(route.ExecutorConfig{Router: r})
	require.NoError(t, err)
	ctx := context.Background()
	res, err := ex.Execute(ctx, "echo", []byte("a"))
	require.NoError(t, err)
	assert.Equal(t, "custom/test", res.Target)

	e.server.Close() // the remote host dies
	for i := range 8 {
		res, err := ex.Execute(ctx, "echo", []byte{byte(i)})
		require.NoError(t, err, "every call completes")
		assert.Equal(t, []byte{byte(i)}, res.Output)
		assert.Equal(t, route.LocalID, res.Target)
	}
	assert.Equal(t, route.Open, j.Remote[0].Breaker(), "after repeated failures the breaker opens")
	d, err := r.Decide("echo", 1)
	require.NoError(t, err)
	assert.Equal(t, []string{route.LocalID}, chainOf(d))
	require.NotEmpty(t, d.Excluded)
	assert.Contains(t, d.Excluded[0].Reason, "circuit breaker")

	// Without fallback_to_vm the failure reaches the caller.
	r2 := newRouter(t, route.Knobs{Serverless: true}, nil, &route.Job{Name: "echo", Pure: true,
		Remote: []*route.Target{route.NewTarget("custom/dead", e.remote, j.Remote[0].Dep, false, 0, 1, 0)}})
	ex2, err := route.NewExecutor(route.ExecutorConfig{Router: r2})
	require.NoError(t, err)
	_, err = ex2.Execute(ctx, "echo", []byte("x"))
	require.Error(t, err)
	assert.ErrorIs(t, err, host.ErrHost)
}

func TestExecute_Hedged(t *testing.T) {
	e := newEnv(t)
	j := e.job(t, "echo", "echo", 50, 1, 0)
	// The remote answers, but 300 ms late: injected tail latency.
	sl := &slow{Host: e.remote, delay: 300 * time.Millisecond}
	j.Remote[0].Host = sl
	r := newRouter(t, route.Knobs{Serverless: true, FallbackToVM: true, Hedge: true, HedgeMinDelay: 5 * time.Millisecond}, nil, j)
	ex, err := route.NewExecutor(route.ExecutorConfig{Router: r})
	require.NoError(t, err)

	start := time.Now()
	res, err := ex.Execute(context.Background(), "echo", []byte("hedge"))
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 250*time.Millisecond, "the hedge answered before the slow primary")
	assert.Equal(t, route.LocalID, res.Target)
	assert.Equal(t, "hedge", string(res.Output))
	d, _ := ex.Decisions().Get(res.DecisionID)
	assert.Equal(t, route.Hedged, d.Strategy)
	outcomes := map[string]string{}
	for _, a := range d.Attempts {
		outcomes[a.Target] = a.Outcome
	}
	assert.Equal(t, map[string]string{"local": "ok", "custom/test": "canceled"}, outcomes, "the loser is canceled")
	assert.Equal(t, route.Closed, j.Remote[0].Breaker(), "a canceled loser is not a failure")
}

func TestDecide_NeverHedgesStatefulOrNondeterministic(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		mod  func(*route.Job)
	}{
		{"stateful", func(j *route.Job) { j.Stateful, j.Pure = true, false }},
		{"nondeterministic", func(j *route.Job) { j.Deterministic = false }},
		{"not pure", func(j *route.Job) { j.Pure = false }},
		{"plan says no", func(j *route.Job) { j.PlanHedge = false }},
		{"forced remote: local is only the fallback", func(j *route.Job) { j.Force = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := e.job(t, "echo", "echo", 50, 1, 0)
			tc.mod(j)
			r := newRouter(t, route.Knobs{Serverless: true, FallbackToVM: true, Hedge: true}, nil, j)
			d, err := r.Decide("echo", 1)
			require.NoError(t, err)
			assert.Equal(t, route.Direct, d.Strategy)
		})
	}
}

func TestExecute_ConcurrentWithFailures(t *testing.T) {
	e := newEnv(t)
	j := e.job(t, "echo", "echo", 50, 1, 0)
	r := newRouter(t, route.Knobs{Serverless: true, FallbackToVM: true, Hedge: true}, nil, j)
	ex, err := route.NewExecutor(route.ExecutorConfig{Router: r})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 200 {
		if i == 50 {
			e.server.CloseClientConnections()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := []byte{byte(i), byte(i >> 8)}
			res, err := ex.Execute(context.Background(), "echo", in)
			if err != nil || string(res.Output) != string(in) {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, failed.Load(), "no call is lost or crossed")
}

func TestBreaker(t *testing.T) {
	e := newEnv(t)
	d := deploy(t, e.local, "echo", "echo")
	tg := route.NewTarget("x", e.local, d, false, 0, 1, 0)
	for range 4 {
		tg.Fail()
	}
	assert.Equal(t, route.Closed, tg.Breaker(), "under the threshold")
	tg.Fail()
	assert.Equal(t, route.Open, tg.Breaker())
	tg.Observe(time.Millisecond, false)
	assert.Equal(t, route.Closed, tg.Breaker(), "a success closes it")
}

// BenchmarkDecide is one routing decision for a job with a local and two
// remote targets (target: ≤ 5 µs).
func BenchmarkDecide(b *testing.B) {
	e := newEnv(b)
	j := e.job(b, "echo", "echo", 1, 5, 1e-7)
	j.Remote = append(j.Remote, route.NewTarget("custom/other", e.remote, j.Remote[0].Dep, false, 2e-7, 8, 100))
	r := newRouter(b, route.Knobs{Serverless: true, FallbackToVM: true, Hedge: true}, &fixedLoad{route.Pressure{CPU: 0.3}}, j)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Decide("echo", 1024); err != nil {
			b.Fatal(err)
		}
	}
}
