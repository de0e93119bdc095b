// Package api is the HTTP API of `ferry serve`: invoke a job (Ferry's own
// API, or the custom FaaS protocol so a Tangle runner can use Ferry as its
// FaaS endpoint), see the jobs and their routes, explain a decision,
// metrics and health. docs/serve.md documents it.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/orchestrator/plan"
	"github.com/ferryrun/ferry/orchestrator/queue"
	"github.com/ferryrun/ferry/orchestrator/route"
	"github.com/ferryrun/ferry/runtime/telemetry"
)

// Config configures the API.
type Config struct {
	Exec   *route.Executor
	Plan   *plan.Plan
	Router *route.Router
	// Queue serves submit and GET /v1/invocations/{id}; nil: those
	// endpoints answer 404.
	Queue *queue.Queue
	// Token, when set, is required as a bearer token on everything but
	// /healthz.
	Token string
	// MaxInputBytes bounds a request body; default 8 MiB.
	MaxInputBytes int64
	// JobIDs maps Tangle job ids to job names for POST /job/{id}.
	JobIDs map[uint32]string
	// Registry receives the metrics; nil: a private one.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Extra is added to /healthz's answer (queue depth, RSS…).
	Extra func() map[string]any
}

// API is the HTTP handler.
type API struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler // mux within the caller's trace
	metrics *Metrics
	log     *slog.Logger
}

// New returns the API. It also registers the executor's observer metrics.
func New(cfg Config) (*API, error) {
	if cfg.Exec == nil || cfg.Router == nil || cfg.Plan == nil {
		return nil, errors.New("api: executor, router and plan are required")
	}
	if cfg.MaxInputBytes <= 0 {
		cfg.MaxInputBytes = 8 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &API{cfg: cfg, log: cfg.Logger, metrics: NewMetrics(reg, cfg.Router, cfg.Queue)}
	m := http.NewServeMux()
	auth := httphost.RequireBearer(cfg.Token, nil)
	m.HandleFunc("POST /v1/jobs/{job}/invoke", auth(a.handleInvoke))
	m.HandleFunc("POST /v1/jobs/{job}/submit", auth(a.handleSubmit))
	m.HandleFunc("GET /v1/invocations/{id}", auth(a.handleInvocation))
	m.HandleFunc("GET /v1/jobs", auth(a.handleJobs))
	m.HandleFunc("GET /v1/decisions/{id}", auth(a.handleDecision))
	m.HandleFunc("GET /v1/decisions", auth(a.handleDecisions))
	m.HandleFunc("POST /api/functions/{job}/invoke", auth(a.handleFaaS))
	m.HandleFunc("HEAD /api/functions/{job}/invoke", auth(a.handleFaaSHead))
	m.HandleFunc("POST /job/{id}", auth(a.handleTangle))
	m.HandleFunc("HEAD /job/{id}", auth(a.handleTangleHead))
	m.HandleFunc("GET /healthz", a.handleHealthz)
	m.Handle("GET /metrics", auth(a.metrics.Handler().ServeHTTP))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), nil)
	})
	a.mux = m
	a.handler = telemetry.Handler(m)
	return a, nil
}

// Observer returns the metrics observer to give the executor.
func (a *API) Observer() route.Observer { return a.metrics }

// ServeHTTP implements http.Handler. A caller's trace (W3C traceparent)
// continues through the call, to whichever host runs it.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// InvokeResult is the JSON answer of POST /v1/jobs/{job}/invoke when the
// caller accepts JSON.
type InvokeResult struct {
	Job          string  `json:"job"`
	Output       []byte  `json:"output"` // base64
	RanOn        string  `json:"ran_on"`
	Host         string  `json:"host"`
	Region       string  `json:"region,omitempty"`
	LatencyMs    float64 `json:"latency_ms"`
	DurationMs   float64 `json:"duration_ms"`
	Cold         bool    `json:"cold"`
	CostUSD      float64 `json:"cost_usd"`
	Attempts     int     `json:"attempts"`
	DecisionID   string  `json:"decision_id"`
	InvocationID string  `json:"invocation_id"`
}

// handleInvoke runs a job: the body is the raw input. The answer is the raw
// output with X-Ferry-* headers, or an InvokeResult when the caller
// accepts application/json.
func (a *API) handleInvoke(w http.ResponseWriter, r *http.Request) {
	job := r.PathValue("job")
	input, ok := a.readBody(w, r)
	if !ok {
		return
	}
	var opts []route.Option
	if id := r.Header.Get("X-Ferry-Invocation-Id"); id != "" {
		opts = append(opts, route.WithInvocationID(id))
	}
	res, err := a.cfg.Exec.Execute(r.Context(), job, input, opts...)
	if err != nil {
		a.writeExecError(w, job, err)
		return
	}
	h := w.Header()
	h.Set("X-Ferry-Ran-On", res.Target)
	h.Set("X-Ferry-Decision", res.DecisionID)
	h.Set("X-Ferry-Invocation-Id", res.InvocationID)
	h.Set("X-Ferry-Latency-Ms", strconv.FormatFloat(ms(res.Latency), 'f', 3, 64))
	h.Set("X-Ferry-Cost-USD", strconv.FormatFloat(res.CostUSD, 'g', 6, 64))
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, InvokeResult{Job: job, Output: res.Output, RanOn: res.Target, Host: res.Host, Region: res.Region,
			LatencyMs: ms(res.Latency), DurationMs: ms(res.Duration), Cold: res.Cold, CostUSD: res.CostUSD, Attempts: res.Attempts,
			DecisionID: res.DecisionID, InvocationID: res.InvocationID})
		return
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(res.Output)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Output)
}

