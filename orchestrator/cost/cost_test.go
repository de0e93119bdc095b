package cost

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The published prices the policy package uses, written out here so that the
// expected numbers below can be computed by hand.
var (
	lambdaARM = Price{Meter: MeterGBSecond, PerRequestUSD: 0.20 / 1e6, PerGBSecondUSD: 0.0000133334, GranularityMs: 1}
	cloudRun  = Price{Meter: MeterVCPUGiBSecond, PerRequestUSD: 0.40 / 1e6, PerVCPUSecondUSD: 0.000024,
		PerGBSecondUSD: 0.0000025, GranularityMs: 100}
	azure = Price{Meter: MeterObservedGBSecond, PerRequestUSD: 0.20 / 1e6, PerGBSecondUSD: 0.000016,
		GranularityMs: 1, MinimumMs: 100, MemoryStepMB: 128, MemoryCapMB: 1536}
	workers = Price{Meter: MeterCPUMs, PerRequestUSD: 0.30 / 1e6, PerCPUMsUSD: 0.02 / 1e6, GranularityMs: 1,
		MonthlyMinimumUSD: 5}
)

// near compares dollar amounts: relatively for non-zero ones (the sums are
// a few float operations, so 1e-9 is far tighter than any mistake in a
// formula), absolutely for zero.
func near(t *testing.T, want, got float64, what string) {
	t.Helper()
	if want == 0 {
		assert.InDelta(t, 0, got, 1e-18, what)
		return
	}
	assert.InEpsilon(t, want, got, 1e-9, what)
}

func TestPrice_Invocation(t *testing.T) {
	tests := []struct {
		name      string
		price     Price
		usage     Usage
		billedMs  int64
		computeUS float64 // compute dollars
		requestUS float64
	}{
		{
			name:  "lambda 1024 MB 1.2 ms rounds up to 2 ms",
			price: lambdaARM,
			usage: Usage{MemoryMB: 1024, Wall: 1200 * time.Microsecond, CPU: time.Hour},
			// 1 GB × 0.002 s × $0.0000133334
			billedMs: 2, computeUS: 1 * 0.002 * 0.0000133334, requestUS: 0.0000002,
		},
		{
			name:     "lambda exact millisecond is not rounded further",
			price:    lambdaARM,
			usage:    Usage{MemoryMB: 512, Wall: 100 * time.Millisecond},
			billedMs: 100, computeUS: 0.5 * 0.1 * 0.0000133334, requestUS: 0.0000002,
		},
		{
			name:     "lambda one nanosecond bills one millisecond",
			price:    lambdaARM,
			usage:    Usage{MemoryMB: 2048, Wall: time.Nanosecond},
			billedMs: 1, computeUS: 2 * 0.001 * 0.0000133334, requestUS: 0.0000002,
		},
		{
			name:     "lambda zero duration bills 0 ms, only the request",
			price:    lambdaARM,
			usage:    Usage{MemoryMB: 1024},
			billedMs: 0, computeUS: 0, requestUS: 0.0000002,
		},
		{
			name:     "lambda negative duration bills 0 ms",
			price:    lambdaARM,
			usage:    Usage{MemoryMB: 1024, Wall: -time.Second},
			billedMs: 0, computeUS: 0, requestUS: 0.0000002,
		},
		{
			name:  "cloud run 260 ms bills 300 ms of vCPU and memory",
			price: cloudRun,
			usage: Usage{MemoryMB: 512, VCPU: 1, Wall: 260 * time.Millisecond},
			// 1 vCPU × 0.3 s × $0.000024 + 0.5 GiB × 0.3 s × $0.0000025
			billedMs: 300, computeUS: 1*0.3*0.000024 + 0.5*0.3*0.0000025, requestUS: 0.0000004,
		},
		{
			name:     "cloud run 1 ms bills a whole 100 ms unit",
			price:    cloudRun,
			usage:    Usage{MemoryMB: 2048, VCPU: 1, Wall: time.Millisecond},
			billedMs: 100, computeUS: 1*0.1*0.000024 + 2*0.1*0.0000025, requestUS: 0.0000004,
		},
		{
			name:     "cloud run 300 ms exactly stays 300 ms",
			price:    cloudRun,
			usage:    Usage{MemoryMB: 128, VCPU: 0.083, Wall: 300 * time.Millisecond},
			billedMs: 300, computeUS: 0.083*0.3*0.000024 + 0.125*0.3*0.0000025, requestUS: 0.0000004,
		},
		{
			name:  "azure observed memory rounds up to the 128 MB step, short runs bill the 100 ms minimum",
			price: azure,
			usage: Usage{MemoryMB: 2048, ObservedMemoryMB: 200, Wall: 30 * time.Millisecond},
			// 256 MB = 0.25 GB × 0.1 s × $0.000016
			billedMs: 100, computeUS: 0.25 * 0.1 * 0.000016, requestUS: 0.0000002,
		},
		{
			name:  "azure observed memory is capped at 1536 MB",
			price: azure,
			usage: Usage{MemoryMB: 4096, ObservedMemoryMB: 3000, Wall: 1000500 * time.Microsecond},
			// 1.5 GB × 1.001 s × $0.000016
			billedMs: 1001, computeUS: 1.5 * 1.001 * 0.000016, requestUS: 0.0000002,
		},
		{
			name:  "azure without an observation uses the configured memory",
			price: azure,
			usage: Usage{MemoryMB: 1000, Wall: 250 * time.Millisecond},
			// 1000 MB → 1024 MB = 1 GB × 0.25 s × $0.000016
			billedMs: 250, computeUS: 1 * 0.25 * 0.000016, requestUS: 0.0000002,
		},
		{
			name:     "azure zero duration still bills the minimum",
			price:    azure,
			usage:    Usage{MemoryMB: 128},
			billedMs: 100, computeUS: 0.125 * 0.1 * 0.000016, requestUS: 0.0000002,
		},
		{
			name:  "workers bill CPU time, not wall time",
			price: workers,
			usage: Usage{MemoryMB: 128, Wall: 5 * time.Second, CPU: 7300 * time.Microsecond},
			// 8 CPU-ms × $0.02 per million
			billedMs: 8, computeUS: 8 * 0.02 / 1e6, requestUS: 0.0000003,
		},
		{
			name:     "workers with no CPU time bill only the request",
			price:    workers,
			usage:    Usage{MemoryMB: 128, Wall: time.Minute},
			billedMs: 0, computeUS: 0, requestUS: 0.0000003,
		},
		{
			name:     "granularity 0 is treated as 1 ms",
			price:    Price{Meter: MeterGBSecond, PerGBSecondUSD: 0.00001},
			usage:    Usage{MemoryMB: 1024, Wall: 2500 * time.Microsecond},
			billedMs: 3, computeUS: 0.003 * 0.00001,
		},
		{
			name:     "unknown meter bills the request only",
			price:    Price{Meter: "bogus", PerRequestUSD: 0.5, PerGBSecondUSD: 1, GranularityMs: 1},
			usage:    Usage{MemoryMB: 1024, Wall: time.Second},
			billedMs: 1000, computeUS: 0, requestUS: 0.5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.price.Invocation(tt.usage)
			assert.Equal(t, tt.billedMs, got.BilledMs, "billed ms")
			near(t, tt.computeUS, got.ComputeUSD, "compute")
			near(t, tt.requestUS, got.RequestUSD, "request")
			near(t, tt.computeUS+tt.requestUS, got.TotalUSD, "total")
		})
	}
}

