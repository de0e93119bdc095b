// Package workers is the Cloudflare Workers host: each job becomes a
// Worker (package shim: a JavaScript shim around the job's module) that
// Deploy uploads with Cloudflare's API (package cfapi) and exposes on
// workers.dev; Invoke is HTTPS to that Worker, which speaks the same
// custom-FaaS protocol as `ferry host serve`, so calls, batches, warm-ups
// and health checks go through the HTTP client host (httphost.Client).
//
// State lives in Durable Objects of one Worker per account, ferry-state,
// deployed on the first stateful job (docs/rationale.md says why).
package workers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/hosts/workers/cfapi"
	"github.com/ferryrun/ferry/hosts/workers/shim"
	"github.com/ferryrun/ferry/runtime/modstore"
)

// Plan is what a Workers plan allows (specs/workers.md §2.2). The
// orchestrator's analyser gets the same numbers from the policy
// (policy.Provider.EffectiveLimits); this host enforces them at deploy.
type Plan struct {
	Name string
	// MemoryMB is the memory of an isolate: 128 on every plan.
	MemoryMB int
	// CPUMs is the default CPU limit per request and MaxCPUMs the most a
	// Worker may ask for.
	CPUMs, MaxCPUMs int
	// MaxRequestBytes bounds a request body (the zone's plan: 100 MB on
	// Free and Pro).
	MaxRequestBytes int
	// MaxScriptBytes bounds a Worker's modules together.
	MaxScriptBytes int
}

// Plans are Cloudflare's published limits, seen 2026-11-22
// (developers.cloudflare.com/workers/platform/limits/).
var Plans = map[string]Plan{
	"free": {Name: "free", MemoryMB: 128, CPUMs: 10, MaxCPUMs: 10, MaxRequestBytes: 100 << 20, MaxScriptBytes: 64 << 20},
	"paid": {Name: "paid", MemoryMB: 128, CPUMs: 30_000, MaxCPUMs: 300_000, MaxRequestBytes: 100 << 20, MaxScriptBytes: 64 << 20},
}

// Config configures a Host.
type Config struct {
	// Name is the host's name; default "cloudflare-workers".
	Name string
	// AccountID and APIToken reach Cloudflare's API; APIBaseURL points it
	// elsewhere (tests).
	AccountID, APIToken, APIBaseURL string
	// Plan is "free" or "paid" (default); CPUMs, when set, is the CPU limit
	// asked for (at most the plan's).
	Plan  string
	CPUMs int
	// Token is the bearer token every Worker requires, bound as a secret.
	// Required unless Unauthenticated: a Worker on workers.dev is public.
	Token           string
	Unauthenticated bool
	// Prefix starts every Worker's name; default "ferry-".
	Prefix string
	// Subdomain is the account's workers.dev subdomain; empty: asked of
	// the API once.
	Subdomain string
	// URL gives a Worker's base URL; default
	// https://<script>.<subdomain>.workers.dev.
	URL func(script, subdomain string) string
	// HTTPClient carries invocations; nil: httphost's transport.
	HTTPClient *http.Client
	// StateScript names the Worker holding state; default "ferry-state".
	StateScript string
}

// Host is the Workers host. It is safe for concurrent use.
type Host struct {
	cfg  Config
	plan Plan
	api  *cfapi.Client
	hc   *http.Client

	mu        sync.Mutex
	subdomain string
	clients   map[string]*httphost.Client // base URL → client
	uploaded  map[string]string           // script → digest of the Worker this host uploaded
	stateUp   bool
}

var (
	_ host.Host          = (*Host)(nil)
	_ host.BatchInvoker  = (*Host)(nil)
	_ host.Warmer        = (*Host)(nil)
	_ host.HealthChecker = (*Host)(nil)
)

