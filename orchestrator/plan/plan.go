// Package plan is Ferry's analyser: from the jobs' metadata, the operator's
// policy and the blueprint's own preferences it decides, for every job and
// every provider, whether the job may run there and why, what a call would
// cost and how long it would take; and for the blueprint as a whole which
// strategy applies (Serverless, Hybrid or Traditional) and which jobs run
// remotely. `ferry plan` prints it; the orchestrator deploys and routes by
// the same Plan.
//
// Make is a pure function: no I/O, no clock, no randomness. The same inputs
// give the same plan, byte for byte. The rules are in docs/policy.md, the
// cost formulas in docs/cost.md.
package plan

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ferryrun/ferry/orchestrator/cost"
	"github.com/ferryrun/ferry/orchestrator/policy"
)

// Job is what the analyser needs to know about a job (the manifest's
// analysis and profile, and blueprint.toml's overrides).
type Job struct {
	Name            string
	IsPure          bool
	IsDeterministic bool
	RequiresState   bool
	NetworkCalls    []string
	MinMemoryBytes  uint64
	// ModuleBytes is the size of the job's module.
	ModuleBytes int
	// Profile is nil when the job has no samples.
	Profile *Profile
	// Overrides from blueprint.toml; they win over measured values.
	ForceServerless bool
	MemoryMB        *int
	TimeoutSecs     *int
}

// Profile is what profiling measured.
type Profile struct {
	P50, P95, Max   time.Duration
	PeakMemoryBytes uint64
	InputBytesMax   int
	OutputBytesMax  int
	Deterministic   bool
	// NondeterministicSample names the sample whose outputs differed.
	NondeterministicSample string
}

// Preferences are blueprint.toml's [blueprint.serverless] settings.
type Preferences struct {
	// Providers the blueprint allows; empty: any.
	Providers []policy.Kind
	// Regions the blueprint allows; empty: any. Providers without a region
	// (Workers, custom hosts) are not restricted by it.
	Regions            []string
	CostThresholdUSD   *float64
	LatencyThresholdMs *float64
}

// Input is everything Make reads.
type Input struct {
	Blueprint string
	Jobs      []Job
	Policy    *policy.Policy
	Prefs     Preferences
	// CallsPerSecond is the call rate the monthly projections assume, per
	// job; 0 means DefaultCallsPerSecond.
	CallsPerSecond float64
}

// DefaultCallsPerSecond is the rate monthly projections assume by default.
const DefaultCallsPerSecond = 1.0

// Strategy is the blueprint's deployment strategy.
type Strategy string

// Strategies.
const (
	// Serverless: every job may run remotely.
	Serverless Strategy = "serverless"
	// Hybrid: some jobs may run remotely, the rest stay local.
	Hybrid Strategy = "hybrid"
	// Traditional: every job stays local.
	Traditional Strategy = "traditional"
)

// Code classifies a reason.
type Code string

// Reason codes.
const (
	CodeServerlessOff    Code = "serverless-off" // the policy turns serverless off
	CodeProvider         Code = "provider"       // blueprint.toml does not allow the provider
	CodeRegion           Code = "region"         // blueprint.toml does not allow the region
	CodeMemory           Code = "memory"
	CodeTimeout          Code = "timeout"
	CodePayload          Code = "payload"
	CodePackage          Code = "package" // the module is over the provider's code size limit
	CodeState            Code = "state"   // state, but no external store
	CodeNetwork          Code = "network" // HTTP requests, but the provider forbids them
	CodeUnprofiled       Code = "unprofiled"
	CodeCost             Code = "cost"             // over the cost threshold
	CodeLatency          Code = "latency"          // over the latency threshold
	CodeNondeterministic Code = "nondeterministic" // never hedged
	CodeForced           Code = "forced"           // force_serverless
	CodeCapacity         Code = "capacity"         // the call rate needs more CPU than the VM has
)

// Reason is one finding about a job on a target. Blocking reasons make the
// target ineligible; the others explain.
type Reason struct {
	Code     Code   `json:"code"`
	Blocking bool   `json:"blocking"`
	Message  string `json:"message"`
}