func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	max := a.cfg.MaxInputBytes
	if r.ContentLength > max {
		writeError(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", fmt.Sprintf("body of %d bytes is over the limit of %d", r.ContentLength, max), nil)
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", fmt.Sprintf("body is over the limit of %d bytes", max), nil)
		} else {
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "reading the body: "+err.Error(), nil)
		}
		return nil, false
	}
	return b, true
}

// execStatus maps an Execute error to a status and code.
func execStatus(err error) (int, string, string) {
	var kind string
	switch {
	case errors.Is(err, route.ErrUnknownJob):
		return http.StatusNotFound, "NOT_FOUND", ""
	case errors.Is(err, host.ErrLimit):
		kind = "limit"
		if strings.Contains(err.Error(), "input") {
			return http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", kind
		}
		return http.StatusInternalServerError, "EXECUTION_ERROR", kind
	case errors.Is(err, host.ErrTimeout):
		return http.StatusInternalServerError, "EXECUTION_ERROR", "timeout"
	case errors.Is(err, host.ErrJob):
		return http.StatusInternalServerError, "EXECUTION_ERROR", "job"
	case errors.Is(err, route.ErrNoTarget):
		return http.StatusServiceUnavailable, "UNAVAILABLE", "no_target"
	}
	return http.StatusServiceUnavailable, "INFRASTRUCTURE_ERROR", "host"
}

func (a *API) writeExecError(w http.ResponseWriter, job string, err error) {
	status, code, kind := execStatus(err)
	d := map[string]any{"job": job}
	if kind != "" {
		d["kind"] = kind
	}
	var ce *route.CallError
	if errors.As(err, &ce) {
		d["decision_id"] = ce.DecisionID
	}
	writeError(w, status, code, err.Error(), d)
}

// handleSubmit queues a call: the body is the input. The answer, 202 with
// a Location, is the queued invocation; a retry with the same
// Idempotency-Key header answers 200 with the first submission as it is
// now (perhaps finished). The submission is on disk before the answer.
func (a *API) handleSubmit(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Queue == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "this server has no queue", nil)
		return
	}
	job := r.PathValue("job")
	if _, ok := a.cfg.Router.Job(job); !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("%v: %q", route.ErrUnknownJob, job), map[string]any{"job": job})
		return
	}
	input, ok := a.readBody(w, r)
	if !ok {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	inv, created, err := a.cfg.Queue.Submit(r.Context(), job, input, key)
	if err != nil {
		status, code := http.StatusServiceUnavailable, "UNAVAILABLE"
		switch {
		case errors.Is(err, queue.ErrIdempotencyMismatch):
			status, code = http.StatusConflict, "IDEMPOTENCY_MISMATCH"
		case errors.Is(err, queue.ErrTooLarge):
			status, code = http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE"
		case errors.Is(err, queue.ErrInvalid):
			status, code = http.StatusBadRequest, "INVALID_REQUEST"
		case errors.Is(err, queue.ErrFull):
			w.Header().Set("Retry-After", "1")
			status, code = http.StatusTooManyRequests, "QUEUE_FULL"
		}
		writeError(w, status, code, err.Error(), map[string]any{"job": job})
		return
	}
	w.Header().Set("Location", "/v1/invocations/"+inv.ID)
	status := http.StatusAccepted
	if !created {
		status = http.StatusOK
	}
	writeJSON(w, status, inv)
}

// handleInvocation returns a submitted call: its status and, once
// finished, its output or error.
func (a *API) handleInvocation(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Queue == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "this server has no queue", nil)
		return
	}
	inv, err := a.cfg.Queue.Get(r.PathValue("id"))
	switch {
	case errors.Is(err, queue.ErrNotFound):
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such invocation (finished ones are kept for a while, then expire)", nil)
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", err.Error(), nil)
	default:
		writeJSON(w, http.StatusOK, inv)
	}
}

// JobView is a job in GET /v1/jobs.
type JobView struct {
	Name          string         `json:"name"`
	Placement     plan.Placement `json:"placement"`
	Preferred     string         `json:"preferred"`
	Hedge         bool           `json:"hedge"`
	Pure          bool           `json:"pure"`
	Deterministic bool           `json:"deterministic"`
	Stateful      bool           `json:"stateful"`
	Force         bool           `json:"force_serverless"`
	// Eligibility is the plan's verdict per target; Routes are the
	// targets deployed now, with what the router has learned.
	Eligibility []plan.Target `json:"eligibility"`
	Routes      []route.Stats `json:"routes"`
}

