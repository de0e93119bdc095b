// Package cost is Ferry's cost model: what one invocation costs on a FaaS
// provider (its own meter and billing granularity, plus the per-request
// price) and on the operator's VM (its hourly price spread over the work it
// does), and what a call rate costs in a month.
//
// It is arithmetic only: no I/O, no defaults of its own. Prices come from
// the policy (orchestrator/policy holds the published defaults with their
// sources); docs/cost.md gives the formulas.
package cost

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// HoursPerMonth is the month the projections use (AWS's convention).
const HoursPerMonth = 730

// SecondsPerMonth is HoursPerMonth in seconds.
const SecondsPerMonth = HoursPerMonth * 3600

// Meter is what a provider bills compute by.
type Meter string

// Meters.
const (
	// MeterGBSecond: configured memory (GB = MB/1024) × billed wall time
	// (AWS Lambda).
	MeterGBSecond Meter = "gb-second"
	// MeterVCPUGiBSecond: configured vCPU × billed time plus configured
	// memory (GiB) × billed time (Cloud Run functions).
	MeterVCPUGiBSecond Meter = "vcpu-gib-second"
	// MeterObservedGBSecond: memory the invocation used, rounded up to a
	// step and capped, × billed time (Azure Functions Consumption).
	MeterObservedGBSecond Meter = "observed-gb-second"
	// MeterCPUMs: CPU milliseconds only; wall time and memory are free
	// (Cloudflare Workers Standard).
	MeterCPUMs Meter = "cpu-ms"
)

var meters = []Meter{MeterGBSecond, MeterVCPUGiBSecond, MeterObservedGBSecond, MeterCPUMs}

// Price is one provider's list price. All amounts are US dollars.
type Price struct {
	Meter Meter `json:"meter"`
	// PerRequestUSD is charged once per invocation.
	PerRequestUSD float64 `json:"per_request_usd"`
	// PerGBSecondUSD prices memory time (gb-second, observed-gb-second,
	// and the memory part of vcpu-gib-second).
	PerGBSecondUSD float64 `json:"per_gb_second_usd,omitempty"`
	// PerVCPUSecondUSD prices CPU time (vcpu-gib-second).
	PerVCPUSecondUSD float64 `json:"per_vcpu_second_usd,omitempty"`
	// PerCPUMsUSD prices CPU milliseconds (cpu-ms).
	PerCPUMsUSD float64 `json:"per_cpu_ms_usd,omitempty"`
	// GranularityMs: billed time is rounded up to a multiple of this.
	GranularityMs int `json:"granularity_ms"`
	// MinimumMs is the least time billed for one invocation (0: none).
	MinimumMs int `json:"minimum_ms,omitempty"`
	// MemoryStepMB and MemoryCapMB shape observed memory
	// (observed-gb-second): rounded up to the step, capped at the cap.
	MemoryStepMB int `json:"memory_step_mb,omitempty"`
	MemoryCapMB  int `json:"memory_cap_mb,omitempty"`
	// MonthlyMinimumUSD is a fixed monthly charge per account (the Workers
	// Paid plan's $5). Shown beside projections, never added to one job's.
	MonthlyMinimumUSD float64 `json:"monthly_minimum_usd,omitempty"`
	// Source and Seen say where the numbers come from and when they were
	// read (YYYY-MM-DD).
	Source string `json:"source,omitempty"`
	Seen   string `json:"seen,omitempty"`
}

// ErrInvalidPrice reports a price that cannot be used.
var ErrInvalidPrice = errors.New("invalid price")

// maxUnitPrice bounds every unit price: anything dearer than a dollar per
// request, GB-second or CPU-millisecond is a typo.
const maxUnitPrice = 1.0

// Validate checks that the price is usable.
func (p Price) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidPrice, field, fmt.Sprintf(format, args...)))
	}
	known := false
	for _, m := range meters {
		known = known || p.Meter == m
	}
	if !known {
		bad("meter", "%q is not one of gb-second, vcpu-gib-second, observed-gb-second, cpu-ms", p.Meter)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"per_request_usd", p.PerRequestUSD}, {"per_gb_second_usd", p.PerGBSecondUSD},
		{"per_vcpu_second_usd", p.PerVCPUSecondUSD}, {"per_cpu_ms_usd", p.PerCPUMsUSD},
	} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > maxUnitPrice {
			bad(f.name, "%v is outside 0..%v", f.v, maxUnitPrice)
		}
	}
	if math.IsNaN(p.MonthlyMinimumUSD) || p.MonthlyMinimumUSD < 0 || p.MonthlyMinimumUSD > 1e6 {
		bad("monthly_minimum_usd", "%v is outside 0..1000000", p.MonthlyMinimumUSD)
	}
	if p.GranularityMs < 1 || p.GranularityMs > 60_000 {
		bad("granularity_ms", "%d is outside 1..60000", p.GranularityMs)
	}
	if p.MinimumMs < 0 || p.MinimumMs > 60_000 {
		bad("minimum_ms", "%d is outside 0..60000", p.MinimumMs)
	}
	if p.MemoryStepMB < 0 || p.MemoryStepMB > 10_240 || p.MemoryCapMB < 0 || p.MemoryCapMB > 1<<20 {
		bad("memory_step_mb", "step %d or cap %d out of range", p.MemoryStepMB, p.MemoryCapMB)
	}
	return errors.Join(errs...)
}