// Target is one job on one provider (or on the local machine).
type Target struct {
	// ID is the provider's ID, or "local".
	ID       string      `json:"id"`
	Kind     policy.Kind `json:"kind,omitempty"`
	Eligible bool        `json:"eligible"`
	Reasons  []Reason    `json:"reasons"`
	// MemoryMB and TimeoutMs are what the job would be deployed with.
	MemoryMB  int `json:"memory_mb,omitempty"`
	TimeoutMs int `json:"timeout_ms,omitempty"`
	// Cost is nil when it cannot be estimated (no profile, or no price).
	Cost *Cost `json:"cost"`
	// Latency is nil without a profile.
	Latency *Latency `json:"latency"`
}

// Cost is the expected cost of a call.
type Cost struct {
	PerCallUSD float64 `json:"per_call_usd"`
	BilledMs   int64   `json:"billed_ms"`
	// MonthlyUSD is PerCallUSD at the plan's call rate for a month.
	MonthlyUSD float64 `json:"monthly_usd"`
}

// Latency is the expected time of a call, job included.
type Latency struct {
	// WarmMs: the call's overhead, the job's p95 at the target's CPU
	// share, and moving the payload.
	WarmMs float64 `json:"warm_ms"`
	// ColdStartMs is added when no warm instance is ready.
	ColdStartMs float64 `json:"cold_start_ms"`
}

// Placement is where a job's calls go.
type Placement string

// Placements.
const (
	Remote Placement = "remote" // deployed to its eligible providers; the router picks per call
	Local  Placement = "local"  // always on this machine
)

// JobPlan is the plan for one job.
type JobPlan struct {
	Name      string    `json:"name"`
	Profiled  bool      `json:"profiled"`
	Placement Placement `json:"placement"`
	// Preferred is the cheapest eligible target ("local" or a provider ID)
	// the router starts from when nothing else (load, latency) weighs in.
	Preferred string `json:"preferred"`
	// Hedge: calls may be sent to two targets at once (pure, deterministic
	// jobs that run remotely).
	Hedge bool `json:"hedge"`
	// Deploy lists the providers the job is pre-deployed to.
	Deploy  []string `json:"deploy"`
	Local   Target   `json:"local"`
	Targets []Target `json:"targets"`
}

// ProviderInfo summarises a provider the plan considered.
type ProviderInfo struct {
	ID      string         `json:"id"`
	Kind    policy.Kind    `json:"kind"`
	Region  string         `json:"region,omitempty"`
	Limits  policy.Limits  `json:"limits"`
	Price   *cost.Price    `json:"price"`
	Latency policy.Latency `json:"latency"`
}

// Plan is the analyser's result.
type Plan struct {
	Blueprint string   `json:"blueprint"`
	Strategy  Strategy `json:"strategy"`
	// Why explains the strategy in one sentence.
	Why          string         `json:"why"`
	Serverless   bool           `json:"serverless"`
	FallbackToVM bool           `json:"fallback_to_vm"`
	Providers    []ProviderInfo `json:"providers"`
	VM           cost.VM        `json:"vm"`
	// Thresholds in force: the stricter of blueprint.toml's and the policy's.
	CostThresholdUSD   *float64 `json:"cost_threshold_usd"`
	LatencyThresholdMs *float64 `json:"latency_threshold_ms"`
	CallsPerSecond     float64  `json:"calls_per_second"`
	// RemoteJobs and LocalJobs partition the jobs by placement.
	RemoteJobs []string  `json:"remote_jobs"`
	LocalJobs  []string  `json:"local_jobs"`
	Jobs       []JobPlan `json:"jobs"`
	// Problems are contradictions the operator should fix (a forced job no
	// provider can run, …).
	Problems []string `json:"problems"`
}

// Job returns the plan for the job called name.
func (p *Plan) Job(name string) (*JobPlan, bool) {
	for i := range p.Jobs {
		if p.Jobs[i].Name == name {
			return &p.Jobs[i], true
		}
	}
	return nil, false
}