// New returns a Workers host.
func New(cfg Config) (*Host, error) {
	if cfg.Name == "" {
		cfg.Name = "cloudflare-workers"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "ferry-"
	}
	if cfg.Plan == "" {
		cfg.Plan = "paid"
	}
	plan, ok := Plans[cfg.Plan]
	if !ok {
		return nil, fmt.Errorf("workers host: plan %q: want free or paid", cfg.Plan)
	}
	if cfg.CPUMs < 0 || cfg.CPUMs > plan.MaxCPUMs {
		return nil, fmt.Errorf("workers host: cpu_ms %d: the %s plan allows 1–%d", cfg.CPUMs, plan.Name, plan.MaxCPUMs)
	}
	if cfg.CPUMs > 0 {
		plan.CPUMs = cfg.CPUMs
	}
	if cfg.Token == "" && !cfg.Unauthenticated {
		return nil, errors.New("workers host: no bearer token: a Worker on workers.dev is reachable by anyone, so Ferry requires one (FERRY_HOST_TOKEN or --host-token-file)")
	}
	if cfg.StateScript == "" {
		cfg.StateScript = shim.StateScript
	}
	if cfg.URL == nil {
		cfg.URL = func(script, sub string) string { return "https://" + script + "." + sub + ".workers.dev" }
	}
	api, err := cfapi.New(cfapi.Config{AccountID: cfg.AccountID, APIToken: cfg.APIToken, BaseURL: cfg.APIBaseURL})
	if err != nil {
		return nil, fmt.Errorf("workers host: %w", err)
	}
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{Transport: httphost.NewTransport()}
	}
	hc := &http.Client{Transport: edgeErrors{base: transportOf(base)}, Timeout: base.Timeout, Jar: base.Jar, CheckRedirect: base.CheckRedirect}
	return &Host{cfg: cfg, plan: plan, api: api, hc: hc, subdomain: cfg.Subdomain,
		clients: map[string]*httphost.Client{}, uploaded: map[string]string{}}, nil
}

// Name implements host.Host.
func (h *Host) Name() string { return h.cfg.Name }

// Plan is the plan the host deploys for.
func (h *Host) Plan() Plan { return h.plan }

// FunctionID is the protocol's id for a job (httphost.FunctionID): a call
// meant for an earlier version of the job finds no function (404) once the
// Worker holds a newer one.
func FunctionID(job host.Job) string { return httphost.FunctionID("", job) }

// Deploy implements host.Host: it checks the job against the plan, builds
// its Worker, uploads it (and the state Worker, for a stateful job), and
// turns on its workers.dev route. A Worker this host already uploaded
// unchanged is not sent again.
func (h *Host) Deploy(ctx context.Context, job host.Job) (*host.Deployment, error) {
	fail := func(kind error, format string, args ...any) (*host.Deployment, error) {
		return nil, host.Errorf(kind, "deploy", h.cfg.Name, job.Name, format, args...)
	}
	digest := modstore.Digest(job.Module)
	if job.Digest != "" && job.Digest != digest {
		return fail(host.ErrHost, "module bytes hash to %s, not %s", digest, job.Digest)
	}
	if job.Limits.MemoryMB > h.plan.MemoryMB {
		return fail(host.ErrLimit, "needs %d MB of memory; a Worker's isolate has %d MB", job.Limits.MemoryMB, h.plan.MemoryMB)
	}
	if job.Limits.MemoryMB == 0 {
		job.Limits.MemoryMB = h.plan.MemoryMB
	}
	cpu := time.Duration(h.plan.CPUMs) * time.Millisecond
	if job.Limits.Timeout == 0 {
		job.Limits.Timeout = min(cpu, 10*time.Second)
	}
	if job.Limits.Timeout > time.Duration(h.plan.MaxCPUMs)*time.Millisecond {
		return fail(host.ErrLimit, "timeout %v is over the %s plan's CPU limit of %d ms", job.Limits.Timeout, h.plan.Name, h.plan.MaxCPUMs)
	}
	if job.Limits.MaxInputBytes*4+64<<10 > h.plan.MaxRequestBytes {
		return fail(host.ErrLimit, "input limit of %d bytes does not fit a %d-byte request as JSON", job.Limits.MaxInputBytes, h.plan.MaxRequestBytes)
	}
	script := shim.ScriptName(h.cfg.Prefix, job.Name)
	fid := FunctionID(job)
	w, err := shim.Build(shim.Spec{Script: script, FunctionID: fid, Job: job, Token: h.cfg.Token,
		StateScript: h.cfg.StateScript, MaxCPUMs: h.plan.MaxCPUMs})
	if err != nil {
		kind := host.ErrHost
		if errors.Is(err, shim.ErrLimit) {
			kind = host.ErrLimit
		}
		return fail(kind, "%w", err)
	}
	if n := size(w); n > h.plan.MaxScriptBytes {
		return fail(host.ErrLimit, "the Worker is %d bytes, over the %s plan's %d", n, h.plan.Name, h.plan.MaxScriptBytes)
	}
	if hasBinding(w, "durable_object_namespace") {
		if err := h.deployState(ctx); err != nil {
			return fail(kindOf(err), "state Worker: %w", err)
		}
	}
	if err := h.upload(ctx, w); err != nil {
		return fail(kindOf(err), "%w", err)
	}
	sub, err := h.accountSubdomain(ctx)
	if err != nil {
		return fail(kindOf(err), "%w", err)
	}
	base := h.cfg.URL(script, sub)
	return &host.Deployment{
		ID: fid, Job: job.Name, Digest: digest, Host: h.cfg.Name, Region: "global",
		Endpoint: base + "/api/functions/" + fid + "/invoke",
		Limits:   job.Limits, Pure: job.Pure,
	}, nil
}

