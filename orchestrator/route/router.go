// Package route decides where each invocation runs and runs it there: hard
// filters from the plan, then a score from expected latency (learned per
// target), expected cost and local pressure; then a strategy (direct with a
// failover chain, or hedged for pure deterministic jobs) with circuit
// breakers, and a record of every decision and its reasons.
package route

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"sync/atomic"
	"time"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/orchestrator/plan"
)

// Knobs are the policy's routing settings (the Tangle policy's serverless
// section and Ferry's thresholds).
type Knobs struct {
	// Serverless enables remote targets at all.
	Serverless bool
	// FallbackToVM lets a call fall back to the local host when every
	// remote target failed (and the job fits locally).
	FallbackToVM bool
	// CostThresholdUSD excludes targets whose expected cost per call is
	// higher; nil: no threshold.
	CostThresholdUSD *float64
	// LatencyThresholdMs excludes targets whose expected latency (learned,
	// not just planned) is higher; nil: no threshold.
	LatencyThresholdMs *float64
	// Hedge enables hedged calls for the jobs the plan allows.
	Hedge bool
	// HedgeMinDelay is the least time a hedged call waits before starting
	// its second copy; default 1 ms. The delay adapts to the primary's
	// latency (about its p95).
	HedgeMinDelay time.Duration
	// CostWeightMsPerUSD converts cost into latency for the score: how many
	// milliseconds one dollar per call is worth. Default 1e7 (1 µ$ = 10 ms).
	CostWeightMsPerUSD float64
	// RemoteBytesPerMs is the assumed throughput to remote hosts, which
	// penalises large inputs sent away; default 10,000 (10 MB/s).
	RemoteBytesPerMs float64
	// Batch gathers small concurrent calls to a remote target into one
	// round trip when its host takes batches.
	Batch BatchConfig
}

// Job is a job's routing table.
type Job struct {
	Name string
	// Pure and Deterministic decide what may be hedged; Stateful jobs
	// are never hedged.
	Pure, Deterministic, Stateful bool
	// Force sends calls remote whenever a remote target can take them
	// (force_serverless).
	Force bool
	// PlanHedge is the plan's permission to hedge.
	PlanHedge bool
	// Local is the local target; nil when the job cannot run here.
	Local *Target
	// Remote are the remote targets the job is deployed to.
	Remote []*Target
}

// Pressure is the local machine's load, each in [0, 1].
type Pressure struct {
	CPU, Memory, InFlight float64
	// QueueDepth is the number of accepted calls waiting.
	QueueDepth int
}

// Max is the highest of the pressures.
func (p Pressure) Max() float64 { return max(p.CPU, p.Memory, p.InFlight) }

// LoadSource reports local pressure; it is called on every decision, so it
// must be cheap (read atomics a sampler maintains).
type LoadSource interface{ Pressure() Pressure }

// Strategy is how a call is run.
type Strategy string

// Strategies.
const (
	Direct Strategy = "direct" // the best target, then the failover chain
	Hedged Strategy = "hedged" // the best two at once (second after a delay); first success wins
)

// Choice is one target in a decision, with what the router expected.
type Choice struct {
	Target     string  `json:"target"`
	Score      float64 `json:"score"`
	ExpectedMs float64 `json:"expected_ms"`
	CostUSD    float64 `json:"cost_usd"`
	Breaker    string  `json:"breaker,omitempty"`
}

// Excluded is a target the router left out of a call, and why.
type Excluded struct {
	Target string `json:"target"`
	Reason string `json:"reason"`
}

// Decision is where one call goes and why. Execute fills in the outcome.
type Decision struct {
	ID         string     `json:"id"`
	Job        string     `json:"job"`
	At         time.Time  `json:"at"`
	InputBytes int        `json:"input_bytes"`
	Strategy   Strategy   `json:"strategy"`
	Chain      []Choice   `json:"chain"`
	Excluded   []Excluded `json:"excluded,omitempty"`
	Reasons    []string   `json:"reasons"`
	Pressure   Pressure   `json:"pressure"`
	HedgeAfter float64    `json:"hedge_after_ms,omitempty"`

	// The outcome.
	RanOn     string    `json:"ran_on,omitempty"`
	Attempts  []Attempt `json:"attempts,omitempty"`
	LatencyMs float64   `json:"latency_ms,omitempty"`
	CostUSD   float64   `json:"cost_usd,omitempty"`
	Error     string    `json:"error,omitempty"`

	// sealed is set (under the executor's lock) when the call has its
	// answer: a hedge's loser still running then records nothing more.
	sealed bool
}

// Attempt is one try of a call on one target.
type Attempt struct {
	Target string  `json:"target"`
	Ms     float64 `json:"ms"`
	Cold   bool    `json:"cold,omitempty"`
	// Outcome: ok, job_error, host_error, canceled (a hedge's loser),
	// skipped (breaker open).
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	// Batch is the number of calls in the round trip this one rode in,
	// when it was batched with others.
	Batch int `json:"batch,omitempty"`
}

