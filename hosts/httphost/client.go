package httphost

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/telemetry"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL is the server's base URL, e.g. "http://127.0.0.1:8080";
	// required.
	BaseURL string
	// Name is the host's name; default "custom/<host:port>".
	Name string
	// Region is reported in deployments and responses.
	Region string
	// Token is sent as a bearer token when set.
	Token string
	// HTTPClient sends the requests; nil: a client tuned for many
	// concurrent calls to one server (connections kept alive and reused).
	HTTPClient *http.Client
	// Slack is how much longer than the job's timeout the client waits for
	// an answer before giving up on the server; default 10 s.
	Slack time.Duration
	// Retries is how many times a retryable failure is retried (see
	// Retryable); default 2, negative: none.
	Retries int
	// Backoff is the first retry's delay, doubled each retry with jitter;
	// default 25 ms.
	Backoff time.Duration
	// FunctionPrefix starts every function id the client deploys.
	FunctionPrefix string
	// MaxResponseBytes bounds an answer; default 64 MiB.
	MaxResponseBytes int64
}

// Client is a host.Host that deploys to and invokes any server speaking the
// custom-FaaS protocol with Ferry's WebAssembly extension (ferry host
// serve). It is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	base *url.URL
	hc   *http.Client
	name string

	mu      sync.Mutex
	current map[string]string // job name → function id deployed by this client
}

var (
	_ host.Host          = (*Client)(nil)
	_ host.HealthChecker = (*Client)(nil)
	_ host.Warmer        = (*Client)(nil)
	_ host.BatchInvoker  = (*Client)(nil)
)

// NewTransport is the transport a Client uses by default: keep-alive
// connections, enough of them idle per host for heavy concurrency.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// NewClient returns a client host.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("http client host: base URL %q: want http(s)://host[:port][/path]", cfg.BaseURL)
	}
	if cfg.FunctionPrefix != "" && !functionIDRE.MatchString(cfg.FunctionPrefix) {
		return nil, fmt.Errorf("http client host: function prefix %q: want [A-Za-z0-9._-]", cfg.FunctionPrefix)
	}
	if cfg.Slack == 0 {
		cfg.Slack = 10 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 2
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 25 * time.Millisecond
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = 64 << 20
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: NewTransport()}
	}
	name := cfg.Name
	if name == "" {
		name = "custom/" + u.Host
	}
	return &Client{cfg: cfg, base: u, hc: hc, name: name, current: map[string]string{}}, nil
}

// Name implements host.Host.
func (c *Client) Name() string { return c.name }

// FunctionID is the id the client deploys a job under: the job's name and
// a hash of its module and limits, so a changed job is a new function
// (the protocol has no update verb) and an unchanged one is found again.
func (c *Client) FunctionID(job host.Job) string { return FunctionID(c.cfg.FunctionPrefix, job) }

// FunctionID is prefix, the job's name and a hash of its module and
// limits: the id under which the client deploys a job, and the id a
// Worker serves it under.
func FunctionID(prefix string, job host.Job) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n%d\n%d\n%d\n%q\n", modstore.Digest(job.Module), job.Limits.MemoryMB, job.Limits.Timeout,
		job.Limits.MaxInputBytes, job.Limits.MaxOutputBytes, job.AllowHosts)
	name := job.Name
	// Ids are at most 128 characters; the hash keeps a shortened name
	// unique.
	if room := 128 - len(prefix) - 13; len(name) > room {
		name = name[:room]
	}
	return prefix + name + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

func (c *Client) url(parts ...string) string {
	u := *c.base
	for _, p := range parts {
		u.Path += "/" + url.PathEscape(p)
	}
	return u.String()
}

