package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/orchestrator/cost"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const goldenPath = "/home/op/.config/tangle/deployment-policy.json"

func TestPolicy_Default(t *testing.T) {
	d := Default()
	assert.Equal(t, &Policy{Serverless: Serverless{
		Enable:             false,
		Provider:           TangleProvider{Type: AWSLambda, Region: "us-east-1"},
		DefaultMemoryMB:    512,
		DefaultTimeoutSecs: 300,
		FallbackToVM:       true,
	}}, d)
	d.Serverless.Enable = true
	assert.False(t, Default().Serverless.Enable, "every call is a fresh policy")
	assert.Equal(t, DefaultVM(), d.VM())
	assert.Nil(t, d.CostThreshold())
	assert.Nil(t, d.LatencyThreshold())
	assert.Nil(t, d.State())
}

func TestKind_Methods(t *testing.T) {
	tests := []struct {
		kind          Kind
		known, tangle bool
		blueprint     string
	}{
		{AWSLambda, true, true, "aws_lambda"},
		{GCPFunctions, true, true, "gcp_functions"},
		{AzureFunctions, true, true, "azure_functions"},
		{Custom, true, true, "custom"},
		{CloudflareWorkers, true, false, "cloudflare_workers"},
		{"aws_lambda", false, false, "aws_lambda"},
		{"", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			assert.Equal(t, tt.known, tt.kind.Known())
			assert.Equal(t, tt.tangle, tt.kind.Tangle())
			assert.Equal(t, tt.blueprint, tt.kind.BlueprintName())
		})
	}
}

func TestProvider_ID(t *testing.T) {
	tests := []struct {
		name string
		p    Provider
		want string
	}{
		{"lambda", Provider{Type: AWSLambda, Region: "eu-west-1"}, "aws-lambda/eu-west-1"},
		{"named lambda", Provider{Type: AWSLambda, Region: "eu-west-1", Name: "eu"}, "eu"},
		{"gcp", Provider{Type: GCPFunctions, ProjectID: "ferry-test-1"}, "gcp-functions/ferry-test-1"},
		{"azure", Provider{Type: AzureFunctions, SubscriptionID: azureSub}, "azure-functions"},
		{"custom with port", Provider{Type: Custom, Endpoint: "http://10.0.0.7:8080/fn"}, "custom/10.0.0.7:8080"},
		{"custom without host", Provider{Type: Custom, Endpoint: "not a url"}, "custom"},
		{"workers", Provider{Type: CloudflareWorkers, AccountID: cfAccount}, "cloudflare-workers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.p.ID())
		})
	}
}

func TestProvider_String(t *testing.T) {
	tests := []struct {
		name string
		p    Provider
		want string
	}{
		{"lambda default arch", Provider{Type: AWSLambda, Region: "us-east-1"}, "aws-lambda/us-east-1 (arm64)"},
		{"named lambda", Provider{Type: AWSLambda, Region: "eu-west-1", Arch: ArchX86, Name: "eu"}, "eu (aws-lambda, eu-west-1, x86_64)"},
		{"lambda with role", Provider{Type: AWSLambda, Region: "us-east-1", Role: "arn:aws:iam::123456789012:role/team/ferry-jobs"}, "aws-lambda/us-east-1 (arm64, role ferry-jobs)"},
		{"gcp", Provider{Type: GCPFunctions, ProjectID: "ferry-test-1"}, "gcp-functions/ferry-test-1"},
		{"named gcp", Provider{Type: GCPFunctions, ProjectID: "ferry-test-1", Name: "g"}, "g (gcp-functions, project ferry-test-1)"},
		{"azure", Provider{Type: AzureFunctions, SubscriptionID: azureSub}, "azure-functions (subscription " + azureSub + ")"},
		{"workers", Provider{Type: CloudflareWorkers, AccountID: cfAccount}, "cloudflare-workers (account " + cfAccount + ", paid plan)"},
		{"named custom", Provider{Type: Custom, Name: "edge", Endpoint: "https://faas.example.com"}, "edge (custom, https://faas.example.com)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.p.String())
		})
	}
}

