package benchmarks

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/hosts/workers/shim"
	"github.com/ferryrun/ferry/hosts/workers/workerd"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// BenchmarkWorkerd runs Ferry's Worker in a local workerd (the npm
// package's binary) on loopback, for the trivial echo job and for
// incredible-squaring (the Go reactor), and reports:
//
//   - cold-ms: the first request after workerd starts (isolate, module
//     instantiation, the Go runtime's start), median over b.N restarts;
//     start-ms is workerd's own start until it answers;
//   - p50-µs and p99-µs: warm calls one after another;
//   - req/s at concurrency 32.
//
// Calls go through the HTTP client host, as the orchestrator's do. The
// load generator and workerd share the machine's cores.
func BenchmarkWorkerd(b *testing.B) {
	bin, err := workerd.Find()
	if err != nil {
		b.Skip(err)
	}
	echo, err := examples.WAT("echo")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	square, err := examples.BuildGo(ctx, "incredible-squaring", examples.Reactor)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		wasm []byte
		in   string
	}{
		{"echo", echo, "ferry loopback!!"},
		{"incredible-squaring", square, "12345"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			job := host.Job{Name: tc.name, Module: tc.wasm, Digest: modstore.Digest(tc.wasm), Pure: true}
			w, err := shim.Build(shim.Spec{Script: shim.ScriptName("ferry-", tc.name), FunctionID: tc.name, Job: job})
			if err != nil {
				b.Fatal(err)
			}
			d := &host.Deployment{ID: tc.name, Job: tc.name, Digest: job.Digest, Pure: true}
			req := host.Request{Input: []byte(tc.in)}
			var colds, starts []float64
			var proc *workerd.Process
			var client *httphost.Client
			for i := 0; i < b.N; i++ {
				if proc != nil {
					_ = proc.Stop(5 * time.Second)
				}
				addr, err := workerd.FreeAddr()
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				proc, err = workerd.Start(ctx, workerd.Config{Addr: addr, Workers: []workerd.Worker{*w}},
					workerd.Options{Binary: bin, Dir: b.TempDir(), Log: io.Discard})
				if err != nil {
					b.Fatal(err)
				}
				starts = append(starts, ms(time.Since(t0)))
				client, err = httphost.NewClient(httphost.ClientConfig{BaseURL: proc.URL(), Name: "workerd", Retries: -1})
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				res, err := client.Invoke(ctx, d, req)
				if err != nil {
					b.Fatal(err)
				}
				if !res.Cold {
					b.Fatal("the first call after start was not cold")
				}
				colds = append(colds, ms(time.Since(t1)))
			}
			defer func() { _ = proc.Stop(5 * time.Second) }()
			b.StopTimer()

			const warm = 2000
			lat := make([]time.Duration, 0, warm)
			for range warm {
				t := time.Now()
				if _, err := client.Invoke(ctx, d, req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			slices.Sort(lat)

			const conc, total = 32, 8000
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failed error
			t := time.Now()
			for g := range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range total / conc {
						if _, err := client.Invoke(ctx, d, req); err != nil {
							mu.Lock()
							failed = fmt.Errorf("worker %d: %w", g, err)
							mu.Unlock()
							return
						}
					}
				}()
			}
			wg.Wait()
			if failed != nil {
				b.Fatal(failed)
			}
			rps := float64(total) / time.Since(t).Seconds()

			b.ReportMetric(median(starts), "start-ms")
			b.ReportMetric(median(colds), "cold-ms")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(rps, "req/s@32")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
