package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/orchestrator/api"
	"github.com/ferryrun/ferry/orchestrator/route"
)

const (
	defaultServer = "http://127.0.0.1:8700" // ferry serve's default --listen
	// maxInvokeInput is ferry serve's default --max-input-bytes: a larger
	// input would be refused anyway, after being sent.
	maxInvokeInput = 8 << 20
	// maxAnswer bounds what is read from the server: a 6 MiB output is
	// 8 MiB in base64, and a decision is small.
	maxAnswer      = 64 << 20
	maxRepeat      = 100_000
	maxConcurrency = 256
)

type invokeFlags struct {
	server, tokenFile  string
	input, inputFile   string
	explain, jsonOut   bool
	quiet              bool
	repeat, concurrent int
	timeout            time.Duration
}

func newInvokeCmd(e *env) *cobra.Command {
	f := &invokeFlags{}
	cmd := &cobra.Command{
		Use:   "invoke JOB",
		Short: "Call a job through a running ferry serve",
		Long: `Call JOB on a running "ferry serve" and write its output to stdout. The
orchestrator decides where the call runs (this machine or a remote host);
one line on stderr says where it ran, why, how long it took and what it
cost. The input comes from --input, --input-file or stdin (read only when
something is piped in); at most 8 MiB.

--explain prints the routing decision on stderr: the candidate targets with
their scores and expected latency, the targets left out and why, and every
attempt (a hedge's loser shows as canceled). --json prints the result (and
the decision with --explain) as one JSON object on stdout instead.

--repeat N makes N calls (--concurrency at once) and prints a summary:
where they ran, latency p50/p99 as ferry serve measured it, and the total
cost; with --explain, the slowest call's decision.

The server is --server, else $FERRY_SERVER, else ` + defaultServer + `; the
token is --token-file, else $FERRY_TOKEN.

Exit status: 0 ok, 1 the job failed (or its input was over a limit),
2 usage (bad flags, unknown job, wrong token), 4 ferry serve could not be
reached or could not run the call.`,
		Example: `  ferry invoke square --input 12345
  echo -n '{"items":[]}' | ferry invoke jsontransform
  ferry invoke square --input 12345 --explain
  ferry invoke sha256 --input-file data.bin --json
  ferry invoke square --input 12345 --repeat 1000 --concurrency 8
  FERRY_SERVER=http://10.0.0.5:8700 FERRY_TOKEN=… ferry invoke square --input 7`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInvoke(cmd, e, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "ferry serve's `URL` (default: $FERRY_SERVER, else "+defaultServer+")")
	fl.StringVar(&f.tokenFile, "token-file", "", "bearer token from `FILE` (default: $FERRY_TOKEN)")
	fl.StringVar(&f.input, "input", "", "input as a string")
	fl.StringVar(&f.inputFile, "input-file", "", "read input from `FILE` (- for stdin)")
	fl.BoolVar(&f.explain, "explain", false, "print the routing decision: candidates, exclusions, attempts")
	fl.BoolVar(&f.jsonOut, "json", false, "print a JSON object instead of the raw output")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no line on stderr after a call (where it ran, why, how long, the cost)")
	fl.IntVar(&f.repeat, "repeat", 1, "make `N` calls and print a summary (1–100000)")
	fl.IntVarP(&f.concurrent, "concurrency", "c", 1, "calls in flight at once with --repeat (1–256)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for each answer (0: no limit)")
	return cmd
}

func runInvoke(cmd *cobra.Command, e *env, f *invokeFlags, job string) error {
	if job == "" {
		return withCode(exitUsage, errors.New("the job name is empty"))
	}
	if f.repeat < 1 || f.repeat > maxRepeat {
		return withCode(exitUsage, fmt.Errorf("--repeat %d: want 1–%d", f.repeat, maxRepeat))
	}
	if f.concurrent < 1 || f.concurrent > maxConcurrency {
		return withCode(exitUsage, fmt.Errorf("--concurrency %d: want 1–%d", f.concurrent, maxConcurrency))
	}
	if f.concurrent > 1 && f.repeat == 1 {
		return withCode(exitUsage, errors.New("--concurrency needs --repeat"))
	}
	input, err := readInvokeInput(cmd, e, f)
	if err != nil {
		return err
	}
	c, err := newServeClient(f.server, f.tokenFile, f.timeout, f.concurrent)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if f.repeat > 1 {
		return invokeRepeat(ctx, e, c, f, job, input)
	}
	res, err := c.invoke(ctx, job, input)
	if err != nil {
		if f.explain && !f.jsonOut {
			if id := decisionIDOf(err); id != "" {
				if d, derr := c.decision(ctx, id); derr == nil {
					writeExplain(e.stderr, d)
				}
			}
		}
		return withCode(exitCodeOfCall(err), fmt.Errorf("invoke %s: %w", job, err))
	}
	// The call succeeded whatever happens to its decision (the server
	// keeps the newest 10,000): a failure to fetch it is only a warning.
	var d *route.Decision
	if f.explain || !f.quiet && !f.jsonOut {
		if d, err = c.decision(ctx, res.DecisionID); err != nil && f.explain {
			fmt.Fprintf(e.stderr, "ferry: fetch decision %s: %v\n", res.DecisionID, err)
		}
	}
	if f.jsonOut {
		return writeIndented(e.stdout, invokeJSON{InvokeResult: *res, Decision: d})
	}
	if _, err := e.stdout.Write(res.Output); err != nil {
		return withCode(exitHost, err)
	}
	if out, ok := e.stdout.(*os.File); ok && isTerminal(out) && len(res.Output) > 0 && !bytes.HasSuffix(res.Output, []byte("\n")) {
		fmt.Fprintln(e.stdout)
	}
	if f.explain {
		if d != nil {
			writeExplain(e.stderr, d)
		}
	} else if !f.quiet {
		fmt.Fprintln(e.stderr, callLine(res, d))
	}
	return nil
}

// invokeJSON is invoke --json's output: the server's InvokeResult, and the
// decision with --explain.
type invokeJSON struct {
	api.InvokeResult
	Decision *route.Decision `json:"decision,omitempty"`
}

func readInvokeInput(cmd *cobra.Command, e *env, f *invokeFlags) ([]byte, error) {
	hasInput := cmd.Flags().Changed("input")
	if hasInput && f.inputFile != "" {
		return nil, withCode(exitUsage, errors.New("--input and --input-file are mutually exclusive"))
	}
	var r io.Reader
	switch {
	case hasInput:
		if len(f.input) > maxInvokeInput {
			return nil, withCode(exitUsage, fmt.Errorf("--input of %d bytes is over the %d MiB limit", len(f.input), maxInvokeInput>>20))
		}
		return []byte(f.input), nil
	case f.inputFile != "" && f.inputFile != "-":
		file, err := os.Open(f.inputFile)
		if err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("--input-file: %w", err))
		}
		defer file.Close()
		r = file
	default:
		if f.inputFile == "" && isTerminal(e.stdin) {
			return nil, nil // nothing piped in: empty input, do not hang
		}
		r = e.stdin
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInvokeInput+1))
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("read input: %w", err))
	}
	if len(b) > maxInvokeInput {
		return nil, withCode(exitUsage, fmt.Errorf("the input is over the %d MiB limit", maxInvokeInput>>20))
	}
	return b, nil
}