func TestPrice_Invocation_HandComputedTotals(t *testing.T) {
	// The numbers from docs/cost.md's worked examples, spelled out as
	// decimal literals so a wrong factor in the formula cannot cancel out.
	tests := []struct {
		name  string
		price Price
		usage Usage
		total float64
	}{
		{"lambda 1024 MB 1.2 ms", lambdaARM, Usage{MemoryMB: 1024, Wall: 1200 * time.Microsecond}, 0.0000002266668},
		{"cloud run 512 MB 1 vCPU 260 ms", cloudRun, Usage{MemoryMB: 512, VCPU: 1, Wall: 260 * time.Millisecond}, 0.000007975},
		{"azure 200 MB observed 30 ms", azure, Usage{MemoryMB: 512, ObservedMemoryMB: 200, Wall: 30 * time.Millisecond}, 0.0000006},
		{"workers 7.3 ms CPU", workers, Usage{MemoryMB: 128, Wall: time.Second, CPU: 7300 * time.Microsecond}, 0.00000046},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InEpsilon(t, tt.total, tt.price.Invocation(tt.usage).TotalUSD, 1e-9)
		})
	}
}

func TestPrice_Invocation_HugeDurationDoesNotOverflow(t *testing.T) {
	tests := []struct {
		name  string
		price Price
		usage Usage
	}{
		{"wall", lambdaARM, Usage{MemoryMB: 128, Wall: time.Duration(math.MaxInt64)}},
		{"wall coarse granularity", cloudRun, Usage{MemoryMB: 128, VCPU: 1, Wall: time.Duration(math.MaxInt64 - 1)}},
		{"cpu", workers, Usage{CPU: time.Duration(math.MaxInt64)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.price.Invocation(tt.usage)
			d := tt.usage.Wall
			if tt.price.Meter == MeterCPUMs {
				d = tt.usage.CPU
			}
			assert.GreaterOrEqual(t, got.BilledMs, d.Milliseconds(), "billed time is rounded up, never wrapped")
			assert.Positive(t, got.ComputeUSD)
		})
	}
}