// Make analyses the input. Jobs come out sorted by name, targets in the
// policy's provider order.
func Make(in Input) *Plan {
	pol := in.Policy
	if pol == nil {
		pol = policy.Default()
	}
	rate := in.CallsPerSecond
	if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		rate = DefaultCallsPerSecond
	}
	a := &analyser{
		pol:     pol,
		prefs:   in.Prefs,
		rate:    rate,
		vm:      pol.VM(),
		costMax: stricter(in.Prefs.CostThresholdUSD, pol.CostThreshold()),
		latMax:  stricter(in.Prefs.LatencyThresholdMs, pol.LatencyThreshold()),
	}
	p := &Plan{
		Blueprint: in.Blueprint, Serverless: pol.Serverless.Enable, FallbackToVM: pol.Serverless.FallbackToVM,
		VM: a.vm, CostThresholdUSD: a.costMax, LatencyThresholdMs: a.latMax, CallsPerSecond: rate,
		RemoteJobs: []string{}, LocalJobs: []string{}, Problems: []string{},
	}
	providers := pol.Providers()
	for _, pr := range providers {
		info := ProviderInfo{ID: pr.ID(), Kind: pr.Type, Region: pr.Region, Limits: pr.EffectiveLimits(), Latency: pr.EffectiveLatency()}
		if price, ok := pr.EffectivePrice(); ok {
			info.Price = &price
		}
		p.Providers = append(p.Providers, info)
	}
	jobs := slices.Clone(in.Jobs)
	slices.SortFunc(jobs, func(x, y Job) int { return strings.Compare(x.Name, y.Name) })
	for _, j := range jobs {
		jp := a.job(j, providers)
		if jp.Placement == Remote {
			p.RemoteJobs = append(p.RemoteJobs, j.Name)
		} else {
			p.LocalJobs = append(p.LocalJobs, j.Name)
		}
		if j.ForceServerless && len(jp.Deploy) == 0 {
			msg := fmt.Sprintf("job %q has force_serverless but no provider can run it (see its reasons); it runs on this machine", j.Name)
			if !pol.Serverless.Enable {
				msg = fmt.Sprintf("job %q has force_serverless but serverless is off in the policy; it runs on this machine", j.Name)
			}
			p.Problems = append(p.Problems, msg)
		}
		p.Jobs = append(p.Jobs, jp)
	}
	switch {
	case !pol.Serverless.Enable:
		p.Strategy, p.Why = Traditional, "serverless is off in the policy, so every job runs on this machine"
	case len(p.Jobs) == 0:
		p.Strategy, p.Why = Traditional, "the blueprint has no jobs"
	case len(p.LocalJobs) == 0:
		p.Strategy, p.Why = Serverless, "every job may run remotely"
	case len(p.RemoteJobs) == 0:
		p.Strategy, p.Why = Traditional, "no job is eligible on any provider (see the reasons)"
	default:
		p.Strategy, p.Why = Hybrid, fmt.Sprintf("%d of %d jobs may run remotely; the others stay on this machine", len(p.RemoteJobs), len(p.Jobs))
	}
	return p
}

type analyser struct {
	pol     *policy.Policy
	prefs   Preferences
	rate    float64
	vm      cost.VM
	costMax *float64
	latMax  *float64
}

func (a *analyser) job(j Job, providers []policy.Provider) JobPlan {
	jp := JobPlan{Name: j.Name, Profiled: j.Profile != nil, Deploy: []string{}}
	jp.Local = a.local(j)
	for _, pr := range providers {
		t := a.target(j, pr)
		if !a.pol.Serverless.Enable {
			t.Reasons = append([]Reason{{Code: CodeServerlessOff, Blocking: true,
				Message: "serverless is off in the policy (ferry cloud policy --serverless true)"}}, t.Reasons...)
			t.Eligible = false
		}
		if t.Eligible {
			jp.Deploy = append(jp.Deploy, t.ID)
		}
		jp.Targets = append(jp.Targets, t)
	}
	jp.Placement = Local
	if len(jp.Deploy) > 0 {
		jp.Placement = Remote
	}
	jp.Preferred = a.preferred(j, jp)
	jp.Hedge = jp.Placement == Remote && j.IsPure && a.deterministic(j)
	return jp
}