// upload sends a Worker unless this host already sent the same one.
func (h *Host) upload(ctx context.Context, w *shim.Worker) error {
	h.mu.Lock()
	same := h.uploaded[w.Name] == w.Digest
	h.mu.Unlock()
	if same {
		return nil
	}
	host.Progress(ctx, "upload %s (%d modules, %d bytes)", w.Name, len(w.Modules), size(w))
	if _, err := h.api.Upload(ctx, Script(w)); err != nil {
		return err
	}
	if w.FunctionID != "" {
		host.Progress(ctx, "enable %s on workers.dev", w.Name)
		if err := h.api.EnableWorkersDev(ctx, w.Name); err != nil {
			return err
		}
	}
	h.mu.Lock()
	h.uploaded[w.Name] = w.Digest
	h.mu.Unlock()
	return nil
}

func (h *Host) deployState(ctx context.Context) error {
	return h.upload(ctx, shim.State(h.cfg.StateScript))
}

func (h *Host) accountSubdomain(ctx context.Context) (string, error) {
	h.mu.Lock()
	sub := h.subdomain
	h.mu.Unlock()
	if sub != "" {
		return sub, nil
	}
	sub, err := h.api.AccountSubdomain(ctx)
	if err != nil {
		return "", err
	}
	if sub == "" {
		return "", errors.New("the account has no workers.dev subdomain yet: choose one in the dashboard (Workers & Pages → Subdomain)")
	}
	h.mu.Lock()
	h.subdomain = sub
	h.mu.Unlock()
	return sub, nil
}

// Script is a Worker as Cloudflare's upload API takes it.
func Script(w *shim.Worker) cfapi.Script {
	s := cfapi.Script{
		Name: w.Name, MainModule: w.Modules[0].Name, CompatibilityDate: w.CompatibilityDate,
		CompatibilityFlags: w.CompatibilityFlags, SQLiteClasses: w.DurableObjects, CPUMs: w.CPUMs,
	}
	for _, m := range w.Modules {
		s.Modules = append(s.Modules, cfapi.Module{Name: m.Name, ContentType: m.ContentType, Data: m.Data})
	}
	for _, b := range w.Bindings {
		s.Bindings = append(s.Bindings, cfapi.Binding{Type: b.Type, Name: b.Name, Text: b.Text, JSON: b.JSON,
			ClassName: b.ClassName, ScriptName: b.ScriptName})
	}
	return s
}

