package service

import (
	"bytes"
	"context"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferryrun/ferry/orchestrator/route"
)

// Sampler measures local pressure every interval and serves the last
// sample from atomics, so a routing decision reads it for free.
type Sampler struct {
	inflight func() int64
	queue    func() int
	capacity float64
	memLimit float64

	cpu, mem, rss atomic.Uint64 // float64 bits; rss in bytes
}

// NewSampler returns a sampler. capacity is the number of local calls in
// flight that counts as full; memLimit the resident memory that does.
func NewSampler(inflight func() int64, queue func() int, capacity int, memLimit uint64) *Sampler {
	if capacity <= 0 {
		capacity = 4 * runtime.GOMAXPROCS(0)
	}
	if memLimit == 0 {
		memLimit = 400 << 20
	}
	if queue == nil {
		queue = func() int { return 0 }
	}
	return &Sampler{inflight: inflight, queue: queue, capacity: float64(capacity), memLimit: float64(memLimit)}
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	lastCPU, lastAt := cpuTime(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c := cpuTime()
			wall := now.Sub(lastAt).Seconds() * float64(runtime.GOMAXPROCS(0))
			if wall > 0 {
				s.cpu.Store(math.Float64bits(math.Min(1, math.Max(0, (c-lastCPU).Seconds()/wall))))
			}
			lastCPU, lastAt = c, now
			r := rssBytes()
			s.rss.Store(r)
			s.mem.Store(math.Float64bits(math.Min(1, float64(r)/s.memLimit)))
		}
	}
}

// Pressure implements route.LoadSource.
func (s *Sampler) Pressure() route.Pressure {
	return route.Pressure{
		CPU:        math.Float64frombits(s.cpu.Load()),
		Memory:     math.Float64frombits(s.mem.Load()),
		InFlight:   math.Min(1, float64(s.inflight())/s.capacity),
		QueueDepth: s.queue(),
	}
}

// RSS is the last measured resident set size in bytes.
func (s *Sampler) RSS() uint64 { return s.rss.Load() }

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes is the resident set size: /proc/self/statm where there is one
// (guest memories are mapped outside the Go heap, so Go's own numbers
// miss them), else what the Go runtime has mapped.
func rssBytes() uint64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := bytes.Fields(b)
		if len(f) > 1 {
			if pages, err := strconv.ParseUint(string(f[1]), 10, 64); err == nil {
				return pages * uint64(os.Getpagesize())
			}
		}
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return s[0].Value.Uint64()
	}
	return 0
}