// preferred picks the cheapest eligible target; local competes unless the
// job is forced remote. Unpriced targets lose to priced ones; ties go to
// the lower latency, then to policy order.
func (a *analyser) preferred(j Job, jp JobPlan) string {
	if jp.Placement == Local {
		return "local"
	}
	cands := []Target{}
	if !j.ForceServerless {
		cands = append(cands, jp.Local)
	}
	for _, t := range jp.Targets {
		if t.Eligible {
			cands = append(cands, t)
		}
	}
	best := cands[0]
	for _, t := range cands[1:] {
		if better(t, best) {
			best = t
		}
	}
	return best.ID
}

func better(t, than Target) bool {
	switch {
	case t.Cost != nil && than.Cost == nil:
		return true
	case t.Cost == nil && than.Cost != nil:
		return false
	case t.Cost != nil && than.Cost != nil && t.Cost.PerCallUSD != than.Cost.PerCallUSD:
		return t.Cost.PerCallUSD < than.Cost.PerCallUSD
	case t.Latency != nil && than.Latency != nil:
		return t.Latency.WarmMs < than.Latency.WarmMs
	}
	return false
}

func (a *analyser) deterministic(j Job) bool {
	return j.IsDeterministic && (j.Profile == nil || j.Profile.Deterministic)
}

// local is the job on this machine: always eligible; the thresholds only
// explain.
func (a *analyser) local(j Job) Target {
	t := Target{ID: "local", Eligible: true, Reasons: []Reason{}}
	if p := j.Profile; p != nil {
		est := a.vm.Invocation(p.P50)
		t.Cost = &Cost{PerCallUSD: est.TotalUSD, BilledMs: est.BilledMs, MonthlyUSD: cost.Monthly(est.TotalUSD, a.rate)}
		t.Latency = &Latency{WarmMs: ms(p.P95)}
		if busy := a.rate * p.P50.Seconds(); busy > float64(a.vm.VCPUs) {
			t.Reasons = append(t.Reasons, Reason{Code: CodeCapacity, Message: fmt.Sprintf(
				"at %g calls/s this job alone keeps %.3g vCPUs busy; the VM has %d, so most calls must go elsewhere",
				a.rate, busy, a.vm.VCPUs)})
		}
		if a.latMax != nil && t.Latency.WarmMs > *a.latMax {
			t.Reasons = append(t.Reasons, Reason{Code: CodeLatency, Message: fmt.Sprintf(
				"p95 %s here is over the %g ms latency threshold; only a faster machine would help", fmtDur(p.P95), *a.latMax)})
		}
	} else {
		t.Reasons = append(t.Reasons, Reason{Code: CodeUnprofiled, Message: "no samples: cost and latency unknown"})
	}
	a.notes(j, &t)
	return t
}

// notes adds the reasons that hold on every target.
func (a *analyser) notes(j Job, t *Target) {
	switch {
	case !j.IsPure:
		t.Reasons = append(t.Reasons, Reason{Code: CodeNondeterministic,
			Message: "not pure (it keeps state or makes HTTP requests), so its calls are never hedged"})
	case j.Profile != nil && !j.Profile.Deterministic:
		msg := "its samples gave different outputs on different runs, so its calls are never hedged"
		if s := j.Profile.NondeterministicSample; s != "" {
			msg = fmt.Sprintf("sample %q gave different outputs on different runs, so its calls are never hedged", s)
		}
		t.Reasons = append(t.Reasons, Reason{Code: CodeNondeterministic, Message: msg})
	case !j.IsDeterministic:
		t.Reasons = append(t.Reasons, Reason{Code: CodeNondeterministic, Message: "not deterministic, so its calls are never hedged"})
	}
}

