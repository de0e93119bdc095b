package policy

import (
	"net/url"
	"slices"
	"strings"

	"github.com/ferryrun/ferry/orchestrator/cost"
)

// Kind is a FaaS provider type, spelled as in the policy file.
type Kind string

// Provider kinds. The first four are the Tangle CLI's; cloudflare-workers is
// Ferry's.
const (
	AWSLambda         Kind = "aws-lambda"
	GCPFunctions      Kind = "gcp-functions"
	AzureFunctions    Kind = "azure-functions"
	Custom            Kind = "custom" // any host speaking the custom FaaS HTTP protocol
	CloudflareWorkers Kind = "cloudflare-workers"
)

// Kinds lists every provider kind.
var Kinds = []Kind{AWSLambda, GCPFunctions, AzureFunctions, Custom, CloudflareWorkers}

// Known reports whether k is a provider kind.
func (k Kind) Known() bool { return slices.Contains(Kinds, k) }

// Tangle reports whether the Tangle CLI's serverless.provider can hold k.
func (k Kind) Tangle() bool { return k.Known() && k != CloudflareWorkers }

// BlueprintName is k as blueprint.toml spells it (aws_lambda, …).
func (k Kind) BlueprintName() string { return strings.ReplaceAll(string(k), "-", "_") }

// Workers plans.
const (
	PlanFree = "free"
	PlanPaid = "paid"
)

// Lambda architectures.
const (
	ArchARM64 = "arm64"
	ArchX86   = "x86_64"
)

// Provider is one place jobs may be deployed: a provider kind with its
// account, region or endpoint, and optional overrides of the published
// limits, prices and latency estimates.
type Provider struct {
	Type Kind `json:"type"`
	// Name identifies the entry; empty: derived (see ID).
	Name string `json:"name,omitempty"`
	// Region (aws-lambda).
	Region string `json:"region,omitempty"`
	// ProjectID (gcp-functions).
	ProjectID string `json:"project_id,omitempty"`
	// SubscriptionID (azure-functions).
	SubscriptionID string `json:"subscription_id,omitempty"`
	// Endpoint is the base URL of a custom FaaS host.
	Endpoint string `json:"endpoint,omitempty"`
	// AccountID is the Cloudflare account (cloudflare-workers).
	AccountID string `json:"account_id,omitempty"`
	// Plan is the Workers plan: free or paid (default paid).
	Plan string `json:"plan,omitempty"`
	// CPUMs is the Workers per-invocation CPU limit in ms (paid: default
	// 30000, at most 300000; free: 10).
	CPUMs int `json:"cpu_ms,omitempty"`
	// Arch is the Lambda architecture: arm64 (default) or x86_64.
	Arch string `json:"arch,omitempty"`
	// Role is the IAM execution role Lambda functions run as
	// (arn:aws:iam::ACCOUNT:role/NAME). Deploying to Lambda requires it;
	// Ferry never invents one.
	Role string `json:"role,omitempty"`
	// AllowNetwork: may jobs that make HTTP requests run here? Default yes.
	AllowNetwork *bool `json:"allow_network,omitempty"`
	// Limits overrides the published limits, field by field (zero: keep).
	Limits *Limits `json:"limits,omitempty"`
	// Price replaces the published price. A custom host has none until one
	// is set here.
	Price *cost.Price `json:"price,omitempty"`
	// Latency overrides the latency estimates, field by field.
	Latency *Latency `json:"latency,omitempty"`
}

// ID is the entry's identity in plans and commands: its name, or
// "<type>/<region|project|endpoint host>".
func (p Provider) ID() string {
	if p.Name != "" {
		return p.Name
	}
	switch p.Type {
	case AWSLambda:
		return string(p.Type) + "/" + p.Region
	case GCPFunctions:
		return string(p.Type) + "/" + p.ProjectID
	case Custom:
		if u, err := url.Parse(p.Endpoint); err == nil && u.Host != "" {
			return string(p.Type) + "/" + u.Host
		}
	}
	return string(p.Type)
}