// Errors Decide returns.
var (
	ErrUnknownJob = errors.New("unknown job")
	ErrNoTarget   = errors.New("no target can take this call")
)

// Router holds every job's routing table. It is safe for concurrent use;
// Decide allocates only the decision it returns.
type Router struct {
	knobs Knobs
	load  LoadSource
	jobs  map[string]*Job
	seq   atomic.Uint64
	boot  string
}

// NewRouter returns a router over jobs.
func NewRouter(knobs Knobs, load LoadSource, jobs []*Job) (*Router, error) {
	if knobs.HedgeMinDelay <= 0 {
		knobs.HedgeMinDelay = time.Millisecond
	}
	if knobs.CostWeightMsPerUSD <= 0 {
		knobs.CostWeightMsPerUSD = 1e7
	}
	if knobs.RemoteBytesPerMs <= 0 {
		knobs.RemoteBytesPerMs = 10_000
	}
	if load == nil {
		load = noLoad{}
	}
	knobs.Batch = knobs.Batch.withDefaults()
	r := &Router{knobs: knobs, load: load, jobs: map[string]*Job{},
		boot: strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}
	for _, j := range jobs {
		if _, dup := r.jobs[j.Name]; dup {
			return nil, fmt.Errorf("route: job %q twice", j.Name)
		}
		if j.Local == nil && len(j.Remote) == 0 {
			return nil, fmt.Errorf("route: job %q has no target", j.Name)
		}
		r.jobs[j.Name] = j
		for _, t := range j.Remote {
			if bi, ok := t.Host.(host.BatchInvoker); ok && knobs.Batch.Enabled && t.batch == nil {
				t.batch = newBatcher(t, bi, knobs.Batch)
			}
		}
	}
	return r, nil
}

type noLoad struct{}

func (noLoad) Pressure() Pressure { return Pressure{} }

// Knobs returns the router's settings.
func (r *Router) Knobs() Knobs { return r.knobs }

// Job returns a job's routing table.
func (r *Router) Job(name string) (*Job, bool) {
	j, ok := r.jobs[name]
	return j, ok
}

// Jobs returns the job names, sorted.
func (r *Router) Jobs() []string {
	out := make([]string, 0, len(r.jobs))
	for n := range r.jobs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// newID returns a decision id, unique within this process: boot + sequence.
func (r *Router) newID() string {
	return r.boot + "-" + strconv.FormatUint(r.seq.Add(1), 36)
}

// Decide routes one call of job with an input of inputBytes.
func (r *Router) Decide(job string, inputBytes int) (*Decision, error) {
	j, ok := r.jobs[job]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownJob, job)
	}
	now := time.Now()
	d := &Decision{ID: r.newID(), Job: job, At: now, InputBytes: inputBytes, Strategy: Direct}
	d.Pressure = r.load.Pressure()

	var remote []Choice
	if r.knobs.Serverless {
		for _, t := range j.Remote {
			if why := r.filter(t, inputBytes, now); why != "" {
				d.Excluded = append(d.Excluded, Excluded{Target: t.ID, Reason: why})
				continue
			}
			remote = append(remote, r.choice(t, inputBytes, d.Pressure, now))
		}
	} else if len(j.Remote) > 0 {
		d.Reasons = append(d.Reasons, "serverless is off in the policy: local only")
	}
	var local *Choice
	if j.Local != nil {
		if why := r.filter(j.Local, inputBytes, now); why != "" {
			d.Excluded = append(d.Excluded, Excluded{Target: LocalID, Reason: why})
		} else {
			c := r.choice(j.Local, inputBytes, d.Pressure, now)
			local = &c
		}
	}
	slices.SortStableFunc(remote, func(a, b Choice) int { return cmpFloat(a.Score, b.Score) })

	switch {
	case j.Force && len(remote) > 0:
		// force_serverless: remote first; local only as the fallback.
		d.Chain = remote
		d.Reasons = append(d.Reasons, "force_serverless: remote targets first, in score order")
		if local != nil && r.knobs.FallbackToVM {
			d.Chain = append(d.Chain, *local)
			d.Reasons = append(d.Reasons, "fallback_to_vm: local last")
		}
	case local != nil && (len(remote) == 0 || local.Score <= remote[0].Score):
		d.Chain = append([]Choice{*local}, remote...)
		if len(remote) == 0 {
			d.Reasons = append(d.Reasons, "local: the only target")
		} else {
			d.Reasons = append(d.Reasons, fmt.Sprintf("local scores %.3g, best remote %s %.3g", local.Score, remote[0].Target, remote[0].Score))
		}
	default:
		d.Chain = remote
		if local != nil {
			d.Reasons = append(d.Reasons, fmt.Sprintf("%s scores %.3g, local %.3g", remote[0].Target, remote[0].Score, local.Score))
			if r.knobs.FallbackToVM {
				d.Chain = append(d.Chain, *local)
				d.Reasons = append(d.Reasons, "fallback_to_vm: local last")
			}
		}
	}
	if len(d.Chain) == 0 {
		err := fmt.Errorf("%w: job %s: %s", ErrNoTarget, job, excludedText(d.Excluded))
		if allPayload(d.Excluded) {
			// The input is too large for every target: the caller's
			// limit, not an outage.
			err = fmt.Errorf("%w: input of %d bytes: %w", host.ErrLimit, inputBytes, err)
		}
		return d, err
	}
	// A forced job's local target is a fallback only: never a hedge.
	forcedLocal := j.Force && len(d.Chain) >= 2 && d.Chain[1].Target == LocalID
	if r.knobs.Hedge && j.PlanHedge && j.Pure && j.Deterministic && !j.Stateful && len(d.Chain) >= 2 && !forcedLocal {
		d.Strategy = Hedged
		first := r.target(j, d.Chain[0].Target)
		d.HedgeAfter = max(first.HedgeAfterMs(), float64(r.knobs.HedgeMinDelay)/float64(time.Millisecond))
		d.Reasons = append(d.Reasons, fmt.Sprintf("hedged: pure and deterministic; %s starts after %.3g ms without an answer", d.Chain[1].Target, d.HedgeAfter))
	}
	return d, nil
}