// target assesses the job on one provider.
func (a *analyser) target(j Job, pr policy.Provider) Target {
	lim := pr.EffectiveLimits()
	t := Target{ID: pr.ID(), Kind: pr.Type, Reasons: []Reason{}}
	block := func(c Code, format string, args ...any) {
		t.Reasons = append(t.Reasons, Reason{Code: c, Blocking: true, Message: fmt.Sprintf(format, args...)})
	}
	// soft blocks: force_serverless overrides them.
	soft := func(c Code, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if j.ForceServerless {
			t.Reasons = append(t.Reasons, Reason{Code: c, Message: msg + " (overridden by force_serverless)"})
			return
		}
		block(c, "%s", msg)
	}
	name := pr.ID()

	// Where the blueprint allows jobs to go.
	if len(a.prefs.Providers) > 0 && !slices.Contains(a.prefs.Providers, pr.Type) {
		block(CodeProvider, "blueprint.toml allows only %s", kindList(a.prefs.Providers))
	}
	if len(a.prefs.Regions) > 0 && pr.Region != "" && !slices.Contains(a.prefs.Regions, pr.Region) {
		block(CodeRegion, "blueprint.toml allows only regions %s, not %s", joinComma(a.prefs.Regions), pr.Region)
	}

	// Memory.
	peak := j.MinMemoryBytes
	if j.Profile != nil {
		peak = max(peak, j.Profile.PeakMemoryBytes)
	}
	needMB := ceilMB(peak) + lim.RuntimeOverheadMB
	need := fmt.Sprintf("%d MB (peak %s + %d MB runtime)", needMB, humanBytes(peak), lim.RuntimeOverheadMB)
	if lim.RuntimeOverheadMB == 0 {
		need = fmt.Sprintf("%d MB (peak %s)", needMB, humanBytes(peak))
	}
	switch {
	case j.MemoryMB != nil:
		t.MemoryMB = *j.MemoryMB
		if lim.FixedMemory {
			t.MemoryMB = lim.MemoryMB
		}
		if *j.MemoryMB > lim.MemoryMB {
			block(CodeMemory, "blueprint.toml asks for %d MB; %s allows at most %d MB", *j.MemoryMB, name, lim.MemoryMB)
		} else if j.Profile != nil && needMB > *j.MemoryMB {
			block(CodeMemory, "blueprint.toml's %d MB is less than the %s the job needs", *j.MemoryMB, need)
		}
	default:
		t.MemoryMB = min(max(a.pol.Serverless.DefaultMemoryMB, needMB, lim.MinMemoryMB), lim.MemoryMB)
		if lim.FixedMemory {
			t.MemoryMB = lim.MemoryMB
		}
		if needMB > lim.MemoryMB {
			block(CodeMemory, "needs %s; %s allows at most %d MB", need, name, lim.MemoryMB)
		}
	}

	// Code size.
	if lim.PackageBytes > 0 && j.ModuleBytes > lim.PackageBytes {
		block(CodePackage, "the module is %s; %s takes code of at most %s", humanBytes(uint64(j.ModuleBytes)), name, humanBytes(uint64(lim.PackageBytes)))
	}

	// Timeout. CPU-time providers (Workers) limit CPU, not wall time.
	limitMs := lim.Timeout()
	switch {
	case lim.CPUTime:
		t.TimeoutMs = limitMs
	case j.TimeoutSecs != nil:
		t.TimeoutMs = *j.TimeoutSecs * 1000
		if t.TimeoutMs > limitMs {
			block(CodeTimeout, "blueprint.toml asks for a %d s timeout; %s allows at most %s", *j.TimeoutSecs, name, fmtMs(limitMs))
		}
	default:
		t.TimeoutMs = min(a.pol.Serverless.DefaultTimeoutSecs*1000, limitMs)
	}
	share := pr.CPUShare(t.MemoryMB)
	if p := j.Profile; p != nil {
		longest := scale(p.Max, share)
		if ms(longest) > float64(t.TimeoutMs) {
			what := "the timeout"
			if lim.CPUTime {
				what = "the CPU limit"
			}
			if share < 1 {
				block(CodeTimeout, "the longest sample took %s here, about %s at %d MB (%.0f%% of a vCPU); %s is %s",
					fmtDur(p.Max), fmtDur(longest), t.MemoryMB, share*100, what, fmtMs(t.TimeoutMs))
			} else {
				block(CodeTimeout, "the longest sample took %s; %s is %s", fmtDur(p.Max), what, fmtMs(t.TimeoutMs))
			}
		}
		// Payload.
		if !lim.FitsPayload(p.InputBytesMax) {
			block(CodePayload, "inputs reach %s; %s carries at most %s", humanBytes(uint64(p.InputBytesMax)), name, humanBytes(uint64(lim.MaxPayload())))
		}
		if !lim.FitsPayload(p.OutputBytesMax) {
			block(CodePayload, "outputs reach %s; %s carries at most %s", humanBytes(uint64(p.OutputBytesMax)), name, humanBytes(uint64(lim.MaxPayload())))
		}
	}

	// State and network.
	if j.RequiresState && a.pol.State() == nil {
		block(CodeState, "keeps state and no external store is configured (ferry cloud policy --state-store URL)")
	}
	if len(j.NetworkCalls) > 0 && !pr.NetworkAllowed() {
		block(CodeNetwork, "makes HTTP requests (%s) and the policy forbids network jobs on %s", joinComma(j.NetworkCalls), name)
	}

	// Without a profile nothing above could check duration, memory or
	// payload: say so, and keep the job local unless it is forced.
	if j.Profile == nil {
		soft(CodeUnprofiled, "no samples, so duration, peak memory and payload sizes are unknown; add samples to blueprint.toml or set force_serverless")
	} else {
		// Cost and latency.
		price, priced := pr.EffectivePrice()
		if priced {
			est := price.Invocation(cost.Usage{
				MemoryMB: t.MemoryMB, ObservedMemoryMB: needMB, VCPU: pr.VCPU(t.MemoryMB),
				Wall: scale(j.Profile.P50, share), CPU: j.Profile.P50,
			})
			t.Cost = &Cost{PerCallUSD: est.TotalUSD, BilledMs: est.BilledMs, MonthlyUSD: cost.Monthly(est.TotalUSD, a.rate)}
			if a.costMax != nil && est.TotalUSD > *a.costMax {
				soft(CodeCost, "about $%.3g a call, over the $%g threshold", est.TotalUSD, *a.costMax)
			}
		}
		lat := pr.EffectiveLatency()
		wire := (float64(j.Profile.InputBytesMax) + float64(j.Profile.OutputBytesMax)) * max(lim.PayloadExpansion, 1)
		transfer := 0.0
		if lat.BandwidthMBps > 0 {
			transfer = wire / (lat.BandwidthMBps * 1e6) * 1000
		}
		t.Latency = &Latency{WarmMs: round3(lat.OverheadMs + ms(scale(j.Profile.P95, share)) + transfer), ColdStartMs: lat.ColdStartMs}
		if a.latMax != nil && t.Latency.WarmMs > *a.latMax {
			soft(CodeLatency, "about %.3g ms a call warm, over the %g ms threshold", t.Latency.WarmMs, *a.latMax)
		}
	}
	if j.ForceServerless {
		t.Reasons = append(t.Reasons, Reason{Code: CodeForced, Message: "force_serverless: every call goes remote"})
	}
	a.notes(j, &t)
	t.Eligible = !slices.ContainsFunc(t.Reasons, func(r Reason) bool { return r.Blocking })
	return t
}

// stricter is the smaller of two optional limits.
func stricter(a, b *float64) *float64 {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case *b < *a:
		return b
	}
	return a
}

// scale is d on a CPU share: a CPU-bound job takes 1/share as long.
func scale(d time.Duration, share float64) time.Duration {
	if share <= 0 || share >= 1 {
		return d
	}
	return time.Duration(float64(d) / share)
}

func ceilMB(b uint64) int { return int((b + 1<<20 - 1) >> 20) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