// client is the protocol client for a deployment's Worker.
func (h *Host) client(d *host.Deployment) (*httphost.Client, error) {
	if d == nil {
		return nil, host.Errorf(host.ErrNotFound, "invoke", h.cfg.Name, "", "nil deployment")
	}
	base, ok := strings.CutSuffix(d.Endpoint, "/api/functions/"+d.ID+"/invoke")
	if !ok {
		return nil, host.Errorf(host.ErrNotFound, "invoke", h.cfg.Name, d.Job, "deployment %s has no Worker endpoint", d.ID)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.clients[base]; c != nil {
		return c, nil
	}
	c, err := httphost.NewClient(httphost.ClientConfig{BaseURL: base, Name: h.cfg.Name, Region: "global", Token: h.cfg.Token, HTTPClient: h.hc})
	if err != nil {
		return nil, host.Errorf(host.ErrHost, "invoke", h.cfg.Name, d.Job, "%v", err)
	}
	h.clients[base] = c
	return c, nil
}

// Invoke implements host.Host.
func (h *Host) Invoke(ctx context.Context, d *host.Deployment, req host.Request) (*host.Response, error) {
	c, err := h.client(d)
	if err != nil {
		return nil, err
	}
	return c.Invoke(ctx, d, req)
}

// InvokeBatch implements host.BatchInvoker with the Worker's batch
// endpoint.
func (h *Host) InvokeBatch(ctx context.Context, d *host.Deployment, reqs []host.Request) []host.Result {
	c, err := h.client(d)
	if err != nil {
		out := make([]host.Result, len(reqs))
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	return c.InvokeBatch(ctx, d, reqs)
}

// Warm implements host.Warmer: Cloudflare places isolates itself, so this
// warms the isolate the request reaches.
func (h *Host) Warm(ctx context.Context, d *host.Deployment, n int) (int, error) {
	c, err := h.client(d)
	if err != nil {
		return 0, err
	}
	return c.Warm(ctx, d, n)
}

// Health implements host.HealthChecker.
func (h *Host) Health(ctx context.Context, d *host.Deployment) (host.Health, error) {
	c, err := h.client(d)
	if err != nil {
		return host.Health{}, err
	}
	return c.Health(ctx, d)
}

// Remove implements host.Host: it deletes the job's Worker. A Worker that
// no longer serves this deployment (removed, or replaced by a later
// Deploy of the job) is left alone, and the answer is ErrNotFound. State
// is kept: it lives in the state Worker.
func (h *Host) Remove(ctx context.Context, d *host.Deployment) error {
	c, err := h.client(d)
	if err != nil {
		return err
	}
	if _, err := c.Health(ctx, d); errors.Is(err, host.ErrNotFound) {
		return err
	}
	script := shim.ScriptName(h.cfg.Prefix, d.Job)
	host.Progress(ctx, "delete %s", script)
	if err := h.api.Delete(ctx, script); err != nil && !errors.Is(err, cfapi.ErrNotFound) {
		return host.Errorf(kindOf(err), "remove", h.cfg.Name, d.Job, "%w", err)
	}
	h.mu.Lock()
	delete(h.uploaded, script)
	h.mu.Unlock()
	return nil
}

// kindOf maps a control-plane error to the host error kinds.
func kindOf(err error) error {
	switch {
	case errors.Is(err, cfapi.ErrTooLarge):
		return host.ErrLimit
	case errors.Is(err, cfapi.ErrNotFound):
		return host.ErrNotFound
	}
	return host.ErrHost
}

func size(w *shim.Worker) int {
	n := 0
	for _, m := range w.Modules {
		n += len(m.Data)
	}
	return n
}

func hasBinding(w *shim.Worker, typ string) bool {
	for _, b := range w.Bindings {
		if b.Type == typ {
			return true
		}
	}
	return false
}

// EdgeURL is a Worker's base URL when its calls go to a local edge
// (EdgeClient): workers.dev over plain HTTP.
func EdgeURL(script, subdomain string) string {
	return "http://" + script + "." + subdomain + ".workers.dev"
}

// EdgeClient connects every *.workers.dev host to edge, a local workerd
// whose router dispatches on the Host header, and refuses every other
// address, so no call leaves the machine.
func EdgeClient(edge string) *http.Client {
	tr := httphost.NewTransport()
	tr.Proxy = nil
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		h, _, err := net.SplitHostPort(addr)
		if err != nil || !strings.HasSuffix(h, ".workers.dev") {
			return nil, fmt.Errorf("workers edge %s: only *.workers.dev is reachable, not %s", edge, addr)
		}
		return d.DialContext(ctx, network, edge)
	}
	return &http.Client{Transport: tr}
}
