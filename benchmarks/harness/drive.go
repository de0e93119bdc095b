package harness

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// callFunc makes one call and returns its answer.
type callFunc func(ctx context.Context) ([]byte, error)

// quantile of sorted durations, in µs.
func quantileUs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(q*float64(len(sorted))))
	return float64(sorted[i].Nanoseconds()) / 1e3
}

func medianMs(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return quantileUs(s, 0.5) / 1e3
}

// sequential makes n calls one after another, or as many as fit in
// budget (at least minCalls), and returns their sorted latencies and the
// last answer: a job that runs for a second a call (nbody on the
// interpreter) does not hold the run for a thousand seconds.
func sequential(ctx context.Context, n int, budget time.Duration, call callFunc) ([]time.Duration, []byte, error) {
	const minCalls = 20
	lat := make([]time.Duration, 0, n)
	var out []byte
	start := time.Now()
	for i := range n {
		if i >= minCalls && time.Since(start) > budget {
			break
		}
		t := time.Now()
		o, err := call(ctx)
		if err != nil {
			return nil, nil, err
		}
		lat = append(lat, time.Since(t))
		out = o
	}
	slices.Sort(lat)
	return lat, out, nil
}

// closedLoop runs conc callers, each calling as soon as its last call
// returned, for d.
func closedLoop(ctx context.Context, conc int, d time.Duration, call callFunc) (Load, error) {
	return drive(ctx, conc, d, 0, call)
}

// drive runs conc callers for d. With rate > 0 calls are due at that rate
// in total (open loop): a slow call does not slow the others' arrivals.
// Latency counts from each call's start, not from when it was due: Go's
// timers on Linux overshoot short sleeps by up to a millisecond, which
// would swamp sub-millisecond calls. A call that had to wait for an
// instance shows that in its own time (and as a pool miss).
func drive(ctx context.Context, conc int, d time.Duration, rate float64, call callFunc) (Load, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		all   []time.Duration
		first error
		seq   atomic.Int64
	)
	start := time.Now()
	end := start.Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1024)
			for {
				due := time.Now()
				if rate > 0 {
					k := seq.Add(1) - 1
					due = start.Add(time.Duration(float64(k) / rate * float64(time.Second)))
					if due.After(end) {
						break
					}
					if w := time.Until(due); w > 0 {
						time.Sleep(w)
					}
				} else if due.After(end) {
					break
				}
				began := time.Now()
				if _, err := call(ctx); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(began))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return Load{}, fmt.Errorf("at concurrency %d: %w", conc, first)
	}
	slices.Sort(all)
	return Load{Concurrency: conc, CallsPerSec: float64(len(all)) / elapsed.Seconds(),
		P50Us: quantileUs(all, 0.5), P99Us: quantileUs(all, 0.99)}, nil
}

// loads runs closedLoop at each of o's concurrency levels, lowest first.
// A level whose calls fail (a job past its time limit when 32 callers
// share two cores) is kept with its Error, and the higher levels are not
// run: the numbers below it still stand. before, when set, runs ahead of
// each level.
func loads(ctx context.Context, o *Options, call callFunc, before func(c int) error) []Load {
	var out []Load
	level := func(c int) (Load, error) {
		if before != nil {
			if err := before(c); err != nil {
				return Load{}, err
			}
		}
		return closedLoop(ctx, c, o.Duration, call)
	}
	for _, c := range slices.Sorted(slices.Values(o.Concurrency)) {
		l, err := level(c)
		if err != nil {
			out = append(out, Load{Concurrency: c, Error: err.Error()})
			break
		}
		out = append(out, l)
	}
	return out
}