func TestCost_roundUpMs(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		g    int
		want int64
	}{
		{"zero", 0, 1, 0},
		{"negative", -5 * time.Millisecond, 100, 0},
		{"one ns, 1 ms", 1, 1, 1},
		{"exact 1 ms", time.Millisecond, 1, 1},
		{"1 ms + 1 ns", time.Millisecond + 1, 1, 2},
		{"260 ms at 100", 260 * time.Millisecond, 100, 300},
		{"300 ms at 100", 300 * time.Millisecond, 100, 300},
		{"301 ms at 100", 301 * time.Millisecond, 100, 400},
		{"granularity below 1 is 1", 1500 * time.Microsecond, 0, 2},
		{"negative granularity is 1", 1500 * time.Microsecond, -7, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, roundUpMs(tt.d, tt.g))
		})
	}
}

func TestPrice_Validate_Accepts(t *testing.T) {
	tests := []struct {
		name  string
		price Price
	}{
		{"lambda", lambdaARM},
		{"cloud run", cloudRun},
		{"azure", azure},
		{"workers", workers},
		{"free (all zero prices)", Price{Meter: MeterCPUMs, GranularityMs: 1}},
		{"upper bounds", Price{Meter: MeterGBSecond, PerRequestUSD: 1, PerGBSecondUSD: 1, PerVCPUSecondUSD: 1,
			PerCPUMsUSD: 1, GranularityMs: 60000, MinimumMs: 60000, MemoryStepMB: 10240, MemoryCapMB: 1 << 20,
			MonthlyMinimumUSD: 1e6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.NoError(t, tt.price.Validate())
		})
	}
}

func TestPrice_Validate_Errors(t *testing.T) {
	with := func(f func(*Price)) Price {
		p := lambdaARM
		f(&p)
		return p
	}
	tests := []struct {
		name  string
		price Price
		field string // named in the message
		count int    // problems reported
	}{
		{"unknown meter", with(func(p *Price) { p.Meter = "gb-hour" }), "meter", 1},
		{"empty meter", with(func(p *Price) { p.Meter = "" }), "meter", 1},
		{"negative request price", with(func(p *Price) { p.PerRequestUSD = -0.000001 }), "per_request_usd", 1},
		{"NaN request price", with(func(p *Price) { p.PerRequestUSD = math.NaN() }), "per_request_usd", 1},
		{"over-1 GB-second price", with(func(p *Price) { p.PerGBSecondUSD = 1.5 }), "per_gb_second_usd", 1},
		{"infinite vCPU price", with(func(p *Price) { p.PerVCPUSecondUSD = math.Inf(1) }), "per_vcpu_second_usd", 1},
		{"negative CPU-ms price", with(func(p *Price) { p.PerCPUMsUSD = -1 }), "per_cpu_ms_usd", 1},
		{"NaN monthly minimum", with(func(p *Price) { p.MonthlyMinimumUSD = math.NaN() }), "monthly_minimum_usd", 1},
		{"negative monthly minimum", with(func(p *Price) { p.MonthlyMinimumUSD = -5 }), "monthly_minimum_usd", 1},
		{"granularity 0", with(func(p *Price) { p.GranularityMs = 0 }), "granularity_ms", 1},
		{"granularity over a minute", with(func(p *Price) { p.GranularityMs = 60001 }), "granularity_ms", 1},
		{"negative minimum", with(func(p *Price) { p.MinimumMs = -1 }), "minimum_ms", 1},
		{"minimum over a minute", with(func(p *Price) { p.MinimumMs = 60001 }), "minimum_ms", 1},
		{"negative memory step", with(func(p *Price) { p.MemoryStepMB = -128 }), "memory_step_mb", 1},
		{"memory cap too large", with(func(p *Price) { p.MemoryCapMB = 1<<20 + 1 }), "memory_step_mb", 1},
		{"every problem is reported", Price{Meter: "x", PerRequestUSD: -1, GranularityMs: -1}, "granularity_ms", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.price.Validate()
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidPrice)
			assert.Contains(t, err.Error(), tt.field+":")
			var joined interface{ Unwrap() []error }
			require.True(t, errors.As(err, &joined), "Validate joins its errors")
			assert.Len(t, joined.Unwrap(), tt.count)
		})
	}
}

