package queue_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryrun/ferry/orchestrator/queue"
)

// BenchmarkQueue_SubmitAndRun submits to a queue in a bbolt file on disk
// (every commit fsynced) with a runner that answers from memory. ns/op is one Submit; submissions/s counts until the
// last Submit returned, runs/s until the last outcome was stored.
func BenchmarkQueue_SubmitAndRun(b *testing.B) {
	input := []byte(`{"n":12345}`)
	run := func(_ context.Context, _ *queue.Invocation, in []byte) queue.Outcome {
		return queue.Outcome{Output: in, RanOn: "local"}
	}
	start := func(b *testing.B, workers int) *queue.Queue {
		db := openDB(b, filepath.Join(b.TempDir(), "ferry.db"))
		q := newQueue(b, db, queue.Config{MaxPending: 1 << 30, Workers: workers})
		if err := q.Start(context.Background(), run, nil); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		return q
	}
	report := func(b *testing.B, q *queue.Queue, n int64, began time.Time) {
		b.StopTimer() // ns/op is one Submit, without the drain
		b.ReportMetric(float64(n)/time.Since(began).Seconds(), "submissions/s")
		for {
			queued, running := q.Depth()
			if queued+running == 0 {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.ReportMetric(float64(n)/time.Since(began).Seconds(), "runs/s")
	}

	b.Run("serial", func(b *testing.B) {
		q := start(b, 0)
		var n int64
		began := time.Now()
		for b.Loop() {
			if _, _, err := q.Submit(context.Background(), "echo", input, ""); err != nil {
				b.Fatal(err)
			}
			n++
		}
		report(b, q, n, began)
	})
	// 8 × GOMAXPROCS submitters, as from an API under load. Each worker
	// waits for one commit per run (its outcome and its next claim), so
	// runs/s grows with workers.
	for _, workers := range []int{0, 32} {
		name := "parallel"
		if workers > 0 {
			name = fmt.Sprintf("parallel/workers=%d", workers)
		}
		b.Run(name, func(b *testing.B) {
			q := start(b, workers)
			b.SetParallelism(8)
			var n atomic.Int64
			began := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := q.Submit(context.Background(), "echo", input, ""); err != nil {
						b.Error(err)
						return
					}
					n.Add(1)
				}
			})
			report(b, q, n.Load(), began)
		})
	}
}
