package httphost

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Invocation outcomes as metric labels: "ok", "rejected" (a bad request),
// or the runtime's failure kind (trap, timeout, memory_limit, host, …).
const (
	outcomeOK       = "ok"
	outcomeRejected = "rejected"
)

type metrics struct {
	reg          *prometheus.Registry
	invocations  *prometheus.CounterVec
	seconds      *prometheus.HistogramVec
	colds        *prometheus.CounterVec
	inflight     prometheus.Gauge
	functions    prometheus.Gauge
	deploys      prometheus.Counter
	unauthorized prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_invocations_total", Help: "Invocations by function and outcome (ok, rejected, or the failure's kind).",
		}, []string{"function", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_host_invocation_seconds", Help: "Time from a slot being free to the job's answer, by function.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}, []string{"function"}),
		colds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_cold_starts_total", Help: "Invocations that had to instantiate the module first.",
		}, []string{"function"}),
		inflight:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_host_inflight", Help: "Invocations running now."}),
		functions:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_host_functions", Help: "Functions deployed."}),
		deploys:      prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_host_deploys_total", Help: "Successful deployments."}),
		unauthorized: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_host_unauthorized_total", Help: "Requests refused for a missing or wrong token."}),
	}
	reg.MustRegister(m.invocations, m.seconds, m.colds, m.inflight, m.functions, m.deploys, m.unauthorized)
	// A registry the caller passed may already carry these.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// funcMetrics caches one function's metric children, so the hot path does
// no label lookups.
type funcMetrics struct {
	m        *metrics
	id       string
	seconds  prometheus.Observer
	colds    prometheus.Counter
	mu       sync.Mutex
	outcomes map[string]prometheus.Counter
}

func (m *metrics) function(id string) *funcMetrics {
	return &funcMetrics{m: m, id: id, seconds: m.seconds.WithLabelValues(id), colds: m.colds.WithLabelValues(id),
		outcomes: map[string]prometheus.Counter{outcomeOK: m.invocations.WithLabelValues(id, outcomeOK)}}
}

func (f *funcMetrics) outcome(kind string) {
	f.mu.Lock()
	c := f.outcomes[kind]
	if c == nil {
		c = f.m.invocations.WithLabelValues(f.id, kind)
		f.outcomes[kind] = c
	}
	f.mu.Unlock()
	c.Inc()
}

// forget drops a deleted function's series.
func (m *metrics) forget(id string) {
	m.invocations.DeletePartialMatch(prometheus.Labels{"function": id})
	m.seconds.DeleteLabelValues(id)
	m.colds.DeleteLabelValues(id)
}