// Limits are what a provider allows one function.
type Limits struct {
	// MemoryMB is the most memory a function may have; MinMemoryMB the least.
	MemoryMB    int `json:"memory_mb,omitempty"`
	MinMemoryMB int `json:"min_memory_mb,omitempty"`
	// FixedMemory: memory cannot be configured; every function gets MemoryMB.
	FixedMemory bool `json:"fixed_memory,omitempty"`
	// TimeoutSecs is the longest an invocation may run (wall time, or CPU
	// time when CPUTime is set).
	TimeoutSecs int `json:"timeout_secs,omitempty"`
	// TimeoutMs refines TimeoutSecs below a second (Workers Free: 10 ms).
	TimeoutMs int  `json:"timeout_ms,omitempty"`
	CPUTime   bool `json:"cpu_time,omitempty"`
	// PayloadBytes is the largest request or response body on the wire.
	PayloadBytes int `json:"payload_bytes,omitempty"`
	// PayloadExpansion is wire bytes per payload byte, from the encoding the
	// host uses (base64 in JSON: 4/3; a JSON array of numbers: up to 4).
	PayloadExpansion float64 `json:"payload_expansion,omitempty"`
	// RuntimeOverheadMB is memory the host needs besides the job's linear
	// memory (the Ferry runtime, compiled code, the JS shim).
	RuntimeOverheadMB int `json:"runtime_overhead_mb,omitempty"`
	// PackageBytes is the largest code the provider deploys (Workers: a
	// Worker's modules together); 0: not limited here.
	PackageBytes int `json:"package_bytes,omitempty"`
}

// Timeout returns the limit in milliseconds.
func (l Limits) Timeout() int {
	if l.TimeoutMs > 0 {
		return l.TimeoutMs
	}
	return l.TimeoutSecs * 1000
}

// Latency is what a call costs in time besides the job itself.
type Latency struct {
	// OverheadMs is a warm call's round trip without the job (network,
	// invoke API, instantiation).
	OverheadMs float64 `json:"overhead_ms,omitempty"`
	// ColdStartMs is added when no warm instance is ready.
	ColdStartMs float64 `json:"cold_start_ms,omitempty"`
	// BandwidthMBps moves the payload (wire bytes) each way.
	BandwidthMBps float64 `json:"bandwidth_mbps,omitempty"`
	Source        string  `json:"source,omitempty"`
}

// envelopeBytes is the room a request or response needs besides the
// payload (JSON keys, headers).
const envelopeBytes = 1024

// Published limits (../docs/cost.md and docs/policy.md cite the sources).
var defaultLimits = map[Kind]Limits{
	// Lambda: 128–10240 MB, 900 s, 6 MiB synchronous Invoke; Ferry's Lambda
	// host carries the payload base64-encoded in JSON. The bootstrap's own
	// memory peaks at ~155 MB for a 2.8 MB Go guest while the tiered
	// engine compiles in the background (hosts/lambda.DefaultOverheadMB).
	AWSLambda: {MemoryMB: 10240, MinMemoryMB: 128, TimeoutSecs: 900, PayloadBytes: 6 << 20, PayloadExpansion: 4.0 / 3, RuntimeOverheadMB: 128},
	// Cloud Run functions: 32 GiB, 60 min, 10 MB request.
	GCPFunctions: {MemoryMB: 32768, MinMemoryMB: 128, TimeoutSecs: 3600, PayloadBytes: 10 << 20, PayloadExpansion: 1, RuntimeOverheadMB: 64},
	// Azure Functions: 14 GB, 10 min (Consumption), 100 MB request.
	AzureFunctions: {MemoryMB: 14336, MinMemoryMB: 128, TimeoutSecs: 600, PayloadBytes: 100 << 20, PayloadExpansion: 1, RuntimeOverheadMB: 64},
	// The custom protocol's reference limits: 2 GB, 300 s, 5 MB; bytes
	// travel as JSON arrays of numbers ("255," is 4 bytes per byte). A
	// Ferry HTTP host caps the job's linear memory at memory_mb, so no
	// overhead is added.
	Custom: {MemoryMB: 2048, MinMemoryMB: 128, TimeoutSecs: 300, PayloadBytes: 5 << 20, PayloadExpansion: 4, RuntimeOverheadMB: 0},
	// Workers: 128 MB per isolate (not configurable), CPU time per plan,
	// request body 100 MB on Free and Pro zones, a Worker's modules 64 MiB;
	// the JS shim and isolate take some of the 128 MB. Ferry's Worker
	// speaks the custom protocol: bytes as JSON arrays of numbers.
	CloudflareWorkers: {MemoryMB: 128, MinMemoryMB: 128, FixedMemory: true, TimeoutSecs: 30, CPUTime: true, PayloadBytes: 100 << 20, PayloadExpansion: 4, RuntimeOverheadMB: 16, PackageBytes: 64 << 20},
}