var (
	lambdaUS   = Provider{Type: AWSLambda, Region: "us-east-1"}
	lambdaEU   = Provider{Type: AWSLambda, Region: "eu-west-1"}
	lambdaEUx  = Provider{Type: AWSLambda, Region: "eu-west-1", Arch: ArchX86}
	gcp        = Provider{Type: GCPFunctions, ProjectID: "ferry-test-1"}
	workersP   = Provider{Type: CloudflareWorkers, AccountID: cfAccount}
	workersF   = Provider{Type: CloudflareWorkers, Name: "cf-free", AccountID: cfAccount2, Plan: PlanFree}
	customEdge = Provider{Type: Custom, Name: "edge", Endpoint: "https://faas.example.com"}
)

func TestPolicy_SetProviders(t *testing.T) {
	tests := []struct {
		name        string
		start       string // the file before
		list        []Provider
		wantTangle  TangleProvider
		wantFerry   []Provider // nil: no ferry.providers
		wantSection bool       // a "ferry" section is written
	}{
		{
			name:       "one plain Tangle provider leaves no ferry section",
			start:      `{}`,
			list:       []Provider{gcp},
			wantTangle: TangleProvider{Type: GCPFunctions, ProjectID: "ferry-test-1"},
		},
		{
			name:       "one plain provider replaces an earlier list",
			start:      string(readTestdata(t, "ferry-multi.json")),
			list:       []Provider{lambdaEU},
			wantTangle: TangleProvider{Type: AWSLambda, Region: "eu-west-1"},
			// the rest of the ferry section stays
			wantSection: true,
		},
		{
			name:        "one provider with settings Tangle cannot hold goes to ferry.providers",
			start:       `{}`,
			list:        []Provider{lambdaEUx},
			wantTangle:  TangleProvider{Type: AWSLambda, Region: "eu-west-1"},
			wantFerry:   []Provider{lambdaEUx},
			wantSection: true,
		},
		{
			name:        "a named provider goes to ferry.providers",
			start:       `{}`,
			list:        []Provider{customEdge},
			wantTangle:  TangleProvider{Type: Custom, Endpoint: "https://faas.example.com"},
			wantFerry:   []Provider{customEdge},
			wantSection: true,
		},
		{
			name:        "several providers mirror the first Tangle one",
			start:       `{}`,
			list:        []Provider{workersP, gcp, lambdaUS},
			wantTangle:  TangleProvider{Type: GCPFunctions, ProjectID: "ferry-test-1"},
			wantFerry:   []Provider{workersP, gcp, lambdaUS},
			wantSection: true,
		},
		{
			name:        "Workers only leaves serverless.provider as it was",
			start:       `{"serverless": {"provider": {"type": "gcp-functions", "project_id": "tangle-prod-42"}}}`,
			list:        []Provider{workersP, workersF},
			wantTangle:  TangleProvider{Type: GCPFunctions, ProjectID: "tangle-prod-42"},
			wantFerry:   []Provider{workersP, workersF},
			wantSection: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.start)
			p.SetProviders(tt.list)
			assert.Equal(t, tt.wantTangle, p.Serverless.Provider)
			if tt.wantFerry == nil {
				if p.Ferry != nil {
					assert.Empty(t, p.Ferry.Providers)
				}
			} else {
				require.NotNil(t, p.Ferry)
				assert.Equal(t, tt.wantFerry, p.Ferry.Providers)
			}
			assert.Equal(t, tt.list, p.Providers(), "Providers gives back the list")
			assert.False(t, p.TangleChanged())
			require.NoError(t, p.Validate())

			b, err := p.Encode()
			require.NoError(t, err)
			got := asJSON(t, b)
			_, hasFerry := got["ferry"]
			assert.Equal(t, tt.wantSection, hasFerry, "%s", b)

			// The list survives a round trip through the file.
			q := mustParse(t, string(b))
			assert.Equal(t, tt.list, q.Providers())
		})
	}
}

func TestPolicy_SetProviders_CopiesTheList(t *testing.T) {
	p := Default()
	list := []Provider{lambdaUS, workersP}
	p.SetProviders(list)
	list[0].Region = "eu-central-1"
	assert.Equal(t, "us-east-1", p.Ferry.Providers[0].Region)
	got := p.Providers()
	got[1].AccountID = "x"
	assert.Equal(t, cfAccount, p.Ferry.Providers[1].AccountID, "Providers returns a copy")
}