// Deploy implements host.Host. It uploads the module with its limits; when
// the function already exists (409) it checks the server holds the same
// module and reuses it. A previous deployment of the same job by this
// client is deleted once the new one is up.
func (c *Client) Deploy(ctx context.Context, job host.Job) (*host.Deployment, error) {
	fail := func(kind error, format string, args ...any) (*host.Deployment, error) {
		return nil, host.Errorf(kind, "deploy", c.name, job.Name, format, args...)
	}
	digest := modstore.Digest(job.Module)
	if job.Digest != "" && job.Digest != digest {
		return fail(host.ErrHost, "module bytes hash to %s, not %s", digest, job.Digest)
	}
	if job.Limits.MemoryMB < 0 || job.Limits.Timeout < 0 || job.Limits.MaxInputBytes < 0 || job.Limits.MaxOutputBytes < 0 {
		return fail(host.ErrHost, "negative limit in %+v", job.Limits)
	}
	id := c.FunctionID(job)
	if !functionIDRE.MatchString(id) {
		return fail(host.ErrHost, "invalid job name %q", job.Name)
	}
	cfg := Config{MemoryMB: job.Limits.MemoryMB, MaxInputBytes: job.Limits.MaxInputBytes,
		MaxOutputBytes: job.Limits.MaxOutputBytes, AllowHosts: job.AllowHosts, StateNamespace: cmp.Or(job.StateNamespace, job.Name)}
	if t := job.Limits.Timeout; t > 0 {
		cfg.TimeoutMs = int(max(1, (t+time.Millisecond-1)/time.Millisecond))
	}
	cfgJSON, _ := json.Marshal(cfg)
	hdr := http.Header{
		"Content-Type":       {"application/wasm"},
		"X-Blueprint-Config": {base64.StdEncoding.EncodeToString(cfgJSON)},
	}
	var fn Function
	status, body, err := c.do(ctx, "deploy", job.Name, http.MethodPut, c.url("api", "functions", id), hdr, job.Module, 0, false)
	if err != nil {
		return nil, err
	}
	switch status {
	case http.StatusOK, http.StatusCreated:
		if err := json.Unmarshal(body, &fn); err != nil {
			return fail(host.ErrHost, "deploy answer is not the protocol's JSON: %v", err)
		}
	case http.StatusConflict:
		// Deployed before (by us or a previous run): the id names the
		// module and limits, but check what the server says it holds.
		status, body, err = c.do(ctx, "deploy", job.Name, http.MethodGet, c.url("api", "functions", id), nil, nil, 0, false)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, statusError("deploy", c.name, job.Name, status, body)
		}
		if err := json.Unmarshal(body, &fn); err != nil {
			return fail(host.ErrHost, "function answer is not the protocol's JSON: %v", err)
		}
		if fn.Digest != "" && fn.Digest != digest {
			return fail(host.ErrHost, "function %s exists on the server with module %s, not %s", id, fn.Digest, digest)
		}
	default:
		return nil, statusError("deploy", c.name, job.Name, status, body)
	}
	d := &host.Deployment{
		ID: id, Job: job.Name, Digest: digest, Host: c.name, Region: c.cfg.Region, Endpoint: fn.Endpoint,
		Limits: host.Limits{MemoryMB: fn.MemoryMB, Timeout: time.Duration(fn.TimeoutMs) * time.Millisecond,
			MaxInputBytes: fn.MaxInputBytes, MaxOutputBytes: fn.MaxOutputBytes},
		Pure: fn.Pure,
	}
	if d.Limits.Timeout == 0 {
		d.Limits.Timeout = time.Duration(fn.TimeoutSecs) * time.Second
	}
	c.mu.Lock()
	old := c.current[job.Name]
	c.current[job.Name] = id
	c.mu.Unlock()
	if old != "" && old != id {
		if err := c.remove(ctx, job.Name, old); err != nil && !errors.Is(err, host.ErrNotFound) {
			return d, host.Errorf(host.ErrHost, "deploy", c.name, job.Name, "new function %s is up, but removing the old one %s failed: %w", id, old, err)
		}
	}
	return d, nil
}

// Remove implements host.Host.
func (c *Client) Remove(ctx context.Context, d *host.Deployment) error {
	if d == nil {
		return host.Errorf(host.ErrNotFound, "remove", c.name, "", "nil deployment")
	}
	err := c.remove(ctx, d.Job, d.ID)
	c.mu.Lock()
	if c.current[d.Job] == d.ID {
		delete(c.current, d.Job)
	}
	c.mu.Unlock()
	return err
}

func (c *Client) remove(ctx context.Context, job, id string) error {
	status, body, err := c.do(ctx, "remove", job, http.MethodDelete, c.url("api", "functions", id), nil, nil, 0, false)
	if err != nil {
		return err
	}
	if status != http.StatusOK && status != http.StatusNoContent {
		return statusError("remove", c.name, job, status, body)
	}
	return nil
}