// EffectiveLimits are the published limits with the entry's overrides and
// plan applied.
func (p Provider) EffectiveLimits() Limits {
	l := defaultLimits[p.Type]
	if p.Type == CloudflareWorkers {
		switch {
		case p.plan() == PlanFree:
			l.TimeoutSecs, l.TimeoutMs = 0, 10
		case p.CPUMs > 0:
			l.TimeoutSecs, l.TimeoutMs = (p.CPUMs+999)/1000, p.CPUMs
		}
	}
	if o := p.Limits; o != nil {
		l.MemoryMB = pick(o.MemoryMB, l.MemoryMB)
		l.MinMemoryMB = pick(o.MinMemoryMB, l.MinMemoryMB)
		l.FixedMemory = l.FixedMemory || o.FixedMemory
		if o.TimeoutSecs > 0 || o.TimeoutMs > 0 {
			l.TimeoutSecs, l.TimeoutMs = o.TimeoutSecs, o.TimeoutMs
		}
		l.CPUTime = l.CPUTime || o.CPUTime
		l.PayloadBytes = pick(o.PayloadBytes, l.PayloadBytes)
		if o.PayloadExpansion > 0 {
			l.PayloadExpansion = o.PayloadExpansion
		}
		l.RuntimeOverheadMB = pick(o.RuntimeOverheadMB, l.RuntimeOverheadMB)
		l.PackageBytes = pick(o.PackageBytes, l.PackageBytes)
	}
	return l
}

// FitsPayload reports whether n payload bytes fit the limit on the wire.
func (l Limits) FitsPayload(n int) bool {
	exp := l.PayloadExpansion
	if exp <= 0 {
		exp = 1
	}
	return float64(n)*exp+envelopeBytes <= float64(l.PayloadBytes)
}

// MaxPayload is the largest payload that fits on the wire.
func (l Limits) MaxPayload() int {
	exp := l.PayloadExpansion
	if exp <= 0 {
		exp = 1
	}
	n := int((float64(l.PayloadBytes) - envelopeBytes) / exp)
	return max(n, 0)
}

func pick(override, def int) int {
	if override > 0 {
		return override
	}
	return def
}

func (p Provider) plan() string {
	if p.Plan == "" {
		return PlanPaid
	}
	return p.Plan
}

func (p Provider) arch() string {
	if p.Arch == "" {
		return ArchARM64
	}
	return p.Arch
}

// NetworkAllowed reports whether jobs that make HTTP requests may run here.
func (p Provider) NetworkAllowed() bool { return p.AllowNetwork == nil || *p.AllowNetwork }

const (
	pricingSeen   = "2026-11-22"
	lambdaSource  = "aws.amazon.com/lambda/pricing and AWS whitepaper 'How AWS pricing works' (us-east-1); regional rates from the price table in the artillery npm package (docs/cost.md)"
	gcpSource     = "cloud.google.com/run/pricing, request-based billing, Tier 1 (docs/cost.md)"
	azureSource   = "azure.microsoft.com/pricing/details/functions, Consumption plan; rates via third-party transcriptions, the 100 ms minimum not verified (docs/cost.md)"
	workersSource = "developers.cloudflare.com/workers/platform/pricing, Standard usage model (docs/cost.md)"
	vmSource      = "EC2 on-demand t4g.nano, us-east-1 Linux, from public price tables (docs/cost.md)"
)