// The Tangle CLI edits serverless.provider and leaves "ferry" alone (or
// drops it, which is the plain case). Ferry then puts the Tangle choice in
// the mirrored entry's place.
func TestPolicy_Providers_TangleChangedBehindFerrysBack(t *testing.T) {
	p := Default()
	p.SetProviders([]Provider{workersP, lambdaEUx, gcp})
	require.False(t, p.TangleChanged())
	b, err := p.Encode()
	require.NoError(t, err)

	tests := []struct {
		name    string
		tangle  map[string]any
		want    []Provider
		changed bool
	}{
		{
			name:    "unchanged",
			tangle:  map[string]any{"type": "aws-lambda", "region": "eu-west-1"},
			want:    []Provider{workersP, lambdaEUx, gcp},
			changed: false,
		},
		{
			name:    "region changed",
			tangle:  map[string]any{"type": "aws-lambda", "region": "ap-south-1"},
			want:    []Provider{workersP, {Type: AWSLambda, Region: "ap-south-1"}, gcp},
			changed: true,
		},
		{
			name:    "provider type changed",
			tangle:  map[string]any{"type": "custom", "endpoint": "https://fn.example.org"},
			want:    []Provider{workersP, {Type: Custom, Endpoint: "https://fn.example.org"}, gcp},
			changed: true,
		},
		{
			name:    "region removed (the Tangle default)",
			tangle:  map[string]any{"type": "aws-lambda"},
			want:    []Provider{workersP, lambdaUS, gcp},
			changed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Simulate the Tangle CLI: rewrite serverless.provider in the
			// file, keep everything else.
			doc := asJSON(t, b)
			doc["serverless"].(map[string]any)["provider"] = tt.tangle
			edited, err := json.MarshalIndent(doc, "", "  ")
			require.NoError(t, err)

			q := mustParse(t, string(edited))
			assert.Equal(t, tt.want, q.Providers())
			assert.Equal(t, tt.changed, q.TangleChanged())
			assert.Equal(t, tt.changed, q.View("p.json", true).TangleChanged)
			// The file itself is not rewritten by reading it.
			assert.Equal(t, []Provider{workersP, lambdaEUx, gcp}, q.Ferry.Providers)

			// Saving the effective list makes the Tangle choice stick.
			q.SetProviders(q.Providers())
			assert.False(t, q.TangleChanged())
			assert.Equal(t, tt.want, q.Providers())
		})
	}
}

func TestPolicy_TangleChanged_WithoutFerryProviders(t *testing.T) {
	p := mustParse(t, `{"serverless": {"provider": {"type": "gcp-functions", "project_id": "tangle-prod-42"}}}`)
	assert.False(t, p.TangleChanged())
	assert.Equal(t, []Provider{{Type: GCPFunctions, ProjectID: "tangle-prod-42"}}, p.Providers())

	// Workers only: nothing mirrors serverless.provider, so nothing changed.
	p.SetProviders([]Provider{workersP})
	p.Serverless.Provider = TangleProvider{Type: AWSLambda, Region: "eu-north-1"}
	assert.False(t, p.TangleChanged())
	assert.Equal(t, []Provider{workersP}, p.Providers())
}

func TestPolicy_Accessors(t *testing.T) {
	p := mustParse(t, string(readTestdata(t, "ferry-multi.json")))
	assert.Equal(t, cost.VM{Instance: "t4g.small", HourlyUSD: 0.0168, VCPUs: 2, Utilisation: 0.25}, p.VM())
	require.NotNil(t, p.CostThreshold())
	assert.Equal(t, 0.0001, *p.CostThreshold())
	require.NotNil(t, p.LatencyThreshold())
	assert.Equal(t, 250.0, *p.LatencyThreshold())
	assert.Equal(t, &StateStore{URL: "redis://127.0.0.1:6379/0"}, p.State())
	assert.Len(t, p.Providers(), 8)
}