// Invoke implements host.Host. Failures that provably never reached the
// server are retried for any job; other host failures only for pure jobs.
func (c *Client) Invoke(ctx context.Context, d *host.Deployment, req host.Request) (*host.Response, error) {
	if d == nil {
		return nil, host.Errorf(host.ErrNotFound, "invoke", c.name, "", "nil deployment")
	}
	body := appendInvokeRequest(make([]byte, 0, 64+4*len(req.Input)), req)
	var hdr http.Header
	if req.InvocationID != "" {
		hdr = http.Header{"X-Ferry-Invocation-Id": {req.InvocationID}}
	}
	status, resp, err := c.do(ctx, "invoke", d.Job, http.MethodPost, c.url("api", "functions", d.ID, "invoke"), hdr, body, c.wait(d), d.Pure)
	if err != nil {
		return nil, err
	}
	return c.invokeAnswer(d, status, resp)
}

func (c *Client) wait(d *host.Deployment) time.Duration {
	t := d.Limits.Timeout
	if t <= 0 {
		t = DefaultTimeoutSecs * time.Second
	}
	return t + c.cfg.Slack
}

// invokeAnswer turns a status and body into a response or a typed error.
func (c *Client) invokeAnswer(d *host.Deployment, status int, body []byte) (*host.Response, error) {
	if status != http.StatusOK {
		return nil, statusError("invoke", c.name, d.Job, status, body)
	}
	var r InvokeResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, host.Errorf(host.ErrHost, "invoke", c.name, d.Job, "answer is not the protocol's JSON: %v", err)
	}
	if !r.Success {
		// 200 with success false: a server that does not follow the
		// protocol's status codes. Trust the body.
		return nil, statusError("invoke", c.name, d.Job, http.StatusInternalServerError, body)
	}
	return c.response(&r), nil
}

func (c *Client) response(r *InvokeResponse) *host.Response {
	dur := time.Duration(r.ExecutionUs) * time.Microsecond
	if dur == 0 {
		dur = time.Duration(r.ExecutionMs) * time.Millisecond
	}
	mem := r.MemoryUsedBytes
	if mem == 0 {
		mem = uint64(r.MemoryUsedMB) << 20
	}
	out := []byte(r.Result)
	if out == nil {
		out = []byte{}
	}
	return &host.Response{Output: out, Duration: dur, Billed: dur, MemoryUsedBytes: mem, Cold: r.Cold,
		Host: c.name, Region: c.cfg.Region, InvocationID: r.InvocationID, Logs: r.Logs}
}

// InvokeBatch implements host.BatchInvoker with Ferry's invoke-batch
// endpoint: one round trip for up to MaxBatch requests. Larger slices are
// split.
func (c *Client) InvokeBatch(ctx context.Context, d *host.Deployment, reqs []host.Request) []host.Result {
	out := make([]host.Result, len(reqs))
	for lo := 0; lo < len(reqs); lo += MaxBatch {
		hi := min(lo+MaxBatch, len(reqs))
		c.batch(ctx, d, reqs[lo:hi], out[lo:hi])
	}
	return out
}

func (c *Client) batch(ctx context.Context, d *host.Deployment, reqs []host.Request, out []host.Result) {
	failAll := func(err error) {
		for i := range out {
			out[i].Err = err
		}
	}
	if d == nil {
		failAll(host.Errorf(host.ErrNotFound, "invoke", c.name, "", "nil deployment"))
		return
	}
	size := 32
	for _, r := range reqs {
		size += 48 + 4*len(r.Input)
	}
	body := append(make([]byte, 0, size), `{"requests":[`...)
	for i, r := range reqs {
		if i > 0 {
			body = append(body, ',')
		}
		body = appendInvokeRequest(body, r)
	}
	body = append(body, "]}"...)
	// The server runs a batch within the function's concurrency limit, so
	// in the worst case one call after another.
	wait := c.wait(d) + time.Duration(len(reqs)-1)*max(d.Limits.Timeout, 0)
	status, resp, err := c.do(ctx, "invoke", d.Job, http.MethodPost, c.url("api", "functions", d.ID, "invoke-batch"), nil, body, wait, d.Pure)
	if err != nil {
		failAll(err)
		return
	}
	if status != http.StatusOK {
		failAll(statusError("invoke", c.name, d.Job, status, resp))
		return
	}
	var br struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(resp, &br); err != nil || len(br.Results) != len(reqs) {
		failAll(host.Errorf(host.ErrHost, "invoke", c.name, d.Job, "batch answer: want %d results as JSON, got %d (%v)", len(reqs), len(br.Results), err))
		return
	}
	for i, raw := range br.Results {
		var st struct {
			Status int `json:"status"`
		}
		_ = json.Unmarshal(raw, &st)
		if st.Status == 0 {
			st.Status = http.StatusOK
		}
		out[i].Response, out[i].Err = c.invokeAnswer(d, st.Status, raw)
	}
}