// invokeRepeat makes f.repeat calls, f.concurrent at a time, and prints a
// summary. A failure that every further call would repeat (unknown job,
// wrong token, server unreachable) stops at once; job and host failures
// are counted and the last one decides the exit status.
func invokeRepeat(ctx context.Context, e *env, c *serveClient, f *invokeFlags, job string, input []byte) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		t       = newTally()
		slowest *api.InvokeResult
		fatal   error
		lastErr error
		codes   = map[string]int{}
	)
	next := make(chan struct{})
	go func() {
		defer close(next)
		for range f.repeat {
			select {
			case next <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for range f.concurrent {
		wg.Go(func() {
			for range next {
				res, err := c.invoke(ctx, job, input)
				mu.Lock()
				switch {
				case err == nil:
					t.add(res.RanOn, res.LatencyMs, res.CostUSD)
					if res.Attempts > 1 {
						t.retried++
					}
					if res.Cold {
						t.cold++
					}
					if slowest == nil || res.LatencyMs > slowest.LatencyMs {
						slowest = res
					}
				case ctx.Err() != nil:
				case exitCodeOfCall(err) == exitUsage || isTransport(err) && !isTimeout(err):
					if fatal == nil {
						fatal = err
					}
					cancel()
				default:
					t.failed++
					lastErr = err
					codes[codeOf(err)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if fatal != nil {
		return withCode(exitCodeOfCall(fatal), fmt.Errorf("invoke %s: %w", job, fatal))
	}
	if err := ctx.Err(); err != nil && t.calls+t.failed < f.repeat {
		return withCode(exitHost, fmt.Errorf("invoke %s: stopped after %d calls: %w", job, t.calls+t.failed, err))
	}
	var d *route.Decision
	if f.explain && slowest != nil {
		var err error
		if d, err = c.decision(ctx, slowest.DecisionID); err != nil {
			fmt.Fprintf(e.stderr, "ferry: fetch decision %s: %v\n", slowest.DecisionID, err)
		}
	}
	if f.jsonOut {
		s := repeatJSON{Job: job, Calls: t.calls + t.failed, Failed: t.failed, Retried: t.retried, Cold: t.cold, Seconds: elapsed.Seconds(),
			RanOn: t.ranOn, LatencyMs: t.latencySummary(), CostUSD: t.costUSD, Errors: codes, Decision: d}
		if f.explain && slowest != nil {
			s.Slowest = slowest
		}
		if err := writeIndented(e.stdout, s); err != nil {
			return err
		}
	} else {
		writeRepeatSummary(e.stdout, job, t, elapsed, codes)
		if d != nil {
			fmt.Fprintf(e.stderr, "the slowest call (%s):\n", fmtMs(slowest.LatencyMs))
			writeExplain(e.stderr, d)
		}
	}
	if lastErr != nil {
		return withCode(exitCodeOfCall(lastErr), fmt.Errorf("invoke %s: %d of %d calls failed; the last: %w", job, t.failed, t.calls+t.failed, lastErr))
	}
	return nil
}

// repeatJSON is invoke --repeat --json's output.
type repeatJSON struct {
	Job       string             `json:"job"`
	Calls     int                `json:"calls"`
	Failed    int                `json:"failed"`
	Retried   int                `json:"retried"` // took more than one attempt (hedged or failed over)
	Cold      int                `json:"cold"`    // started an instance first
	Seconds   float64            `json:"seconds"`
	RanOn     map[string]int     `json:"ran_on"`
	LatencyMs map[string]float64 `json:"latency_ms"`
	CostUSD   float64            `json:"cost_usd"`
	Errors    map[string]int     `json:"errors"`
	Slowest   *api.InvokeResult  `json:"slowest,omitempty"`
	Decision  *route.Decision    `json:"decision,omitempty"`
}

func writeRepeatSummary(w io.Writer, job string, t *tally, elapsed time.Duration, codes map[string]int) {
	n := t.calls + t.failed
	fmt.Fprintf(w, "%s: %d calls in %.2f s (%.0f/s), %d failed\n", job, n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), t.failed)
	if t.calls > 0 {
		fmt.Fprintf(w, "  ran on   %s\n", t.where(true))
		fmt.Fprintf(w, "  latency  p50 %s, p99 %s, max %s (decision to answer, in ferry serve)\n",
			fmtMs(t.percentile(50)), fmtMs(t.percentile(99)), fmtMs(t.percentile(100)))
		fmt.Fprintf(w, "  cost     %s in all\n", fmtUSD(t.costUSD))
	}
	if t.cold > 0 {
		fmt.Fprintf(w, "  cold     %s started an instance first\n", plural(t.cold, "call"))
	}
	if t.retried > 0 {
		fmt.Fprintf(w, "  retried  %s took a second attempt (a hedge, or a failover)\n", plural(t.retried, "call"))
	}
	if len(codes) > 0 {
		var parts []string
		for _, k := range sortedKeys(codes) {
			parts = append(parts, fmt.Sprintf("%s %d", k, codes[k]))
		}
		fmt.Fprintf(w, "  errors   %s\n", strings.Join(parts, ", "))
	}
}

// callLine is the one line invoke prints on stderr after a call.
func callLine(r *api.InvokeResult, d *route.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ran on %s", r.RanOn)
	if d != nil {
		b.WriteString(" (" + string(d.Strategy))
		if len(d.Reasons) > 0 {
			b.WriteString(", " + d.Reasons[0])
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " in %s", fmtMs(r.LatencyMs))
	if r.Cold {
		b.WriteString(", cold start")
	}
	if d != nil && len(d.Chain) > 0 && d.Chain[0].Target != r.RanOn {
		if d.Strategy == route.Hedged {
			b.WriteString(", the hedge answered first")
		} else {
			fmt.Fprintf(&b, ", failed over from %s", d.Chain[0].Target)
		}
	}
	b.WriteString(", " + fmtUSD(r.CostUSD))
	return b.String()
}

// writeExplain prints a decision for people.
func writeExplain(w io.Writer, d *route.Decision) {
	fmt.Fprintf(w, "decision %s: job %s, %d bytes in, %s\n", d.ID, d.Job, d.InputBytes, d.Strategy)
	fmt.Fprintln(w, "  candidates, best first:")
	writeTable(w, func(tw io.Writer) {
		for i, c := range d.Chain {
			note := ""
			if d.Strategy == route.Hedged && i == 1 {
				note = fmt.Sprintf("hedge: starts after %s without an answer", fmtMs(d.HedgeAfter))
			}
			if c.Breaker != "" && c.Breaker != "closed" {
				note = strings.TrimPrefix(note+", breaker "+c.Breaker, ", ")
			}
			fmt.Fprintf(tw, "    %d. %s\tscore %.3g\texpected %s\t%s\t%s\n", i+1, c.Target, c.Score, fmtMs(c.ExpectedMs), fmtUSD(c.CostUSD), note)
		}
	})
	for _, x := range d.Excluded {
		fmt.Fprintf(w, "  left out: %s: %s\n", x.Target, x.Reason)
	}
	for _, r := range d.Reasons {
		fmt.Fprintf(w, "  why: %s\n", r)
	}
	p := d.Pressure
	fmt.Fprintf(w, "  local load: cpu %.0f%%, memory %.0f%%, calls in flight %.0f%%", 100*p.CPU, 100*p.Memory, 100*p.InFlight)
	if p.QueueDepth > 0 {
		fmt.Fprintf(w, ", %d queued", p.QueueDepth)
	}
	fmt.Fprintln(w)
	writeTable(w, func(tw io.Writer) {
		for i, a := range d.Attempts {
			what := a.Outcome
			if a.Cold {
				what += ", cold start"
			}
			if a.Outcome == "canceled" && d.Strategy == route.Hedged {
				what += " (the other target answered first)"
			} else if a.Error != "" && a.Error != d.Error {
				what += ": " + a.Error
			}
			fmt.Fprintf(tw, "  attempt %d:\t%s\t%s\t%s\n", i+1, a.Target, fmtMs(a.Ms), what)
		}
	})
	if d.Error != "" {
		fmt.Fprintf(w, "  failed after %s\n", fmtMs(d.LatencyMs))
	} else if d.RanOn != "" {
		fmt.Fprintf(w, "  ran on %s in %s, %s\n", d.RanOn, fmtMs(d.LatencyMs), fmtUSD(d.CostUSD))
	}
}

// serveClient calls ferry serve's API (docs/serve.md). ferry invoke and
// ferry jobs share it.
type serveClient struct {
	base  string // no trailing slash
	token string
	hc    *http.Client
}

// newServeClient resolves the server (flag, $FERRY_SERVER, default) and
// the token (file, $FERRY_TOKEN).
func newServeClient(server, tokenFile string, timeout time.Duration, conns int) (*serveClient, error) {
	if server == "" {
		server = os.Getenv("FERRY_SERVER")
	}
	if server == "" {
		server = defaultServer
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, withCode(exitUsage, fmt.Errorf("--server %q: want a URL such as %s", server, defaultServer))
	}
	if timeout < 0 {
		return nil, withCode(exitUsage, fmt.Errorf("--timeout %s: must not be negative", timeout))
	}
	tok, err := readToken(tokenFile, "FERRY_TOKEN")
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--token-file: %w", err))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(conns, 2)
	return &serveClient{base: strings.TrimSuffix(u.String(), "/"), token: tok, hc: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

func (c *serveClient) invoke(ctx context.Context, job string, input []byte) (*api.InvokeResult, error) {
	var res api.InvokeResult
	if err := c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(job)+"/invoke", input, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (c *serveClient) decision(ctx context.Context, id string) (*route.Decision, error) {
	var d route.Decision
	if err := c.do(ctx, http.MethodGet, "/v1/decisions/"+url.PathEscape(id), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// do sends one request and decodes a 200 answer into out; any other answer
// is an *apiError, and a request that got no answer a *transportError.
func (c *serveClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &transportError{server: c.base, timeout: c.hc.Timeout, err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return &transportError{server: c.base, timeout: c.hc.Timeout, err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(b) > maxAnswer {
		return fmt.Errorf("%s %s: the answer is over %d MiB", method, path, maxAnswer>>20)
	}
	if resp.StatusCode != http.StatusOK {
		return newAPIError(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s%s did not answer as ferry serve does (is --server right?): %w", c.base, path, err)
	}
	return nil
}

// apiError is an error answer of ferry serve: {"error", "code", "details"}.
type apiError struct {
	Status  int            `json:"-"`
	Message string         `json:"error"`
	Code    string         `json:"code"`
	Details map[string]any `json:"details"`
}

func newAPIError(status int, body []byte) *apiError {
	e := &apiError{Status: status}
	if json.Unmarshal(body, e) != nil || e.Message == "" {
		// Not ferry serve's error shape: a proxy, or another server.
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	return e
}

func (e *apiError) Error() string {
	s := e.Message
	if e.Code != "" {
		s += fmt.Sprintf(" (%d %s)", e.Status, e.Code)
	} else {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Status == http.StatusUnauthorized {
		s += "; give ferry serve's token in $FERRY_TOKEN or --token-file"
	}
	return s
}

// transportError is a request that got no answer.
type transportError struct {
	server  string
	timeout time.Duration
	err     error
}

func (e *transportError) Error() string {
	var ue *url.Error
	if e.timedOut() {
		return fmt.Sprintf("no answer from %s within --timeout %s", e.server, e.timeout)
	}
	if errors.As(e.err, &ue) {
		return fmt.Sprintf("cannot reach ferry serve at %s (is it running? see --server, $FERRY_SERVER): %v", e.server, ue.Err)
	}
	return fmt.Sprintf("ferry serve at %s: %v", e.server, e.err)
}

func (e *transportError) Unwrap() error { return e.err }

func (e *transportError) timedOut() bool {
	var ue *url.Error
	return errors.As(e.err, &ue) && ue.Timeout()
}

func isTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// isTimeout: the server took longer than --timeout to answer.
func isTimeout(err error) bool {
	var te *transportError
	return errors.As(err, &te) && te.timedOut()
}

// exitCodeOfCall maps a call's error to invoke's exit status.
func exitCodeOfCall(err error) int {
	var ae *apiError
	if !errors.As(err, &ae) {
		return exitHost
	}
	switch ae.Code {
	case "EXECUTION_ERROR", "PAYLOAD_TOO_LARGE":
		return exitJobError
	case "UNAVAILABLE", "INFRASTRUCTURE_ERROR":
		return exitHost
	}
	if ae.Status >= 400 && ae.Status < 500 {
		return exitUsage // NOT_FOUND, UNAUTHORIZED, INVALID_REQUEST
	}
	return exitHost
}

// codeOf is the error's API code, for counting failures.
func codeOf(err error) string {
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Code != "":
		return ae.Code
	case errors.As(err, &ae):
		return fmt.Sprintf("HTTP %d", ae.Status)
	case isTimeout(err):
		return "TIMEOUT"
	}
	return "other"
}

// decisionIDOf is the decision a failed call carried, if any.
func decisionIDOf(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		if id, ok := ae.Details["decision_id"].(string); ok {
			return id
		}
	}
	return ""
}

// tally sums up calls: where they ran, their latency and their cost.
type tally struct {
	calls, failed, retried int
	cold                   int
	ranOn                  map[string]int
	lat                    []float64
	sorted                 bool
	costUSD                float64
}

func newTally() *tally { return &tally{ranOn: map[string]int{}} }

func (t *tally) add(ranOn string, latMs, costUSD float64) {
	t.calls++
	t.ranOn[ranOn]++
	t.lat = append(t.lat, latMs)
	t.sorted = false
	t.costUSD += costUSD
}

// percentile is the nearest-rank percentile p (0–100] of the latencies.
func (t *tally) percentile(p float64) float64 {
	if len(t.lat) == 0 {
		return 0
	}
	if !t.sorted {
		slices.Sort(t.lat)
		t.sorted = true
	}
	i := int(math.Ceil(p/100*float64(len(t.lat)))) - 1
	return t.lat[min(max(i, 0), len(t.lat)-1)]
}

func (t *tally) latencySummary() map[string]float64 {
	if t.calls == 0 {
		return map[string]float64{}
	}
	return map[string]float64{"p50": t.percentile(50), "p99": t.percentile(99), "max": t.percentile(100)}
}

// where lists the targets, most calls first: "local 180 (90%), edge 20 (10%)".
func (t *tally) where(share bool) string {
	keys := sortedKeys(t.ranOn)
	slices.SortStableFunc(keys, func(a, b string) int { return t.ranOn[b] - t.ranOn[a] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, t.ranOn[k])
		if share && len(keys) > 1 {
			parts[i] += fmt.Sprintf(" (%.0f%%)", 100*float64(t.ranOn[k])/float64(t.calls))
		}
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// fmtMs prints milliseconds with about three significant digits.
func fmtMs(ms float64) string {
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

// fmtUSD prints a (usually tiny) amount with two significant digits and
// no exponent: $0.000000044.
func fmtUSD(v float64) string {
	if v == 0 {
		return "$0"
	}
	decimals := max(2, 1-int(math.Floor(math.Log10(math.Abs(v)))))
	return fmt.Sprintf("$%.*f", decimals, v)
}

// writeTable aligns what fill writes (tab-separated cells) and drops the
// padding tabwriter leaves at the end of lines whose last cell is empty.
func writeTable(w io.Writer, fill func(tw io.Writer)) {
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fill(tw)
	tw.Flush()
	for line := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

func writeIndented(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return withCode(exitHost, err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return withCode(exitHost, err)
	}
	return nil
}