func TestProvider_EffectiveLimits(t *testing.T) {
	tests := []struct {
		name          string
		p             Provider
		memoryMB      int
		timeoutMs     int
		cpuTime       bool
		fixedMemory   bool
		payloadBytes  int
		overheadMB    int
		expansion     float64
		minMemoryMB   int
		timeoutSecs   int
		timeoutMsOnly int
	}{
		{name: "lambda", p: lambdaUS, memoryMB: 10240, minMemoryMB: 128, timeoutMs: 900_000, timeoutSecs: 900,
			payloadBytes: 6 << 20, expansion: 4.0 / 3, overheadMB: 128},
		{name: "gcp", p: gcp, memoryMB: 32768, minMemoryMB: 128, timeoutMs: 3_600_000, timeoutSecs: 3600,
			payloadBytes: 10 << 20, expansion: 1, overheadMB: 64},
		{name: "azure", p: Provider{Type: AzureFunctions, SubscriptionID: azureSub}, memoryMB: 14336, minMemoryMB: 128,
			timeoutMs: 600_000, timeoutSecs: 600, payloadBytes: 100 << 20, expansion: 1, overheadMB: 64},
		{name: "custom", p: customEdge, memoryMB: 2048, minMemoryMB: 128, timeoutMs: 300_000, timeoutSecs: 300,
			payloadBytes: 5 << 20, expansion: 4, overheadMB: 0},
		{name: "workers paid default", p: workersP, memoryMB: 128, minMemoryMB: 128, fixedMemory: true, cpuTime: true,
			timeoutMs: 30_000, timeoutSecs: 30, payloadBytes: 100 << 20, expansion: 4, overheadMB: 16},
		{name: "workers free plan is 10 ms of CPU", p: workersF, memoryMB: 128, minMemoryMB: 128, fixedMemory: true,
			cpuTime: true, timeoutMs: 10, timeoutSecs: 0, timeoutMsOnly: 10, payloadBytes: 100 << 20, expansion: 4, overheadMB: 16},
		{name: "workers cpu_ms override", p: Provider{Type: CloudflareWorkers, AccountID: cfAccount, CPUMs: 1500},
			memoryMB: 128, minMemoryMB: 128, fixedMemory: true, cpuTime: true, timeoutMs: 1500, timeoutSecs: 2,
			timeoutMsOnly: 1500, payloadBytes: 100 << 20, expansion: 4, overheadMB: 16},
		{name: "workers paid cpu_ms five minutes", p: Provider{Type: CloudflareWorkers, AccountID: cfAccount, Plan: PlanPaid, CPUMs: 300_000},
			memoryMB: 128, minMemoryMB: 128, fixedMemory: true, cpuTime: true, timeoutMs: 300_000, timeoutSecs: 300,
			timeoutMsOnly: 300_000, payloadBytes: 100 << 20, expansion: 4, overheadMB: 16},
		{name: "limits override field by field", p: Provider{Type: AWSLambda, Region: "us-east-1", Limits: &Limits{
			MemoryMB: 3008, TimeoutSecs: 60, PayloadBytes: 256 << 10, PayloadExpansion: 2, FixedMemory: true,
		}}, memoryMB: 3008, minMemoryMB: 128, fixedMemory: true, timeoutMs: 60_000, timeoutSecs: 60,
			payloadBytes: 256 << 10, expansion: 2, overheadMB: 128},
		{name: "limits timeout_ms replaces the timeout", p: Provider{Type: Custom, Endpoint: "https://x.example.com", Limits: &Limits{
			TimeoutMs: 250, MinMemoryMB: 256, RuntimeOverheadMB: 8, CPUTime: true,
		}}, memoryMB: 2048, minMemoryMB: 256, cpuTime: true, timeoutMs: 250, timeoutSecs: 0, timeoutMsOnly: 250,
			payloadBytes: 5 << 20, expansion: 4, overheadMB: 8},
		{name: "limits override the free plan", p: Provider{Type: CloudflareWorkers, AccountID: cfAccount, Plan: PlanFree,
			Limits: &Limits{TimeoutMs: 50}}, memoryMB: 128, minMemoryMB: 128, fixedMemory: true, cpuTime: true,
			timeoutMs: 50, timeoutMsOnly: 50, payloadBytes: 100 << 20, expansion: 4, overheadMB: 16},
		{name: "empty limits change nothing", p: Provider{Type: AWSLambda, Region: "us-east-1", Limits: &Limits{}},
			memoryMB: 10240, minMemoryMB: 128, timeoutMs: 900_000, timeoutSecs: 900, payloadBytes: 6 << 20,
			expansion: 4.0 / 3, overheadMB: 128},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.p.EffectiveLimits()
			assert.Equal(t, tt.memoryMB, l.MemoryMB, "memory")
			assert.Equal(t, tt.minMemoryMB, l.MinMemoryMB, "min memory")
			assert.Equal(t, tt.fixedMemory, l.FixedMemory, "fixed memory")
			assert.Equal(t, tt.timeoutMs, l.Timeout(), "timeout in ms")
			assert.Equal(t, tt.timeoutSecs, l.TimeoutSecs, "timeout secs")
			assert.Equal(t, tt.timeoutMsOnly, l.TimeoutMs, "timeout ms field")
			assert.Equal(t, tt.cpuTime, l.CPUTime, "CPU time")
			assert.Equal(t, tt.payloadBytes, l.PayloadBytes, "payload")
			assert.InDelta(t, tt.expansion, l.PayloadExpansion, 1e-12, "expansion")
			assert.Equal(t, tt.overheadMB, l.RuntimeOverheadMB, "overhead")
		})
	}
}