// Warm implements host.Warmer.
func (c *Client) Warm(ctx context.Context, d *host.Deployment, n int) (int, error) {
	if d == nil {
		return 0, host.Errorf(host.ErrNotFound, "warm", c.name, "", "nil deployment")
	}
	u := c.url("api", "functions", d.ID, "warm") + fmt.Sprintf("?instances=%d", max(n, 0))
	status, body, err := c.do(ctx, "warm", d.Job, http.MethodPost, u, nil, nil, 0, true)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, statusError("warm", c.name, d.Job, status, body)
	}
	var wr Warmed
	if err := json.Unmarshal(body, &wr); err != nil {
		return 0, host.Errorf(host.ErrHost, "warm", c.name, d.Job, "answer is not the protocol's JSON: %v", err)
	}
	return wr.InstancesWarmed, nil
}

// Health implements host.HealthChecker.
func (c *Client) Health(ctx context.Context, d *host.Deployment) (host.Health, error) {
	if d == nil {
		return host.Health{}, host.Errorf(host.ErrNotFound, "health", c.name, "", "nil deployment")
	}
	// One attempt: a 503 is the protocol's "unhealthy" answer, not a
	// failure to retry.
	status, body, err := c.once(ctx, "health", d.Job, http.MethodGet, c.url("api", "functions", d.ID, "health"), nil, nil, time.Minute)
	if err != nil {
		return host.Health{}, err
	}
	var hr Health
	if status != http.StatusOK && status != http.StatusServiceUnavailable {
		return host.Health{}, statusError("health", c.name, d.Job, status, body)
	}
	if err := json.Unmarshal(body, &hr); err != nil {
		return host.Health{}, host.Errorf(host.ErrHost, "health", c.name, d.Job, "answer is not the protocol's JSON: %v", err)
	}
	out := host.Health{Healthy: status == http.StatusOK && hr.Status == "healthy", TotalInvocations: hr.TotalInvocations, Detail: hr.Error}
	if hr.LastInvocation != nil {
		out.LastInvocation = *hr.LastInvocation
	}
	return out, nil
}

// do sends one request, retrying what is safe to retry, and returns the
// status and body. wait > 0 bounds each attempt; pure says whether
// retrying a POST after it reached the server is safe.
func (c *Client) do(ctx context.Context, op, job, method, u string, hdr http.Header, body []byte, wait time.Duration, pure bool) (int, []byte, error) {
	// PUT, GET and DELETE are idempotent in the protocol; POST runs a job.
	isPure := pure || method != http.MethodPost
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	delay := c.cfg.Backoff
	for attempt := 0; ; attempt++ {
		status, resp, err := c.once(ctx, op, job, method, u, hdr, body, wait)
		if err == nil && !(isPure && retryableStatus(status, resp)) {
			return status, resp, nil
		}
		if err == nil {
			err = statusError(op, c.name, job, status, resp)
		}
		if attempt >= c.cfg.Retries || !host.Retryable(err, isPure) || ctx.Err() != nil {
			if attempt > 0 {
				err = &host.Error{Kind: kindOf(err), Op: op, Host: c.name, Job: job, NotDelivered: notDelivered(err),
					Err: fmt.Errorf("after %d attempts: %w", attempt+1, err)}
			}
			return 0, nil, err
		}
		jitter := time.Duration(rand.Int64N(int64(delay)/2 + 1))
		t := time.NewTimer(delay + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, nil, &host.Error{Kind: host.ErrHost, Op: op, Host: c.name, Job: job, Err: ctx.Err()}
		case <-t.C:
		}
		delay *= 2
	}
}

