package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/orchestrator/queue"
	"github.com/ferryrun/ferry/orchestrator/route"
)

// Metrics are the orchestrator's Prometheus metrics; it is also the
// executor's Observer.
type Metrics struct {
	reg         *prometheus.Registry
	invocations *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	costUSD     *prometheus.CounterVec
	failovers   *prometheus.CounterVec
	hedges      *prometheus.CounterVec
	batched     *prometheus.CounterVec
}

// NewMetrics registers the metrics, with gauges read from router at scrape
// time (breaker states).
func NewMetrics(reg *prometheus.Registry, router *route.Router, q *queue.Queue) *Metrics {
	m := &Metrics{
		reg: reg,
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_invocations_total", Help: "Calls by job, the target that answered (or none) and outcome.",
		}, []string{"job", "target", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_invocation_seconds", Help: "Call latency as callers saw it (routing, failover, hedging included).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}, []string{"job", "target"}),
		costUSD: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_cost_usd_total", Help: "Expected cost of answered calls, by job and target (the plan's per-call estimate).",
		}, []string{"job", "target"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_failovers_total", Help: "Calls answered by a target after an earlier one failed.",
		}, []string{"job"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_hedged_total", Help: "Hedged calls by which copy won: primary or hedge.",
		}, []string{"job", "winner"}),
	}
	m.batched = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_batched_attempts_total", Help: "Attempts that shared a round trip with other calls (adaptive batching), by job and target.",
	}, []string{"job", "target"})
	reg.MustRegister(m.invocations, m.seconds, m.costUSD, m.failovers, m.hedges, m.batched, &breakerCollector{router: router})
	if q != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ferry_queue_queued", Help: "Submitted calls waiting to run.",
		}, func() float64 { n, _ := q.Depth(); return float64(n) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ferry_queue_running", Help: "Submitted calls running now.",
		}, func() float64 { _, n := q.Depth(); return float64(n) }))
	}
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// Registry returns the registry, for adding gauges.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Call implements route.Observer.
func (m *Metrics) Call(d *route.Decision, res *route.Result, err error) {
	target, outcome := "none", "ok"
	if err != nil {
		switch {
		case host.IsJobFault(err):
			outcome = "job_error"
		default:
			outcome = "host_error"
		}
	} else {
		target = res.Target
		m.costUSD.WithLabelValues(d.Job, target).Add(res.CostUSD)
		if res.Attempts > 1 && d.Strategy == route.Direct {
			m.failovers.WithLabelValues(d.Job).Inc()
		}
		if d.Strategy == route.Hedged && len(d.Chain) > 0 {
			winner := "primary"
			if res.Target != d.Chain[0].Target {
				winner = "hedge"
			}
			m.hedges.WithLabelValues(d.Job, winner).Inc()
		}
	}
	for _, a := range d.Attempts {
		if a.Batch > 1 {
			m.batched.WithLabelValues(d.Job, a.Target).Inc()
		}
	}
	m.invocations.WithLabelValues(d.Job, target, outcome).Inc()
	m.seconds.WithLabelValues(d.Job, target).Observe(d.LatencyMs / 1e3)
}

// breakerCollector reports every target's breaker state at scrape time:
// 0 closed, 1 half-open, 2 open.
type breakerCollector struct{ router *route.Router }

var breakerDesc = prometheus.NewDesc("ferry_breaker_state", "Circuit breaker state per job and target: 0 closed, 1 half-open, 2 open.", []string{"job", "target"}, nil)

func (c *breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerDesc }

func (c *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.router.Jobs() {
		j, _ := c.router.Job(name)
		for _, t := range j.Remote {
			v := map[route.BreakerState]float64{route.Closed: 0, route.HalfOpen: 1, route.Open: 2}[t.Breaker()]
			ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, v, name, t.ID)
		}
	}
}