func TestProvider_EffectiveLimits_DoesNotChangeTheDefaults(t *testing.T) {
	p := Provider{Type: AWSLambda, Region: "us-east-1", Limits: &Limits{MemoryMB: 1}}
	_ = p.EffectiveLimits()
	assert.Equal(t, 10240, lambdaUS.EffectiveLimits().MemoryMB)
}

func TestLimits_Payload(t *testing.T) {
	lambda := lambdaUS.EffectiveLimits()
	// 6 MiB on the wire, 1 KiB of envelope, base64: (6291456 − 1024) × 3/4.
	const lambdaMax = (6<<20 - 1024) * 3 / 4
	require.Equal(t, 4717824, lambdaMax)

	tests := []struct {
		name string
		l    Limits
		n    int
		fits bool
	}{
		{"lambda: the largest payload fits", lambda, lambdaMax, true},
		{"lambda: one more byte does not", lambda, lambdaMax + 1, false},
		{"lambda: 6 MiB raw does not fit once encoded", lambda, 6 << 20, false},
		{"lambda: 4500 KiB fits", lambda, 4500 << 10, true},
		{"lambda: 4.5 MiB does not", lambda, 4608 << 10, false},
		{"lambda: nothing fits", lambda, 0, true},
		{"custom: ×4 expansion", customEdge.EffectiveLimits(), (5<<20 - 1024) / 4, true},
		{"custom: ×4 expansion, one more", customEdge.EffectiveLimits(), (5<<20-1024)/4 + 1, false},
		{"gcp: no expansion", gcp.EffectiveLimits(), 10<<20 - 1024, true},
		{"gcp: no expansion, one more", gcp.EffectiveLimits(), 10<<20 - 1023, false},
		{"zero expansion counts as 1", Limits{PayloadBytes: 2048}, 1024, true},
		{"zero expansion counts as 1, one more", Limits{PayloadBytes: 2048}, 1025, false},
		{"limit smaller than the envelope", Limits{PayloadBytes: 100, PayloadExpansion: 1}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.fits, tt.l.FitsPayload(tt.n))
		})
	}
	assert.Equal(t, lambdaMax, lambda.MaxPayload())
	assert.Equal(t, 0, Limits{PayloadBytes: 100, PayloadExpansion: 1}.MaxPayload(), "never negative")
	assert.Equal(t, 1024, Limits{PayloadBytes: 2048}.MaxPayload())
}

// MaxPayload is the boundary of FitsPayload, for every provider and for
// awkward expansions and sizes.
func TestLimits_MaxPayloadIsFitsPayloadBoundary(t *testing.T) {
	var all []Limits
	for _, k := range Kinds {
		all = append(all, Provider{Type: k}.EffectiveLimits())
	}
	for _, exp := range []float64{0, 1, 1.1, 4.0 / 3, 1.5, 2.7, 3, 4, 7, 16} {
		for _, size := range []int{1025, 1030, 4096, 100_003, 6 << 20, 10<<20 + 7} {
			all = append(all, Limits{PayloadBytes: size, PayloadExpansion: exp})
		}
	}
	for _, l := range all {
		m := l.MaxPayload()
		assert.True(t, l.FitsPayload(m), "%+v: MaxPayload %d does not fit", l, m)
		assert.False(t, l.FitsPayload(m+1), "%+v: MaxPayload+1 %d fits", l, m+1)
	}
}