// filter applies the hard limits; it returns why t cannot take the call,
// or "".
func (r *Router) filter(t *Target, inputBytes int, now time.Time) string {
	if t.MaxInputBytes > 0 && inputBytes > t.MaxInputBytes {
		return fmt.Sprintf("payload: %d bytes over its limit of %d", inputBytes, t.MaxInputBytes)
	}
	if st := t.brk.state(now); st == Open {
		return "circuit breaker open after repeated host failures"
	}
	if t.Local {
		return ""
	}
	if th := r.knobs.CostThresholdUSD; th != nil && t.CostUSD > *th {
		return fmt.Sprintf("cost: %.3g USD per call over the threshold %.3g", t.CostUSD, *th)
	}
	if th := r.knobs.LatencyThresholdMs; th != nil {
		if e := t.ExpectedMs(); e > *th {
			return fmt.Sprintf("latency: expected %.3g ms over the threshold %.3g", e, *th)
		}
	}
	return ""
}

// choice scores a target: expected latency in ms, inflated by local
// queueing (1/(1-ρ), ρ the local pressure), plus cost converted to ms,
// plus the time to ship the input to a remote host. Lower is better.
func (r *Router) choice(t *Target, inputBytes int, p Pressure, now time.Time) Choice {
	exp := t.ExpectedMs()
	score := exp
	if t.Local {
		rho := math.Min(p.Max(), 0.95)
		score = exp / (1 - rho)
		if p.QueueDepth > 0 {
			score += exp * float64(p.QueueDepth) / 8
		}
	} else {
		score += float64(inputBytes) / r.knobs.RemoteBytesPerMs
	}
	score += t.CostUSD * r.knobs.CostWeightMsPerUSD
	c := Choice{Target: t.ID, Score: score, ExpectedMs: exp, CostUSD: t.CostUSD}
	if st := t.brk.state(now); st != Closed {
		c.Breaker = st.String()
	}
	return c
}

func (r *Router) target(j *Job, id string) *Target {
	if id == LocalID && j.Local != nil {
		return j.Local
	}
	for _, t := range j.Remote {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func allPayload(ex []Excluded) bool {
	for _, e := range ex {
		if !strings.HasPrefix(e.Reason, "payload") {
			return false
		}
	}
	return len(ex) > 0
}

func excludedText(ex []Excluded) string {
	if len(ex) == 0 {
		return "no targets"
	}
	s := ""
	for i, e := range ex {
		if i > 0 {
			s += "; "
		}
		s += e.Target + ": " + e.Reason
	}
	return s
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// PlanPriors are a target's estimates from the plan, the router's starting
// point until calls teach it better.
type PlanPriors struct {
	CostUSD, WarmMs, ColdMs float64
}

// Priors returns the plan's estimates for target id of jp.
func Priors(jp *plan.JobPlan, id string) PlanPriors {
	t := &jp.Local
	if id != LocalID {
		t = nil
		for i := range jp.Targets {
			if jp.Targets[i].ID == id {
				t = &jp.Targets[i]
			}
		}
	}
	var p PlanPriors
	if t == nil {
		return p
	}
	if t.Cost != nil {
		p.CostUSD = t.Cost.PerCallUSD
	}
	if t.Latency != nil {
		p.WarmMs, p.ColdMs = t.Latency.WarmMs, t.Latency.ColdStartMs
	}
	return p
}