// Lambda duration prices per GB-second by region, first tier: arm64, x86_64.
// Regions not listed are priced as us-east-1 (most US and EU regions are).
var lambdaRegional = map[string][2]float64{
	"af-south-1":   {0.00001768, 0.0000221},
	"ap-east-1":    {0.0000183, 0.00002292},
	"eu-south-1":   {0.0000156138, 0.0000195172},
	"me-south-1":   {0.0000165334, 0.0000206667},
	"me-central-1": {0.0000165334, 0.0000206667},
}

// EffectivePrice is the entry's price: its own, or the published default.
// ok is false when there is neither (a custom host without a price).
func (p Provider) EffectivePrice() (price cost.Price, ok bool) {
	if p.Price != nil {
		return *p.Price, true
	}
	switch p.Type {
	case AWSLambda:
		gbs := [2]float64{0.0000133334, 0.0000166667}
		if r, found := lambdaRegional[p.Region]; found {
			gbs = r
		}
		rate := gbs[0]
		if p.arch() == ArchX86 {
			rate = gbs[1]
		}
		return cost.Price{Meter: cost.MeterGBSecond, PerRequestUSD: 0.20 / 1e6, PerGBSecondUSD: rate, GranularityMs: 1,
			Source: lambdaSource, Seen: pricingSeen}, true
	case GCPFunctions:
		return cost.Price{Meter: cost.MeterVCPUGiBSecond, PerRequestUSD: 0.40 / 1e6, PerVCPUSecondUSD: 0.000024,
			PerGBSecondUSD: 0.0000025, GranularityMs: 100, Source: gcpSource, Seen: pricingSeen}, true
	case AzureFunctions:
		return cost.Price{Meter: cost.MeterObservedGBSecond, PerRequestUSD: 0.20 / 1e6, PerGBSecondUSD: 0.000016,
			GranularityMs: 1, MinimumMs: 100, MemoryStepMB: 128, MemoryCapMB: 1536, Source: azureSource, Seen: pricingSeen}, true
	case CloudflareWorkers:
		if p.plan() == PlanFree {
			return cost.Price{Meter: cost.MeterCPUMs, GranularityMs: 1, Source: workersSource + "; Free plan: not billed, 100,000 requests a day", Seen: pricingSeen}, true
		}
		return cost.Price{Meter: cost.MeterCPUMs, PerRequestUSD: 0.30 / 1e6, PerCPUMsUSD: 0.02 / 1e6, GranularityMs: 1,
			MonthlyMinimumUSD: 5, Source: workersSource, Seen: pricingSeen}, true
	}
	return cost.Price{}, false
}

// CPUShare is the fraction of one vCPU a function with memMB gets: Lambda
// allots CPU in proportion to memory (one vCPU at 1,769 MB); Cloud Run
// functions' default sizes follow the 1st-gen table. Elsewhere a job gets a
// whole vCPU. A CPU-bound job runs 1/CPUShare times slower than on one vCPU.
func (p Provider) CPUShare(memMB int) float64 {
	switch p.Type {
	case AWSLambda:
		return min(1, float64(memMB)/1769)
	case GCPFunctions:
		return min(1, gcpVCPU(memMB))
	}
	return 1
}

// VCPU is the CPU a function with memMB is configured with (billing).
func (p Provider) VCPU(memMB int) float64 {
	if p.Type == GCPFunctions {
		return gcpVCPU(memMB)
	}
	return p.CPUShare(memMB)
}

func gcpVCPU(memMB int) float64 {
	sizes := []struct {
		mb   int
		vcpu float64
	}{{4096, 2}, {2048, 1}, {1024, 0.583}, {512, 0.333}, {256, 0.167}, {128, 0.083}}
	for _, s := range sizes {
		if memMB >= s.mb {
			return s.vcpu
		}
	}
	return 0.083
}