func kindOf(err error) error {
	var e *host.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return host.ErrHost
}

func notDelivered(err error) bool {
	var e *host.Error
	return errors.As(err, &e) && e.NotDelivered
}

// retryableStatus: answers that mean the server (not the job) failed.
func retryableStatus(status int, body []byte) bool {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	case http.StatusInternalServerError:
		var eb ErrorBody
		return json.Unmarshal(body, &eb) == nil && eb.Code == CodeInfrastructure
	}
	return false
}

// once sends one request. A transport error is a host error; NotDelivered
// is set when the request was never fully written, so the server cannot
// have acted on it.
func (c *Client) once(ctx context.Context, op, job, method, u string, hdr http.Header, body []byte, wait time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, wait, errNoAnswer)
	defer cancel()
	var wrote bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote = wrote || i.Err == nil },
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, host.Errorf(host.ErrHost, op, c.name, job, "%w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	telemetry.Inject(ctx, req.Header)
	resp, err := c.hc.Do(req)
	if err != nil {
		e := &host.Error{Kind: host.ErrHost, Op: op, Host: c.name, Job: job, NotDelivered: !wrote, Err: err}
		if errors.Is(context.Cause(ctx), errNoAnswer) {
			e.Err = fmt.Errorf("no answer within %v (the job's timeout plus slack): %w", wait, err)
		}
		return 0, nil, e
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		return 0, nil, &host.Error{Kind: host.ErrHost, Op: op, Host: c.name, Job: job, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if int64(len(b)) > c.cfg.MaxResponseBytes {
		return 0, nil, host.Errorf(host.ErrHost, op, c.name, job, "answer over %d bytes", c.cfg.MaxResponseBytes)
	}
	return resp.StatusCode, b, nil
}

// errNoAnswer is the cause of an attempt that outlived its wait.
var errNoAnswer = errors.New("the server did not answer in time")

// statusError maps a status and error body to a typed error with the
// server's own message.
func statusError(op, hostName, job string, status int, body []byte) error {
	var r struct {
		Error   string   `json:"error"`
		Code    string   `json:"code"`
		Details *Details `json:"details"`
		Success *bool    `json:"success"`
	}
	msg := ""
	if json.Unmarshal(body, &r) == nil && r.Error != "" {
		msg = r.Error
	} else if s := strings.TrimSpace(string(body)); s != "" {
		msg = clipString(s, 200)
	}
	kindName := ""
	if r.Details != nil {
		kindName = r.Details.Kind
	}
	var kind error
	switch {
	case status == http.StatusNotFound:
		kind = host.ErrNotFound
	case status == http.StatusRequestEntityTooLarge:
		kind = host.ErrLimit
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		kind, msg = host.ErrHost, "the host refused the token ("+msg+"): check --token / FERRY_HOST_TOKEN"
	case status == http.StatusInternalServerError && r.Code == CodeExecution,
		status == http.StatusInternalServerError && r.Code == "" && r.Success != nil && !*r.Success:
		// A job failure. A server without Ferry's codes (success false
		// and no code) is taken at its word that the job failed.
		switch kindName {
		case "timeout":
			kind = host.ErrTimeout
		case "memory_limit", "cpu_limit", "input_too_large", "output_too_large":
			kind = host.ErrLimit
		default:
			kind = host.ErrJob
		}
	default:
		kind = host.ErrHost
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	detail := fmt.Sprintf("HTTP %d", status)
	if r.Code != "" {
		detail += " " + r.Code
	}
	if kindName != "" {
		detail += " (" + kindName + ")"
	}
	return &host.Error{Kind: kind, Op: op, Host: hostName, Job: job, Err: fmt.Errorf("%s: %s", detail, msg)}
}

// appendInvokeRequest encodes one invocation request.
func appendInvokeRequest(dst []byte, r host.Request) []byte {
	dst = append(dst, `{"job_id":0,"args":`...)
	dst = appendBytes(dst, r.Input)
	if r.InvocationID != "" {
		dst = append(dst, `,"invocation_id":`...)
		dst = appendString(dst, r.InvocationID)
	}
	if r.IdempotencyKey != "" {
		dst = append(dst, `,"idempotency_key":`...)
		dst = appendString(dst, r.IdempotencyKey)
	}
	return append(dst, '}')
}