func TestVM_Invocation(t *testing.T) {
	tests := []struct {
		name   string
		vm     VM
		cpu    time.Duration
		want   float64
		billed int64
	}{
		{
			name: "t4g.nano half busy, 100 ms",
			vm:   VM{HourlyUSD: 0.0042, VCPUs: 2, Utilisation: 0.5},
			cpu:  100 * time.Millisecond,
			// 0.0042/3600 × 0.1 / (2 × 0.5)
			want: 0.0042 / 3600 * 0.1 / 1, billed: 100,
		},
		{
			name: "fully busy 4 vCPU, 1 s",
			vm:   VM{HourlyUSD: 0.36, VCPUs: 4, Utilisation: 1},
			cpu:  time.Second,
			want: 0.000025, billed: 1000,
		},
		{
			name: "lower utilisation makes work dearer",
			vm:   VM{HourlyUSD: 0.36, VCPUs: 4, Utilisation: 0.25},
			cpu:  time.Second,
			want: 0.0001, billed: 1000,
		},
		{
			name: "sub-millisecond CPU is not rounded",
			vm:   VM{HourlyUSD: 3.6, VCPUs: 1, Utilisation: 1},
			cpu:  500 * time.Microsecond,
			want: 0.0000005, billed: 0,
		},
		{name: "zero vCPUs costs nothing rather than dividing by zero", vm: VM{HourlyUSD: 1, Utilisation: 1}, cpu: time.Second},
		{name: "zero utilisation costs nothing rather than dividing by zero", vm: VM{HourlyUSD: 1, VCPUs: 2}, cpu: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.vm.Invocation(tt.cpu)
			near(t, tt.want, got.ComputeUSD, "compute")
			near(t, tt.want, got.TotalUSD, "total")
			assert.Zero(t, got.RequestUSD)
			assert.Equal(t, tt.billed, got.BilledMs)
			assert.False(t, math.IsInf(got.TotalUSD, 0) || math.IsNaN(got.TotalUSD))
		})
	}
}

func TestVM_Validate(t *testing.T) {
	tests := []struct {
		name  string
		vm    VM
		field string // "" : valid
	}{
		{"default t4g.nano", VM{Instance: "t4g.nano", HourlyUSD: 0.0042, VCPUs: 2, Utilisation: 0.5}, ""},
		{"free machine", VM{HourlyUSD: 0, VCPUs: 1, Utilisation: 1}, ""},
		{"upper bounds", VM{HourlyUSD: 1000, VCPUs: 1024, Utilisation: 1}, ""},
		{"negative price", VM{HourlyUSD: -0.01, VCPUs: 2, Utilisation: 0.5}, "hourly_usd"},
		{"NaN price", VM{HourlyUSD: math.NaN(), VCPUs: 2, Utilisation: 0.5}, "hourly_usd"},
		{"price over 1000", VM{HourlyUSD: 1000.01, VCPUs: 2, Utilisation: 0.5}, "hourly_usd"},
		{"zero vCPUs", VM{HourlyUSD: 1, VCPUs: 0, Utilisation: 0.5}, "vcpus"},
		{"too many vCPUs", VM{HourlyUSD: 1, VCPUs: 1025, Utilisation: 0.5}, "vcpus"},
		{"zero utilisation", VM{HourlyUSD: 1, VCPUs: 2, Utilisation: 0}, "utilisation"},
		{"utilisation over 1", VM{HourlyUSD: 1, VCPUs: 2, Utilisation: 1.01}, "utilisation"},
		{"NaN utilisation", VM{HourlyUSD: 1, VCPUs: 2, Utilisation: math.NaN()}, "utilisation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.vm.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidVM)
			assert.Contains(t, err.Error(), tt.field+":")
		})
	}
}

func TestVM_Validate_ReportsEveryProblem(t *testing.T) {
	err := VM{HourlyUSD: -1, VCPUs: 0, Utilisation: 2}.Validate()
	require.Error(t, err)
	for _, f := range []string{"hourly_usd:", "vcpus:", "utilisation:"} {
		assert.Contains(t, err.Error(), f)
	}
}

func TestCost_Monthly(t *testing.T) {
	tests := []struct {
		name string
		per  float64
		rate float64
		want float64
	}{
		{"one call a second at a micro-dollar", 0.000001, 1, 0.000001 * 730 * 3600},
		{"ten calls a second", 0.0000002266668, 10, 0.0000002266668 * 10 * 2628000},
		{"a call a minute", 0.01, 1.0 / 60, 0.01 * 43800},
		{"no calls", 1, 0, 0},
		{"free calls", 0, 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			near(t, tt.want, Monthly(tt.per, tt.rate), "monthly")
		})
	}
	assert.Equal(t, 730, HoursPerMonth)
	assert.Equal(t, 2628000, SecondsPerMonth)
}

func BenchmarkPrice_Invocation(b *testing.B) {
	prices := []Price{lambdaARM, cloudRun, azure, workers}
	u := Usage{MemoryMB: 1024, ObservedMemoryMB: 300, VCPU: 0.583, Wall: 260 * time.Millisecond, CPU: 7 * time.Millisecond}
	var sink float64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink += prices[i%len(prices)].Invocation(u).TotalUSD
	}
	if sink <= 0 {
		b.Fatal("no cost computed")
	}
}
