package route

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryrun/ferry/hosts/host"
)

// LocalID is the target ID of the local host, as in the plan.
const LocalID = "local"

// Target is one place a job can run: a host and the job's deployment on it.
type Target struct {
	// ID is the plan's target ID: "local" or a provider ID
	// ("aws-lambda/us-east-1", "custom/faas.example.com").
	ID    string
	Host  host.Host
	Dep   *host.Deployment
	Local bool
	// CostUSD is the expected cost of one call (the plan's estimate).
	CostUSD float64
	// MaxInputBytes is the largest input the target takes (0: no limit
	// known beyond the deployment's).
	MaxInputBytes int

	lat     ewma // warm call latency, ms, as the caller saw it
	coldLat ewma // cold call latency, ms
	coldP   ewma // fraction of calls that were cold
	calls   atomic.Int64
	fails   atomic.Int64
	brk     breaker
	batch   *batcher // nil: every call goes alone
}

// NewTarget returns a target with latency priors (ms) from the plan: warm
// latency and the extra a cold start costs.
func NewTarget(id string, h host.Host, d *host.Deployment, local bool, costUSD, warmMs, coldMs float64) *Target {
	t := &Target{ID: id, Host: h, Dep: d, Local: local, CostUSD: costUSD}
	if d != nil {
		t.MaxInputBytes = d.Limits.MaxInputBytes
	}
	t.lat.init(math.Max(warmMs, 0.001))
	t.coldLat.init(math.Max(warmMs+coldMs, 0.001))
	t.coldP.init(0)
	t.brk.init(defaultBreakerFailures, defaultBreakerCooldown)
	return t
}

// Observe records a finished call: its latency and whether it was cold.
func (t *Target) Observe(d time.Duration, cold bool) {
	ms := float64(d) / float64(time.Millisecond)
	t.calls.Add(1)
	if cold {
		t.coldLat.add(ms)
		t.coldP.add(1)
	} else {
		t.lat.add(ms)
		t.coldP.add(0)
	}
	t.brk.success()
}

// Fail records a call the target failed (a host failure, not the job's).
func (t *Target) Fail() {
	t.fails.Add(1)
	t.brk.failure(time.Now())
}

// ExpectedMs is the expected latency of the next call: warm latency plus
// the chance of a cold start times its extra cost.
func (t *Target) ExpectedMs() float64 {
	warm := t.lat.mean()
	p := t.coldP.mean()
	return warm + p*math.Max(t.coldLat.mean()-warm, 0)
}

// HedgeAfterMs is how long to wait on this target before hedging: about
// its 95th percentile (mean plus two deviations, as TCP estimates RTO).
func (t *Target) HedgeAfterMs() float64 { return t.lat.mean() + 2*t.lat.dev() }

// Stats is a snapshot of a target's counters and estimates.
type Stats struct {
	ID         string  `json:"id"`
	Calls      int64   `json:"calls"`
	Failures   int64   `json:"failures"`
	LatencyMs  float64 `json:"latency_ms"`
	DevMs      float64 `json:"latency_dev_ms"`
	ColdMs     float64 `json:"cold_ms"`
	ColdShare  float64 `json:"cold_share"`
	ExpectedMs float64 `json:"expected_ms"`
	CostUSD    float64 `json:"cost_usd"`
	Breaker    string  `json:"breaker"`
	// Batching is set for targets that batch small calls.
	Batching *BatchStats `json:"batching,omitempty"`
}

// Stats returns a snapshot.
func (t *Target) Stats() Stats {
	return Stats{ID: t.ID, Calls: t.calls.Load(), Failures: t.fails.Load(), LatencyMs: t.lat.mean(), DevMs: t.lat.dev(),
		ColdMs: t.coldLat.mean(), ColdShare: t.coldP.mean(), ExpectedMs: t.ExpectedMs(), CostUSD: t.CostUSD,
		Breaker: t.brk.state(time.Now()).String(), Batching: t.batch.stats()}
}

// ewma is an exponentially weighted mean and mean deviation, safe for
// concurrent use. Readers take a lock too: it is uncontended next to a
// call's cost, and keeps the pair consistent.
type ewma struct {
	mu      sync.Mutex
	m, d    float64
	started bool
}

const ewmaAlpha = 0.2

func (e *ewma) init(v float64) { e.m, e.d = v, v/2 }

func (e *ewma) add(v float64) {
	e.mu.Lock()
	if !e.started {
		// The first observation replaces the prior.
		e.m, e.d, e.started = v, v/2, true
	} else {
		e.d += ewmaAlpha * (math.Abs(v-e.m) - e.d)
		e.m += ewmaAlpha * (v - e.m)
	}
	e.mu.Unlock()
}

func (e *ewma) mean() float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m
}

func (e *ewma) dev() float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.d
}

// Circuit breaker defaults: open after 5 consecutive host failures, stay
// open 2 s at first, doubling up to 1 min while probes keep failing.
const (
	defaultBreakerFailures = 5
	defaultBreakerCooldown = 2 * time.Second
	maxBreakerCooldown     = time.Minute
)

// BreakerState is a circuit breaker's state.
type BreakerState int

// Breaker states.
const (
	Closed   BreakerState = iota // calls flow
	Open                         // calls are not sent until the cooldown ends
	HalfOpen                     // one probe call is allowed
)

func (s BreakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// breaker is a consecutive-failure circuit breaker.
type breaker struct {
	mu        sync.Mutex
	threshold int
	base      time.Duration
	cooldown  time.Duration
	fails     int
	openUntil time.Time
	probing   bool
}

func (b *breaker) init(threshold int, cooldown time.Duration) {
	b.threshold, b.base, b.cooldown = threshold, cooldown, cooldown
}

func (b *breaker) state(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateLocked(now)
}

func (b *breaker) stateLocked(now time.Time) BreakerState {
	switch {
	case b.fails < b.threshold:
		return Closed
	case now.Before(b.openUntil):
		return Open
	default:
		return HalfOpen
	}
}

// allow reports whether a call may be sent now; in half-open state only
// one probe at a time is.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.stateLocked(now) {
	case Closed:
		return true
	case HalfOpen:
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
	return false
}

func (b *breaker) success() {
	b.mu.Lock()
	b.fails, b.probing, b.cooldown = 0, false, b.base
	b.mu.Unlock()
}

func (b *breaker) failure(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasProbe := b.probing
	b.probing = false
	b.fails++
	if b.fails < b.threshold {
		return
	}
	if wasProbe {
		b.cooldown = min(2*b.cooldown, maxBreakerCooldown)
	}
	b.openUntil = now.Add(b.cooldown)
}

// Breaker returns the target's breaker state now.
func (t *Target) Breaker() BreakerState { return t.brk.state(time.Now()) }

// Reached records a call the host handled although the job failed: the
// host is up, so the breaker closes, but the latency is not the job's
// normal latency and is not learned.
func (t *Target) Reached() { t.brk.success() }

// Abandon records a call given up without a verdict (a hedge's loser, a
// caller that went away): a half-open probe slot is released.
func (t *Target) Abandon() {
	t.brk.mu.Lock()
	t.brk.probing = false
	t.brk.mu.Unlock()
}