// The latency defaults come from benchmarks/RESULTS.md (make bench, on a
// 2 vCPU VM, 2026-11-22) where a part can be measured here, and are
// estimates where only the real network would tell.
const (
	lambdaLatencySource = "cold start measured: Init Duration of the tiered bootstrap with a 2.8–2.9 MB Go guest, 397–518 ms (benchmarks/RESULTS.md, AWS Lambda host); " +
		"the warm overhead is an estimate of the network and Lambda's front end (the local path measures 0.87 ms, 0.26 ms of it inside the function)"
	workersLatencySource = "cold start measured: first call after workerd starts, 10–34 ms (echo, Go incredible-squaring; benchmarks/RESULTS.md, Cloudflare Workers host); " +
		"warm overhead = 0.8 ms measured in local workerd plus an estimated 14 ms to the nearest Cloudflare location"
	customLatencySource = "warm overhead = 0.15 ms measured for ferry host serve on loopback (benchmarks/RESULTS.md, HTTP host) plus an estimated 2 ms LAN round trip; " +
		"cold start: ferry host serve instantiates on deploy, a fresh Go instance costs ~2 ms (runtime table)"
)

var defaultLatency = map[Kind]Latency{
	AWSLambda:         {OverheadMs: 20, ColdStartMs: 450, BandwidthMBps: 100, Source: lambdaLatencySource},
	GCPFunctions:      {OverheadMs: 25, ColdStartMs: 500, BandwidthMBps: 100, Source: "estimate: not measurable here (no GCP host yet)"},
	AzureFunctions:    {OverheadMs: 30, ColdStartMs: 1000, BandwidthMBps: 100, Source: "estimate: not measurable here (no Azure host yet)"},
	Custom:            {OverheadMs: 2, ColdStartMs: 2, BandwidthMBps: 100, Source: customLatencySource},
	CloudflareWorkers: {OverheadMs: 15, ColdStartMs: 35, BandwidthMBps: 100, Source: workersLatencySource},
}

// EffectiveLatency is the latency estimate with the entry's overrides.
func (p Provider) EffectiveLatency() Latency {
	l := defaultLatency[p.Type]
	if o := p.Latency; o != nil {
		if o.OverheadMs > 0 {
			l.OverheadMs = o.OverheadMs
		}
		if o.ColdStartMs > 0 {
			l.ColdStartMs = o.ColdStartMs
		}
		if o.BandwidthMBps > 0 {
			l.BandwidthMBps = o.BandwidthMBps
		}
		if o.Source != "" {
			l.Source = o.Source
		} else {
			l.Source = "policy"
		}
	}
	return l
}

// DefaultVM is the machine assumed when the policy names none: a t4g.nano,
// the orchestrator's target, half busy on average.
func DefaultVM() cost.VM {
	return cost.VM{Instance: "t4g.nano", HourlyUSD: 0.0042, VCPUs: 2, Utilisation: 0.5, Source: vmSource, Seen: pricingSeen}
}

// String describes the entry in one line.
func (p Provider) String() string {
	if d := p.details(); d != "" {
		return p.ID() + " (" + d + ")"
	}
	return p.ID()
}

// details are the entry's settings its ID does not show.
func (p Provider) details() string {
	var extra []string
	if p.Name != "" {
		switch p.Type {
		case AWSLambda:
			extra = append(extra, string(p.Type), p.Region)
		case GCPFunctions:
			extra = append(extra, string(p.Type), "project "+p.ProjectID)
		default:
			extra = append(extra, string(p.Type))
		}
	}
	switch p.Type {
	case AWSLambda:
		extra = append(extra, p.arch())
		if p.Role != "" {
			extra = append(extra, "role "+p.Role[strings.LastIndex(p.Role, "/")+1:])
		}
	case CloudflareWorkers:
		extra = append(extra, "account "+p.AccountID, p.plan()+" plan")
	case AzureFunctions:
		extra = append(extra, "subscription "+p.SubscriptionID)
	case Custom:
		extra = append(extra, p.Endpoint)
	}
	return strings.Join(extra, ", ")
}