func TestProvider_EffectivePrice(t *testing.T) {
	own := &cost.Price{Meter: cost.MeterGBSecond, PerGBSecondUSD: 0.000005, GranularityMs: 1}
	tests := []struct {
		name       string
		p          Provider
		ok         bool
		meter      cost.Meter
		perGBs     float64
		perVCPUs   float64
		perCPUMs   float64
		perRequest float64
		granMs     int
		minMs      int
	}{
		{name: "lambda arm64 (default)", p: lambdaUS, ok: true, meter: cost.MeterGBSecond, perGBs: 0.0000133334, perRequest: 0.0000002, granMs: 1},
		{name: "lambda arm64 explicit", p: Provider{Type: AWSLambda, Region: "eu-west-1", Arch: ArchARM64}, ok: true, meter: cost.MeterGBSecond, perGBs: 0.0000133334, perRequest: 0.0000002, granMs: 1},
		{name: "lambda x86_64", p: lambdaEUx, ok: true, meter: cost.MeterGBSecond, perGBs: 0.0000166667, perRequest: 0.0000002, granMs: 1},
		{name: "lambda af-south-1 arm64", p: Provider{Type: AWSLambda, Region: "af-south-1"}, ok: true, meter: cost.MeterGBSecond, perGBs: 0.00001768, perRequest: 0.0000002, granMs: 1},
		{name: "lambda af-south-1 x86_64", p: Provider{Type: AWSLambda, Region: "af-south-1", Arch: ArchX86}, ok: true, meter: cost.MeterGBSecond, perGBs: 0.0000221, perRequest: 0.0000002, granMs: 1},
		{name: "lambda me-central-1 x86_64", p: Provider{Type: AWSLambda, Region: "me-central-1", Arch: ArchX86}, ok: true, meter: cost.MeterGBSecond, perGBs: 0.0000206667, perRequest: 0.0000002, granMs: 1},
		{name: "gcp", p: gcp, ok: true, meter: cost.MeterVCPUGiBSecond, perGBs: 0.0000025, perVCPUs: 0.000024, perRequest: 0.0000004, granMs: 100},
		{name: "azure", p: Provider{Type: AzureFunctions, SubscriptionID: azureSub}, ok: true, meter: cost.MeterObservedGBSecond, perGBs: 0.000016, perRequest: 0.0000002, granMs: 1, minMs: 100},
		{name: "workers paid", p: workersP, ok: true, meter: cost.MeterCPUMs, perCPUMs: 0.00000002, perRequest: 0.0000003, granMs: 1},
		{name: "workers free is not billed", p: workersF, ok: true, meter: cost.MeterCPUMs, granMs: 1},
		{name: "custom has no price", p: customEdge, ok: false},
		{name: "custom with its own price", p: Provider{Type: Custom, Endpoint: "https://x.example.com", Price: own}, ok: true, meter: cost.MeterGBSecond, perGBs: 0.000005, granMs: 1},
		{name: "own price replaces the published one", p: Provider{Type: AWSLambda, Region: "af-south-1", Price: own}, ok: true, meter: cost.MeterGBSecond, perGBs: 0.000005, granMs: 1},
		{name: "unknown kind has none", p: Provider{Type: "aws-fargate"}, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			price, ok := tt.p.EffectivePrice()
			require.Equal(t, tt.ok, ok)
			if !ok {
				assert.Equal(t, cost.Price{}, price)
				return
			}
			assert.Equal(t, tt.meter, price.Meter)
			assert.InDelta(t, tt.perGBs, price.PerGBSecondUSD, 1e-15, "per GB-second")
			assert.InDelta(t, tt.perVCPUs, price.PerVCPUSecondUSD, 1e-15, "per vCPU-second")
			assert.InDelta(t, tt.perCPUMs, price.PerCPUMsUSD, 1e-18, "per CPU-ms")
			assert.InDelta(t, tt.perRequest, price.PerRequestUSD, 1e-15, "per request")
			assert.Equal(t, tt.granMs, price.GranularityMs)
			assert.Equal(t, tt.minMs, price.MinimumMs)
			assert.NoError(t, price.Validate(), "every published price is valid")
		})
	}
}