// Usage is what one invocation uses.
type Usage struct {
	// MemoryMB is the memory the function is configured with.
	MemoryMB int
	// ObservedMemoryMB is the memory the invocation actually used
	// (observed-gb-second); 0 means MemoryMB.
	ObservedMemoryMB int
	// VCPU is the CPU the function is configured with (vcpu-gib-second).
	VCPU float64
	// Wall is the wall-clock duration; CPU is the CPU time (cpu-ms). For a
	// CPU-bound job the two are equal.
	Wall, CPU time.Duration
}

// Estimate is the cost of one invocation.
type Estimate struct {
	// BilledMs is the time the meter bills: wall time rounded up (and
	// raised to the minimum), or CPU ms for cpu-ms.
	BilledMs   int64   `json:"billed_ms"`
	ComputeUSD float64 `json:"compute_usd"`
	RequestUSD float64 `json:"request_usd"`
	TotalUSD   float64 `json:"total_usd"`
}

// Invocation is the cost of one invocation with usage u.
func (p Price) Invocation(u Usage) Estimate {
	d := u.Wall
	if p.Meter == MeterCPUMs {
		d = u.CPU
	}
	billed := roundUpMs(d, p.GranularityMs)
	if billed < int64(p.MinimumMs) {
		billed = int64(p.MinimumMs)
	}
	secs := float64(billed) / 1000
	var compute float64
	switch p.Meter {
	case MeterGBSecond:
		compute = float64(u.MemoryMB) / 1024 * secs * p.PerGBSecondUSD
	case MeterVCPUGiBSecond:
		compute = u.VCPU*secs*p.PerVCPUSecondUSD + float64(u.MemoryMB)/1024*secs*p.PerGBSecondUSD
	case MeterObservedGBSecond:
		mb := u.ObservedMemoryMB
		if mb <= 0 {
			mb = u.MemoryMB
		}
		if p.MemoryStepMB > 0 {
			mb = (mb + p.MemoryStepMB - 1) / p.MemoryStepMB * p.MemoryStepMB
		}
		if p.MemoryCapMB > 0 && mb > p.MemoryCapMB {
			mb = p.MemoryCapMB
		}
		compute = float64(mb) / 1024 * secs * p.PerGBSecondUSD
	case MeterCPUMs:
		compute = float64(billed) * p.PerCPUMsUSD
	}
	return Estimate{BilledMs: billed, ComputeUSD: compute, RequestUSD: p.PerRequestUSD, TotalUSD: compute + p.PerRequestUSD}
}

// roundUpMs rounds d up to a whole number of granularity-ms units, in ms.
// Any positive duration bills at least one unit.
func roundUpMs(d time.Duration, granularityMs int) int64 {
	if granularityMs < 1 {
		granularityMs = 1
	}
	g := int64(granularityMs) * int64(time.Millisecond)
	if d <= 0 {
		return 0
	}
	// (d-1)/g+1 rather than (d+g-1)/g, which overflows for d near
	// MaxInt64 and billed a huge duration as 0 ms.
	units := (int64(d)-1)/g + 1
	return units * int64(granularityMs)
}

// VM is the machine the orchestrator runs on. Running a job there costs the
// share of the VM's price that the job's CPU time takes, at the VM's
// expected utilisation: the price of an idle VM is spread over the work it
// does.
type VM struct {
	// Instance names the machine type, for display.
	Instance string `json:"instance,omitempty"`
	// HourlyUSD is the on-demand price.
	HourlyUSD float64 `json:"hourly_usd"`
	// VCPUs is the number of vCPUs.
	VCPUs int `json:"vcpus"`
	// Utilisation is the expected average fraction of the vCPUs that is
	// busy, in (0, 1]. Lower utilisation makes local work dearer.
	Utilisation float64 `json:"utilisation"`
	Source      string  `json:"source,omitempty"`
	Seen        string  `json:"seen,omitempty"`
}

// ErrInvalidVM reports VM settings that cannot be used.
var ErrInvalidVM = errors.New("invalid vm")

// Validate checks the VM settings.
func (v VM) Validate() error {
	var errs []error
	if math.IsNaN(v.HourlyUSD) || v.HourlyUSD < 0 || v.HourlyUSD > 1000 {
		errs = append(errs, fmt.Errorf("%w: hourly_usd: %v is outside 0..1000", ErrInvalidVM, v.HourlyUSD))
	}
	if v.VCPUs < 1 || v.VCPUs > 1024 {
		errs = append(errs, fmt.Errorf("%w: vcpus: %d is outside 1..1024", ErrInvalidVM, v.VCPUs))
	}
	if math.IsNaN(v.Utilisation) || v.Utilisation <= 0 || v.Utilisation > 1 {
		errs = append(errs, fmt.Errorf("%w: utilisation: %v is outside (0, 1]", ErrInvalidVM, v.Utilisation))
	}
	return errors.Join(errs...)
}

// Invocation is the cost of running for cpu on the VM:
// HourlyUSD / 3600 × seconds / (VCPUs × Utilisation).
func (v VM) Invocation(cpu time.Duration) Estimate {
	if v.VCPUs < 1 || v.Utilisation <= 0 {
		return Estimate{}
	}
	c := v.HourlyUSD / 3600 * cpu.Seconds() / (float64(v.VCPUs) * v.Utilisation)
	return Estimate{BilledMs: cpu.Milliseconds(), ComputeUSD: c, TotalUSD: c}
}

// Monthly projects a per-invocation cost at callsPerSecond over a month.
// It is the marginal list price: free allowances and fixed monthly charges
// belong to the account, not to one job, and are left out.
func Monthly(perInvocationUSD, callsPerSecond float64) float64 {
	return perInvocationUSD * callsPerSecond * SecondsPerMonth
}
