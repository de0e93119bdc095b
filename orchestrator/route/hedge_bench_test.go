package route_test

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/orchestrator/route"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// tail adds delay to a fraction of calls to a host: injected tail latency.
type tail struct {
	host.Host
	share float64
	delay time.Duration
}

func (t *tail) Invoke(ctx context.Context, d *host.Deployment, req host.Request) (*host.Response, error) {
	res, err := t.Host.Invoke(ctx, d, req)
	if rand.Float64() < t.share {
		select {
		case <-time.After(t.delay):
		case <-ctx.Done():
			return nil, &host.Error{Kind: host.ErrHost, Op: "invoke", Host: t.Name(), Err: ctx.Err()}
		}
	}
	return res, err
}

func httpRemote(b *testing.B, name string) *httphost.Client {
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := httphost.NewServer(ctx, httphost.ServerConfig{Runtime: rt, DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { ts.Close(); _ = srv.Close(ctx); _ = rt.Close(ctx) })
	c, err := httphost.NewClient(httphost.ClientConfig{BaseURL: ts.URL, Name: name, Retries: -1})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkHedging: two real HTTP hosts on loopback; the cheaper one (the
// primary) answers 2% of calls 50 ms late. Direct calls inherit its tail;
// hedged calls start the second host after about the primary's p95 and
// take the first answer. Reports p50 and p99 of sequential calls.
func BenchmarkHedging(b *testing.B) {
	a, c := httpRemote(b, "custom/a"), httpRemote(b, "custom/b")
	da := deploy(b, a, "echo", "echo")
	dc := deploy(b, c, "echo", "echo")
	for _, hedge := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "hedged"}[hedge]
		b.Run(name, func(b *testing.B) {
			j := &route.Job{Name: "echo", Pure: true, Deterministic: true, PlanHedge: true, Remote: []*route.Target{
				route.NewTarget("custom/a", &tail{Host: a, share: 0.02, delay: 50 * time.Millisecond}, da, false, 0, 0.3, 0),
				route.NewTarget("custom/b", c, dc, false, 1e-5, 0.3, 0), // 100 ms of score dearer: never the primary
			}}
			r := newRouter(b, route.Knobs{Serverless: true, Hedge: hedge, HedgeMinDelay: time.Millisecond}, nil, j)
			ex, err := route.NewExecutor(route.ExecutorConfig{Router: r})
			if err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				t := time.Now()
				if _, err := ex.Execute(context.Background(), "echo", []byte("hedge me")); err != nil {
					d := ex.Decisions().Recent(1)
					b.Fatalf("call %d: %v (decision %+v)", len(lat), err, d)
				}
				lat = append(lat, time.Since(t))
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds())
			}
			b.ReportMetric(pct(0.5), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
		})
	}
}