func TestProvider_EffectivePrice_Azure(t *testing.T) {
	price, ok := Provider{Type: AzureFunctions, SubscriptionID: azureSub}.EffectivePrice()
	require.True(t, ok)
	assert.Equal(t, 128, price.MemoryStepMB)
	assert.Equal(t, 1536, price.MemoryCapMB)
	paid, _ := workersP.EffectivePrice()
	assert.Equal(t, 5.0, paid.MonthlyMinimumUSD)
	free, _ := workersF.EffectivePrice()
	assert.Zero(t, free.MonthlyMinimumUSD)
	assert.Contains(t, free.Source, "Free plan")
}

func TestProvider_CPUShare(t *testing.T) {
	tests := []struct {
		name  string
		p     Provider
		memMB int
		share float64
		vcpu  float64
	}{
		{"lambda 1769 MB is one vCPU", lambdaUS, 1769, 1, 1},
		{"lambda 512 MB", lambdaUS, 512, 512.0 / 1769, 512.0 / 1769},
		{"lambda 128 MB", lambdaUS, 128, 128.0 / 1769, 128.0 / 1769},
		{"lambda 10240 MB is capped at one", lambdaUS, 10240, 1, 1},
		{"gcp 128 MB", gcp, 128, 0.083, 0.083},
		{"gcp 256 MB", gcp, 256, 0.167, 0.167},
		{"gcp 512 MB", gcp, 512, 0.333, 0.333},
		{"gcp 1024 MB", gcp, 1024, 0.583, 0.583},
		{"gcp 1536 MB is the 1024 MB size", gcp, 1536, 0.583, 0.583},
		{"gcp 2048 MB", gcp, 2048, 1, 1},
		{"gcp 4096 MB: two vCPUs billed, one used", gcp, 4096, 1, 2},
		{"gcp 8192 MB", gcp, 8192, 1, 2},
		{"gcp below the table", gcp, 64, 0.083, 0.083},
		{"azure is a whole vCPU", Provider{Type: AzureFunctions}, 128, 1, 1},
		{"workers is a whole vCPU", workersP, 128, 1, 1},
		{"custom is a whole vCPU", customEdge, 512, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.share, tt.p.CPUShare(tt.memMB), 1e-12, "share")
			assert.InDelta(t, tt.vcpu, tt.p.VCPU(tt.memMB), 1e-12, "vCPU")
		})
	}
	assert.InDelta(t, 0.289, lambdaUS.CPUShare(512), 0.0005)
}

func TestProvider_EffectiveLatency(t *testing.T) {
	tests := []struct {
		name     string
		p        Provider
		overhead float64
		cold     float64
		bw       float64
		source   string
	}{
		{"lambda default", lambdaUS, 20, 450, 100, lambdaLatencySource},
		{"workers default", workersP, 15, 35, 100, workersLatencySource},
		{"override one field", Provider{Type: AWSLambda, Region: "us-east-1", Latency: &Latency{ColdStartMs: 300}}, 20, 300, 100, "policy"},
		{"override with a source", Provider{Type: Custom, Latency: &Latency{OverheadMs: 1, BandwidthMBps: 1000, Source: "measured 2026-11"}}, 1, 2, 1000, "measured 2026-11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.p.EffectiveLatency()
			assert.Equal(t, tt.overhead, l.OverheadMs)
			assert.Equal(t, tt.cold, l.ColdStartMs)
			assert.Equal(t, tt.bw, l.BandwidthMBps)
			assert.Equal(t, tt.source, l.Source)
		})
	}
}

func TestProvider_NetworkAllowed(t *testing.T) {
	assert.True(t, lambdaUS.NetworkAllowed())
	assert.True(t, Provider{AllowNetwork: new(true)}.NetworkAllowed())
	assert.False(t, Provider{AllowNetwork: new(false)}.NetworkAllowed())
}