func (a *API) handleJobs(w http.ResponseWriter, r *http.Request) {
	out := []JobView{}
	for _, name := range a.cfg.Router.Jobs() {
		j, _ := a.cfg.Router.Job(name)
		jp, _ := a.cfg.Plan.Job(name)
		v := JobView{Name: name, Pure: j.Pure, Deterministic: j.Deterministic, Stateful: j.Stateful, Force: j.Force, Routes: []route.Stats{}}
		if jp != nil {
			v.Placement, v.Preferred, v.Hedge = jp.Placement, jp.Preferred, jp.Hedge
			v.Eligibility = append([]plan.Target{jp.Local}, jp.Targets...)
		}
		if j.Local != nil {
			v.Routes = append(v.Routes, j.Local.Stats())
		}
		for _, t := range j.Remote {
			v.Routes = append(v.Routes, t.Stats())
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"strategy": a.cfg.Plan.Strategy, "why": a.cfg.Plan.Why, "jobs": out})
}

func (a *API) handleDecision(w http.ResponseWriter, r *http.Request) {
	d, ok := a.cfg.Exec.Decisions().Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such decision (only the most recent are kept)", nil)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *API) handleDecisions(w http.ResponseWriter, r *http.Request) {
	n := 50
	if q := r.URL.Query().Get("limit"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 || v > 1000 {
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "limit: want 1–1000", nil)
			return
		}
		n = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"decisions": a.cfg.Exec.Decisions().Recent(n)})
}

func (a *API) handleHealthz(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"status": "ok", "jobs": len(a.cfg.Router.Jobs()), "strategy": a.cfg.Plan.Strategy}
	if a.cfg.Extra != nil {
		for k, v := range a.cfg.Extra() {
			out[k] = v
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleFaaS serves the custom FaaS protocol's invoke for a job by name.
func (a *API) handleFaaS(w http.ResponseWriter, r *http.Request) {
	a.faas(w, r, r.PathValue("job"), nil)
}

func (a *API) handleFaaSHead(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.cfg.Router.Job(r.PathValue("job")); !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (a *API) tangleJob(raw string) (string, uint32, error) {
	id, err := strconv.ParseUint(raw, 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("job id %q: want a number", raw)
	}
	name, ok := a.cfg.JobIDs[uint32(id)]
	if !ok {
		return "", uint32(id), fmt.Errorf("%w: no job is mapped to Tangle job id %d (ferry serve --job-id %d=NAME)", route.ErrUnknownJob, id, id)
	}
	return name, uint32(id), nil
}

func (a *API) handleTangle(w http.ResponseWriter, r *http.Request) {
	name, id, err := a.tangleJob(r.PathValue("id"))
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, route.ErrUnknownJob) {
			status = http.StatusNotFound
		}
		writeError(w, status, map[int]string{400: "INVALID_REQUEST", 404: "NOT_FOUND"}[status], err.Error(), nil)
		return
	}
	a.faas(w, r, name, &id)
}

func (a *API) handleTangleHead(w http.ResponseWriter, r *http.Request) {
	if _, _, err := a.tangleJob(r.PathValue("id")); err != nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// faas runs one protocol invocation: {job_id, args} in, {result, success,
// …} out; a failed job is 500, never 2xx.
func (a *API) faas(w http.ResponseWriter, r *http.Request, job string, wantID *uint32) {
	body, ok := a.readBody(w, r)
	if !ok {
		return
	}
	var req httphost.InvokeRequest
	if err := httphost.DecodeInvoke(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error(), nil)
		return
	}
	if wantID != nil && req.JobID != *wantID {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", fmt.Sprintf("job_id %d in the body does not match job %d in the path", req.JobID, *wantID), nil)
		return
	}
	res, err := a.cfg.Exec.Execute(r.Context(), job, req.Args)
	if err != nil {
		status, code, kind := execStatus(err)
		writeJSON(w, status, httphost.InvokeResponse{JobID: req.JobID, Result: httphost.Bytes{}, Error: err.Error(), Code: code,
			Details: &httphost.Details{Kind: kind, FunctionID: job}})
		return
	}
	w.Header().Set("X-Ferry-Ran-On", res.Target)
	w.Header().Set("X-Ferry-Decision", res.DecisionID)
	writeJSON(w, http.StatusOK, httphost.InvokeResponse{JobID: req.JobID, Result: res.Output, Success: true,
		ExecutionMs: int64((res.Duration + time.Millisecond - 1) / time.Millisecond), ExecutionUs: res.Duration.Microseconds(),
		Cold: res.Cold, InvocationID: res.InvocationID})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed","code":"INFRASTRUCTURE_ERROR"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string, details map[string]any) {
	writeJSON(w, status, map[string]any{"error": msg, "code": code, "details": details})
}
