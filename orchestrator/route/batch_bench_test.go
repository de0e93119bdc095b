package route_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferryrun/ferry/orchestrator/route"
)

// BenchmarkBatching: 64 callers send small calls to one real HTTP host on
// loopback, each call alone or batched. Reports calls/s and the average
// batch size.
func BenchmarkBatching(b *testing.B) {
	c := httpRemote(b, "custom/a")
	d := deploy(b, c, "echo", "echo")
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "alone", true: "batched"}[on]
		b.Run(name, func(b *testing.B) {
			j := &route.Job{Name: "echo", Pure: true, Deterministic: true,
				Remote: []*route.Target{route.NewTarget("custom/a", c, d, false, 0, 0.3, 0)}}
			r := newRouter(b, route.Knobs{Serverless: true, Batch: route.BatchConfig{Enabled: on}}, nil, j)
			ex, err := route.NewExecutor(route.ExecutorConfig{Router: r})
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(32) // 64 callers on 2 cores
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				in := []byte("a small call")
				for pb.Next() {
					if _, err := ex.Execute(context.Background(), "echo", in); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
			if st := j.Remote[0].Stats().Batching; st != nil && st.Batches > 0 {
				b.ReportMetric(float64(st.Calls)/float64(st.Batches), "calls/batch")
			}
		})
	}
}