func TestPolicy_View(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		v := Default().View(goldenPath, false)
		assert.Equal(t, goldenPath, v.Path)
		assert.False(t, v.Exists)
		assert.False(t, v.Enable)
		assert.Equal(t, 512, v.DefaultMemoryMB)
		assert.Equal(t, 300, v.DefaultTimeoutSecs)
		assert.True(t, v.FallbackToVM)
		assert.Equal(t, DefaultVM(), v.VM)
		assert.Nil(t, v.CostThresholdUSD)
		assert.Nil(t, v.LatencyThresholdMs)
		assert.Nil(t, v.State)
		require.Len(t, v.Providers, 1)
		pv := v.Providers[0]
		assert.Equal(t, "aws-lambda/us-east-1", pv.ID)
		assert.Equal(t, lambdaUS.EffectiveLimits(), pv.Limits)
		require.NotNil(t, pv.Price)
		assert.Equal(t, 0.0000133334, pv.Price.PerGBSecondUSD)
		assert.Equal(t, 20.0, pv.Latency.OverheadMs)
		assert.True(t, pv.AllowNetwork)
	})
	t.Run("multi", func(t *testing.T) {
		p := mustParse(t, string(readTestdata(t, "ferry-multi.json")))
		v := p.View(goldenPath, true)
		assert.True(t, v.Enable)
		require.Len(t, v.Providers, 8)
		var ids []string
		for _, pv := range v.Providers {
			ids = append(ids, pv.ID)
			// The embedded entry holds the settings; the effective values
			// are beside it, not duplicated in it.
			assert.Nil(t, pv.Provider.Limits)
			assert.Nil(t, pv.Provider.Price)
			assert.Nil(t, pv.Provider.Latency)
			assert.Nil(t, pv.Provider.AllowNetwork)
		}
		assert.Equal(t, []string{"aws-lambda/us-east-1", "aws-lambda/eu-west-1", "cloudflare-workers", "cf-free",
			"gcp-functions/ferry-test-1", "azure-functions", "edge", "custom/10.0.0.7:8080"}, ids)
		assert.False(t, v.Providers[3].AllowNetwork)
		assert.Equal(t, 10, v.Providers[3].Limits.Timeout())
		require.NotNil(t, v.Providers[6].Price, "the custom host's own price")
		assert.Equal(t, 0.000005, v.Providers[6].Price.PerGBSecondUSD)
		assert.Nil(t, v.Providers[7].Price, "a custom host without a price is unpriced")
		assert.Equal(t, 0.25, v.VM.Utilisation)
		require.NotNil(t, v.State)
		assert.Equal(t, "redis://127.0.0.1:6379/0", v.State.URL)

		// The JSON form (ferry cloud show --json) has one "limits" per
		// provider: the effective one.
		b, err := json.Marshal(v)
		require.NoError(t, err)
		var back struct {
			Providers []map[string]any `json:"providers"`
		}
		require.NoError(t, json.Unmarshal(b, &back))
		require.Len(t, back.Providers, 8)
		assert.Equal(t, 10240.0, back.Providers[0]["limits"].(map[string]any)["memory_mb"])
		assert.Nil(t, back.Providers[7]["price"])
		assert.Equal(t, "edge", back.Providers[6]["name"])
	})
}

func TestView_WriteText_Golden(t *testing.T) {
	changed := Default()
	changed.SetProviders([]Provider{workersP, lambdaEUx, gcp})
	changed.Serverless.Enable = true
	changed.Serverless.Provider = TangleProvider{Type: AWSLambda, Region: "ap-south-1"}
	require.True(t, changed.TangleChanged())

	tests := []struct {
		name   string
		p      *Policy
		exists bool
		golden string
	}{
		{"multi", mustParse(t, string(readTestdata(t, "ferry-multi.json"))), true, "show.golden"},
		{"default", Default(), false, "show-default.golden"},
		{"tangle changed", changed, true, "show-tangle-changed.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, tt.p.View(goldenPath, tt.exists).WriteText(&buf))
			path := filepath.Join("testdata", tt.golden)
			if *update {
				require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to create it")
			assert.Equal(t, string(want), buf.String())
		})
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestView_WriteText_WriteError(t *testing.T) {
	err := Default().View(goldenPath, false).WriteText(failWriter{os.ErrClosed})
	assert.ErrorIs(t, err, os.ErrClosed)
}

func TestShow_plain(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0.0000133334, "0.0000133334"},
		{0.0000166667, "0.0000166667"},
		{0.2, "0.2"},
		{0.02, "0.02"},
		{0.30000000000000004, "0.3"},
		{1234567.89, "1234570"},
		{0, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, plain(tt.in))
		})
	}
}

func TestShow_humanBytes(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{4717824, "4.5 MiB"},
		{1 << 30, "1.0 GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, humanBytes(tt.n))
		})
	}
}
