package policy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/orchestrator/cost"
)

func TestPolicy_Apply(t *testing.T) {
	multi := func(t *testing.T) *Policy { return mustParse(t, string(readTestdata(t, "ferry-multi.json"))) }
	def := func(*testing.T) *Policy { return Default() }
	tangleFull := func(t *testing.T) *Policy { return mustParse(t, string(readTestdata(t, "tangle-full.json"))) }

	tests := []struct {
		name    string
		base    func(t *testing.T) *Policy
		u       Update
		check   func(t *testing.T, q *Policy)
		changes []string // each is in some change line, in this order
	}{
		{
			name: "serverless on",
			base: def,
			u:    Update{Serverless: new(true)},
			check: func(t *testing.T, q *Policy) {
				assert.True(t, q.Serverless.Enable)
				assert.Nil(t, q.Ferry)
			},
			changes: []string{"serverless: on"},
		},
		{
			name:    "serverless off",
			base:    multi,
			u:       Update{Serverless: new(false)},
			check:   func(t *testing.T, q *Policy) { assert.False(t, q.Serverless.Enable) },
			changes: []string{"serverless: off"},
		},
		{
			name: "aws-lambda in a region",
			base: def,
			u:    Update{Provider: new(AWSLambda), AWSRegion: new("eu-west-1")},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, TangleProvider{Type: AWSLambda, Region: "eu-west-1"}, q.Serverless.Provider)
				assert.Nil(t, q.Ferry, "one plain provider is the Tangle CLI's file")
				assert.Equal(t, []Provider{lambdaEU}, q.Providers())
			},
			changes: []string{"provider: aws-lambda/eu-west-1 (arm64)"},
		},
		{
			name: "aws-lambda without a region is us-east-1, as in the Tangle CLI",
			base: tangleFull,
			u:    Update{Provider: new(AWSLambda)},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, TangleProvider{Type: AWSLambda, Region: "us-east-1"}, q.Serverless.Provider)
				assert.Nil(t, q.Ferry)
			},
			changes: []string{"provider: aws-lambda/us-east-1"},
		},
		{
			name: "aws-lambda replaces a whole list",
			base: multi,
			u:    Update{Provider: new(AWSLambda), AWSRegion: new("eu-north-1")},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, []Provider{{Type: AWSLambda, Region: "eu-north-1"}}, q.Providers())
				require.NotNil(t, q.Ferry, "the rest of the ferry section stays")
				assert.Empty(t, q.Ferry.Providers)
				assert.NotNil(t, q.Ferry.VM)
			},
			changes: []string{"provider: aws-lambda/eu-north-1"},
		},
		{
			name: "aws-lambda x86_64",
			base: def,
			u:    Update{Provider: new(AWSLambda), AWSRegion: new("eu-west-1"), Arch: new(ArchX86)},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, TangleProvider{Type: AWSLambda, Region: "eu-west-1"}, q.Serverless.Provider)
				require.NotNil(t, q.Ferry)
				assert.Equal(t, []Provider{lambdaEUx}, q.Ferry.Providers)
			},
			changes: []string{"provider: aws-lambda/eu-west-1 (x86_64)"},
		},
		{
			name: "aws-lambda in several regions",
			base: def,
			u:    Update{Provider: new(AWSLambda), Regions: []string{"eu-west-1", " us-east-1 ", "ap-south-1"}},
			check: func(t *testing.T, q *Policy) {
				want := []Provider{lambdaEU, lambdaUS, {Type: AWSLambda, Region: "ap-south-1"}}
				assert.Equal(t, want, q.Providers())
				require.NotNil(t, q.Ferry)
				assert.Equal(t, want, q.Ferry.Providers)
				assert.Equal(t, TangleProvider{Type: AWSLambda, Region: "eu-west-1"}, q.Serverless.Provider, "mirrors the first")
			},
			changes: []string{"provider: aws-lambda/eu-west-1", "provider: aws-lambda/us-east-1", "provider: aws-lambda/ap-south-1"},
		},
		{
			name: "gcp-functions",
			base: def,
			u:    Update{Provider: new(GCPFunctions), GCPProject: new("ferry-test-1")},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, TangleProvider{Type: GCPFunctions, ProjectID: "ferry-test-1"}, q.Serverless.Provider)
				assert.Nil(t, q.Ferry)
			},
			changes: []string{"provider: gcp-functions/ferry-test-1"},
		},
		{
			name: "azure-functions",
			base: def,
			u:    Update{Provider: new(AzureFunctions), AzureSubscription: new(azureSub)},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, TangleProvider{Type: AzureFunctions, SubscriptionID: azureSub}, q.Serverless.Provider)
				assert.Nil(t, q.Ferry)
			},
			changes: []string{"provider: azure-functions (subscription " + azureSub + ")"},
		},
		{
			name: "custom",
			base: def,
			u:    Update{Provider: new(Custom), CustomEndpoint: new("https://faas.example.com")},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, TangleProvider{Type: Custom, Endpoint: "https://faas.example.com"}, q.Serverless.Provider)
				assert.Nil(t, q.Ferry)
			},
			changes: []string{"provider: custom/faas.example.com (https://faas.example.com)"},
		},
		{
			name: "cloudflare-workers leaves serverless.provider as it was",
			base: tangleFull,
			u:    Update{Provider: new(CloudflareWorkers), CFAccount: new(cfAccount), CFPlan: new(PlanPaid), CFCPUMs: new(50_000)},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, TangleProvider{Type: GCPFunctions, ProjectID: "tangle-prod-42"}, q.Serverless.Provider)
				want := Provider{Type: CloudflareWorkers, AccountID: cfAccount, Plan: PlanPaid, CPUMs: 50_000}
				assert.Equal(t, []Provider{want}, q.Providers())
				assert.Equal(t, 50_000, q.Providers()[0].EffectiveLimits().Timeout())
			},
			changes: []string{"provider: cloudflare-workers (account " + cfAccount + ", paid plan)"},
		},
		{
			name: "cloudflare-workers free plan",
			base: def,
			u:    Update{Provider: new(CloudflareWorkers), CFAccount: new(cfAccount), CFPlan: new(PlanFree)},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, 10, q.Providers()[0].EffectiveLimits().Timeout())
			},
			changes: []string{"free plan"},
		},
		{
			name: "a named provider, network jobs forbidden",
			base: def,
			u:    Update{Provider: new(Custom), CustomEndpoint: new("https://faas.example.com"), Name: new("edge"), AllowNetwork: new(false)},
			check: func(t *testing.T, q *Policy) {
				require.NotNil(t, q.Ferry)
				require.Len(t, q.Ferry.Providers, 1)
				e := q.Ferry.Providers[0]
				assert.Equal(t, "edge", e.ID())
				assert.False(t, e.NetworkAllowed())
				assert.Equal(t, TangleProvider{Type: Custom, Endpoint: "https://faas.example.com"}, q.Serverless.Provider)
			},
			changes: []string{"provider: edge (custom, https://faas.example.com)"},
		},
		{
			name: "allow network true is the default and is not written",
			base: def,
			u:    Update{Provider: new(AWSLambda), AllowNetwork: new(true)},
			check: func(t *testing.T, q *Policy) {
				assert.Nil(t, q.Ferry)
				assert.True(t, q.Providers()[0].NetworkAllowed())
			},
			changes: []string{"provider: aws-lambda/us-east-1"},
		},
		{
			name: "add appends a new provider",
			base: multi,
			u:    Update{Provider: new(GCPFunctions), GCPProject: new("other-project-9"), Add: true},
			check: func(t *testing.T, q *Policy) {
				got := q.Providers()
				require.Len(t, got, 9)
				assert.Equal(t, Provider{Type: GCPFunctions, ProjectID: "other-project-9"}, got[8])
				assert.Equal(t, lambdaUS, got[0])
				assert.Equal(t, TangleProvider{Type: AWSLambda, Region: "us-east-1"}, q.Serverless.Provider)
			},
			changes: []string{"provider added: gcp-functions/other-project-9"},
		},
		{
			name: "add replaces the entry with the same ID in place",
			base: multi,
			u:    Update{Provider: new(AWSLambda), AWSRegion: new("eu-west-1"), Add: true},
			check: func(t *testing.T, q *Policy) {
				got := q.Providers()
				require.Len(t, got, 8)
				assert.Equal(t, lambdaEU, got[1], "x86_64 is gone: the new entry replaces the old")
			},
			changes: []string{"provider replaced: aws-lambda/eu-west-1 (arm64)"},
		},
		{
			name: "add to the Tangle CLI's single provider",
			base: tangleFull,
			u:    Update{Provider: new(AWSLambda), Regions: []string{"us-east-1", "eu-west-1"}, Add: true},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, []Provider{{Type: GCPFunctions, ProjectID: "tangle-prod-42"}, lambdaUS, lambdaEU}, q.Providers())
				assert.Equal(t, TangleProvider{Type: GCPFunctions, ProjectID: "tangle-prod-42"}, q.Serverless.Provider)
			},
			changes: []string{"provider added: aws-lambda/us-east-1", "provider added: aws-lambda/eu-west-1"},
		},
		{
			// IDs are names when there are names: the entry called "edge"
			// is replaced, whatever its type.
			name: "add with a name replaces the entry of that ID",
			base: multi,
			u:    Update{Provider: new(GCPFunctions), GCPProject: new("ferry-test-2"), Name: new("edge"), Add: true},
			check: func(t *testing.T, q *Policy) {
				got := q.Providers()
				require.Len(t, got, 8)
				assert.Equal(t, Provider{Type: GCPFunctions, ProjectID: "ferry-test-2", Name: "edge"}, got[6])
			},
			changes: []string{"provider replaced: edge (gcp-functions, project ferry-test-2)"},
		},
		{
			name: "remove the mirrored entry mirrors the next",
			base: multi,
			u:    Update{Remove: []string{"aws-lambda/us-east-1"}},
			check: func(t *testing.T, q *Policy) {
				got := q.Providers()
				require.Len(t, got, 7)
				assert.Equal(t, lambdaEUx, got[0])
				assert.Equal(t, TangleProvider{Type: AWSLambda, Region: "eu-west-1"}, q.Serverless.Provider)
				assert.False(t, q.TangleChanged())
			},
			changes: []string{"provider removed: aws-lambda/us-east-1"},
		},
		{
			name: "remove several",
			base: multi,
			u:    Update{Remove: []string{"edge", "cf-free", "custom/10.0.0.7:8080"}},
			check: func(t *testing.T, q *Policy) {
				var ids []string
				for _, p := range q.Providers() {
					ids = append(ids, p.ID())
				}
				assert.Equal(t, []string{"aws-lambda/us-east-1", "aws-lambda/eu-west-1", "cloudflare-workers",
					"gcp-functions/ferry-test-1", "azure-functions"}, ids)
			},
			changes: []string{"provider removed: edge", "provider removed: cf-free", "provider removed: custom/10.0.0.7:8080"},
		},
		{
			name: "remove down to one plain provider drops ferry.providers",
			base: func(t *testing.T) *Policy {
				p := Default()
				p.SetProviders([]Provider{workersP, lambdaEU})
				return p
			},
			u: Update{Remove: []string{"cloudflare-workers"}},
			check: func(t *testing.T, q *Policy) {
				assert.Nil(t, q.Ferry)
				assert.Equal(t, []Provider{lambdaEU}, q.Providers())
			},
			changes: []string{"provider removed: cloudflare-workers"},
		},
		{
			name: "memory, timeout and fallback",
			base: def,
			u:    Update{MemoryMB: new(2048), TimeoutSecs: new(900), FallbackToVM: new(false)},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, 2048, q.Serverless.DefaultMemoryMB)
				assert.Equal(t, 900, q.Serverless.DefaultTimeoutSecs)
				assert.False(t, q.Serverless.FallbackToVM)
				assert.Nil(t, q.Ferry)
			},
			changes: []string{"default memory: 2048 MB", "default timeout: 900 s", "fall back to the VM: off"},
		},
		{
			name: "vm instance and price",
			base: def,
			u:    Update{VMInstance: new("m7g.large"), VMHourlyUSD: new(0.0816), VMUtilisation: new(0.7)},
			check: func(t *testing.T, q *Policy) {
				require.NotNil(t, q.Ferry)
				assert.Equal(t, cost.VM{Instance: "m7g.large", HourlyUSD: 0.0816, VCPUs: 2, Utilisation: 0.7, Source: "policy"}, q.VM())
			},
			changes: []string{"vm: m7g.large, $0.0816/h, 2 vCPU, 70% utilised"},
		},
		{
			name: "vm vCPUs only keeps the default's source",
			base: def,
			u:    Update{VMVCPUs: new(4)},
			check: func(t *testing.T, q *Policy) {
				vm := q.VM()
				assert.Equal(t, 4, vm.VCPUs)
				assert.Equal(t, "t4g.nano", vm.Instance)
				assert.Equal(t, DefaultVM().Source, vm.Source)
			},
			changes: []string{"vm: t4g.nano, $0.0042/h, 4 vCPU, 50% utilised"},
		},
		{
			name: "thresholds set",
			base: def,
			u:    Update{CostThresholdUSD: new(0.0005), LatencyThresholdMs: new(120.5)},
			check: func(t *testing.T, q *Policy) {
				require.NotNil(t, q.CostThreshold())
				assert.Equal(t, 0.0005, *q.CostThreshold())
				require.NotNil(t, q.LatencyThreshold())
				assert.Equal(t, 120.5, *q.LatencyThreshold())
			},
			changes: []string{"cost threshold: $0.0005 per execution", "latency threshold: 120.5 ms"},
		},
		{
			name: "thresholds cleared",
			base: multi,
			u:    Update{ClearCostThreshold: true, ClearLatencyThreshold: true},
			check: func(t *testing.T, q *Policy) {
				assert.Nil(t, q.CostThreshold())
				assert.Nil(t, q.LatencyThreshold())
				assert.NotNil(t, q.State(), "the rest stays")
			},
			changes: []string{"cost threshold: none", "latency threshold: none"},
		},
		{
			name: "clear wins over set",
			base: multi,
			u:    Update{ClearCostThreshold: true, CostThresholdUSD: new(1.0)},
			check: func(t *testing.T, q *Policy) {
				assert.Nil(t, q.CostThreshold())
			},
			changes: []string{"cost threshold: none"},
		},
		{
			name: "state store set",
			base: def,
			u:    Update{StateURL: new("dynamodb://jobs?region=eu-west-1&endpoint=http://localhost:8000")},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, &StateStore{URL: "dynamodb://jobs?region=eu-west-1&endpoint=http://localhost:8000"}, q.State())
			},
			changes: []string{"state store: dynamodb://jobs"},
		},
		{
			name: "clearing the last ferry setting removes the section",
			base: func(t *testing.T) *Policy {
				return mustParse(t, `{"ferry": {"state": {"url": "rediss://cache.example.com:6380/1"}, "cost_threshold_usd": 0.5}}`)
			},
			u: Update{ClearState: true, ClearCostThreshold: true},
			check: func(t *testing.T, q *Policy) {
				assert.Nil(t, q.State())
				assert.Nil(t, q.Ferry)
			},
			changes: []string{"cost threshold: none", "state store: none"},
		},
		{
			name: "nothing to do",
			base: multi,
			u:    Update{},
			check: func(t *testing.T, q *Policy) {
				p := multi(t)
				a, err := p.Encode()
				require.NoError(t, err)
				b, err := q.Encode()
				require.NoError(t, err)
				assert.Equal(t, string(a), string(b))
			},
		},
		{
			name: "Tangle's change is kept when adding",
			base: func(t *testing.T) *Policy {
				p := Default()
				p.SetProviders([]Provider{lambdaUS, workersP})
				p.Serverless.Provider = TangleProvider{Type: GCPFunctions, ProjectID: "tangle-prod-42"} // by the Tangle CLI
				return p
			},
			u: Update{Provider: new(AzureFunctions), AzureSubscription: new(azureSub), Add: true},
			check: func(t *testing.T, q *Policy) {
				assert.Equal(t, []Provider{{Type: GCPFunctions, ProjectID: "tangle-prod-42"}, workersP,
					{Type: AzureFunctions, SubscriptionID: azureSub}}, q.Providers())
				assert.False(t, q.TangleChanged())
			},
			changes: []string{"provider added: azure-functions"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.base(t)
			before, err := p.Encode()
			require.NoError(t, err)

			q, changes, err := p.Apply(tt.u)
			require.NoError(t, err)
			require.NotNil(t, q)
			assert.NotSame(t, p, q)
			tt.check(t, q)
			assert.NoError(t, q.Validate())

			if tt.changes == nil {
				assert.Empty(t, changes)
			}
			i := 0
			for _, want := range tt.changes {
				for i < len(changes) && !strings.Contains(changes[i], want) {
					i++
				}
				if !assert.Less(t, i, len(changes), "no change line (in order) says %q: %q", want, changes) {
					break
				}
				i++
			}

			after, err := p.Encode()
			require.NoError(t, err)
			assert.Equal(t, string(before), string(after), "Apply does not modify its receiver")

			// What Apply returns is a file Ferry can write and read back.
			b, err := q.Encode()
			require.NoError(t, err)
			back := mustParse(t, string(b))
			assert.Equal(t, q.Providers(), back.Providers())
		})
	}
}

func TestPolicy_Apply_Errors(t *testing.T) {
	multi := func(t *testing.T) *Policy { return mustParse(t, string(readTestdata(t, "ferry-multi.json"))) }
	def := func(*testing.T) *Policy { return Default() }

	tests := []struct {
		name     string
		base     func(t *testing.T) *Policy
		u        Update
		sentinel error
		msg      string
		field    string // for ErrInvalid: the field named
	}{
		{name: "unknown provider kind", base: def, u: Update{Provider: new(Kind("aws-fargate"))},
			sentinel: ErrUsage, msg: `--faas-provider "aws-fargate"`},
		{name: "gcp-functions without a project", base: def, u: Update{Provider: new(GCPFunctions)},
			sentinel: ErrUsage, msg: "--faas-provider gcp-functions requires --faas-gcp-project"},
		{name: "gcp-functions with an empty project", base: def, u: Update{Provider: new(GCPFunctions), GCPProject: new("")},
			sentinel: ErrUsage, msg: "requires --faas-gcp-project"},
		{name: "azure-functions without a subscription", base: def, u: Update{Provider: new(AzureFunctions)},
			sentinel: ErrUsage, msg: "--faas-provider azure-functions requires --faas-azure-subscription"},
		{name: "custom without an endpoint", base: def, u: Update{Provider: new(Custom)},
			sentinel: ErrUsage, msg: "--faas-provider custom requires --faas-custom-endpoint"},
		{name: "cloudflare-workers without an account", base: def, u: Update{Provider: new(CloudflareWorkers), CFPlan: new(PlanFree)},
			sentinel: ErrUsage, msg: "--faas-provider cloudflare-workers requires --faas-cf-account"},
		{name: "gcp project for aws-lambda", base: def, u: Update{Provider: new(AWSLambda), GCPProject: new("ferry-test-1")},
			sentinel: ErrUsage, msg: "--faas-gcp-project is for --faas-provider gcp-functions, not aws-lambda"},
		{name: "aws region for gcp-functions", base: def, u: Update{Provider: new(GCPFunctions), GCPProject: new("ferry-test-1"), AWSRegion: new("us-east-1")},
			sentinel: ErrUsage, msg: "--faas-aws-region is for --faas-provider aws-lambda"},
		{name: "arch for custom", base: def, u: Update{Provider: new(Custom), CustomEndpoint: new("https://x.example.com"), Arch: new(ArchX86)},
			sentinel: ErrUsage, msg: "--faas-arch is for --faas-provider aws-lambda"},
		{name: "workers plan for azure", base: def, u: Update{Provider: new(AzureFunctions), AzureSubscription: new(azureSub), CFPlan: new(PlanPaid)},
			sentinel: ErrUsage, msg: "--faas-cf-plan is for --faas-provider cloudflare-workers"},
		{name: "workers cpu for lambda", base: def, u: Update{Provider: new(AWSLambda), CFCPUMs: new(100)},
			sentinel: ErrUsage, msg: "--faas-cf-cpu-ms is for --faas-provider cloudflare-workers"},
		{name: "custom endpoint for workers", base: def, u: Update{Provider: new(CloudflareWorkers), CFAccount: new(cfAccount), CustomEndpoint: new("https://x")},
			sentinel: ErrUsage, msg: "--faas-custom-endpoint is for --faas-provider custom"},
		{name: "regions for gcp", base: def, u: Update{Provider: new(GCPFunctions), GCPProject: new("ferry-test-1"), Regions: []string{"us-east-1"}},
			sentinel: ErrUsage, msg: "--faas-regions is for --faas-provider aws-lambda"},
		{name: "a kind flag without --faas-provider", base: def, u: Update{AWSRegion: new("eu-west-1")},
			sentinel: ErrUsage, msg: "--faas-aws-region needs --faas-provider"},
		{name: "a Workers flag without --faas-provider", base: def, u: Update{CFAccount: new(cfAccount)},
			sentinel: ErrUsage, msg: "--faas-cf-account needs --faas-provider"},
		{name: "a name without --faas-provider", base: def, u: Update{Name: new("edge")},
			sentinel: ErrUsage, msg: "--faas-name needs --faas-provider"},
		{name: "allow network without --faas-provider", base: def, u: Update{AllowNetwork: new(false)},
			sentinel: ErrUsage, msg: "--faas-allow-network needs --faas-provider"},
		{name: "add without --faas-provider", base: multi, u: Update{Add: true},
			sentinel: ErrUsage, msg: "--faas-add needs --faas-provider"},
		{name: "regions listed twice", base: def, u: Update{Provider: new(AWSLambda), Regions: []string{"eu-west-1", "us-east-1", "eu-west-1 "}},
			sentinel: ErrUsage, msg: "--faas-regions lists eu-west-1 twice"},
		{name: "regions with aws region", base: def, u: Update{Provider: new(AWSLambda), Regions: []string{"eu-west-1"}, AWSRegion: new("us-east-1")},
			sentinel: ErrUsage, msg: "give --faas-aws-region or --faas-regions, not both"},
		{name: "regions with a name", base: def, u: Update{Provider: new(AWSLambda), Regions: []string{"eu-west-1", "us-east-1"}, Name: new("lambda")},
			sentinel: ErrUsage, msg: "--faas-name names one entry; --faas-regions makes 2"},
		{name: "remove an unknown ID", base: multi, u: Update{Remove: []string{"aws-lambda/eu-central-1"}},
			sentinel: ErrUsage, msg: "--faas-remove aws-lambda/eu-central-1: no such provider; have aws-lambda/us-east-1, aws-lambda/eu-west-1, cloudflare-workers, cf-free"},
		{name: "remove the same ID twice", base: multi, u: Update{Remove: []string{"edge", "edge"}},
			sentinel: ErrUsage, msg: "--faas-remove edge: no such provider"},
		{name: "remove the last provider", base: def, u: Update{Remove: []string{"aws-lambda/us-east-1"}},
			sentinel: ErrUsage, msg: "--faas-remove would leave no provider"},
		{name: "remove every provider", base: func(t *testing.T) *Policy {
			p := Default()
			p.SetProviders([]Provider{lambdaUS, workersP})
			return p
		}, u: Update{Remove: []string{"cloudflare-workers", "aws-lambda/us-east-1"}},
			sentinel: ErrUsage, msg: "would leave no provider"},
		{name: "memory 5 MB", base: multi, u: Update{MemoryMB: new(5)},
			sentinel: ErrInvalid, msg: "5 MB is outside 128..32768", field: "serverless.default_memory_mb"},
		{name: "timeout 0", base: def, u: Update{TimeoutSecs: new(0)},
			sentinel: ErrInvalid, msg: "outside 1..3600", field: "serverless.default_timeout_secs"},
		{name: "bad AWS region", base: def, u: Update{Provider: new(AWSLambda), AWSRegion: new("mars-1")},
			sentinel: ErrInvalid, msg: "not an AWS region", field: "serverless.provider.region"},
		{name: "bad region among several", base: def, u: Update{Provider: new(AWSLambda), Regions: []string{"eu-west-1", "nowhere"}},
			sentinel: ErrInvalid, msg: "not an AWS region", field: "ferry.providers[1].region"},
		{name: "bad arch", base: def, u: Update{Provider: new(AWSLambda), Arch: new("amd64")},
			sentinel: ErrInvalid, msg: "want arm64 or x86_64", field: "ferry.providers[0].arch"},
		{name: "bad GCP project", base: def, u: Update{Provider: new(GCPFunctions), GCPProject: new("Ferry")},
			sentinel: ErrInvalid, msg: "not a GCP project ID", field: "serverless.provider.project_id"},
		{name: "bad subscription", base: def, u: Update{Provider: new(AzureFunctions), AzureSubscription: new("not-a-guid")},
			sentinel: ErrInvalid, msg: "not an Azure subscription ID", field: "serverless.provider.subscription_id"},
		{name: "bad endpoint", base: def, u: Update{Provider: new(Custom), CustomEndpoint: new("faas.example.com")},
			sentinel: ErrInvalid, msg: "want an http:// or https:// URL", field: "serverless.provider.endpoint"},
		{name: "bad Cloudflare account", base: def, u: Update{Provider: new(CloudflareWorkers), CFAccount: new("abc")},
			sentinel: ErrInvalid, msg: "not a Cloudflare account ID", field: "ferry.providers[0].account_id"},
		{name: "free plan with cpu ms", base: def, u: Update{Provider: new(CloudflareWorkers), CFAccount: new(cfAccount), CFPlan: new(PlanFree), CFCPUMs: new(50)},
			sentinel: ErrInvalid, msg: "fixed at 10 ms", field: "ferry.providers[0].cpu_ms"},
		{name: "unknown plan", base: def, u: Update{Provider: new(CloudflareWorkers), CFAccount: new(cfAccount), CFPlan: new("business")},
			sentinel: ErrInvalid, msg: "want free or paid", field: "ferry.providers[0].plan"},
		{name: "bad name", base: def, u: Update{Provider: new(AWSLambda), Name: new("My Lambda")},
			sentinel: ErrInvalid, msg: "want lowercase letters", field: "ferry.providers[0].name"},
		{name: "vm without vCPUs", base: def, u: Update{VMVCPUs: new(0)},
			sentinel: ErrInvalid, msg: "vcpus", field: "ferry.vm"},
		{name: "vm utilisation over 1", base: multi, u: Update{VMUtilisation: new(1.5)},
			sentinel: ErrInvalid, msg: "utilisation", field: "ferry.vm"},
		{name: "negative cost threshold", base: def, u: Update{CostThresholdUSD: new(-1.0)},
			sentinel: ErrInvalid, msg: "outside 0..1000", field: "ferry.cost_threshold_usd"},
		{name: "zero latency threshold", base: def, u: Update{LatencyThresholdMs: new(0.0)},
			sentinel: ErrInvalid, msg: "outside (0,", field: "ferry.latency_threshold_ms"},
		{name: "bad state URL", base: def, u: Update{StateURL: new("postgres://db/x")},
			sentinel: ErrInvalid, msg: "want redis://, rediss:// or dynamodb://", field: "ferry.state.url"},
		{name: "redis without a host", base: def, u: Update{StateURL: new("redis:///0")},
			sentinel: ErrInvalid, msg: "has no host", field: "ferry.state.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.base(t)
			before, err := p.Encode()
			require.NoError(t, err)

			q, changes, err := p.Apply(tt.u)
			require.Error(t, err)
			assert.Nil(t, q)
			assert.Nil(t, changes)
			assert.ErrorIs(t, err, tt.sentinel)
			for _, other := range []error{ErrUsage, ErrInvalid, ErrSyntax} {
				if other != tt.sentinel {
					assert.NotErrorIs(t, err, other)
				}
			}
			assert.Contains(t, err.Error(), tt.msg)
			if tt.field != "" {
				e := errorFor(t, err, tt.field)
				assert.Empty(t, e.File, "a policy not read from a file")
				assert.Zero(t, e.Line)
			}

			after, err := p.Encode()
			require.NoError(t, err)
			assert.Equal(t, string(before), string(after), "a refused change leaves the policy as it was")
		})
	}
}

func TestUpdate_Empty(t *testing.T) {
	tests := []struct {
		name  string
		u     Update
		empty bool
	}{
		{"zero", Update{}, true},
		{"serverless", Update{Serverless: new(false)}, false},
		{"provider", Update{Provider: new(AWSLambda)}, false},
		{"kind flag alone", Update{GCPProject: new("x")}, false},
		{"regions alone", Update{Regions: []string{"eu-west-1"}}, false},
		{"name alone", Update{Name: new("x")}, false},
		{"add alone", Update{Add: true}, false},
		{"remove", Update{Remove: []string{"x"}}, false},
		{"memory", Update{MemoryMB: new(1024)}, false},
		{"vm", Update{VMUtilisation: new(0.5)}, false},
		{"clear cost", Update{ClearCostThreshold: true}, false},
		{"clear latency", Update{ClearLatencyThreshold: true}, false},
		{"state", Update{StateURL: new("redis://x")}, false},
		{"clear state", Update{ClearState: true}, false},
		{"empty remove list", Update{Remove: []string{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.empty, tt.u.Empty())
		})
	}
}

// Apply, then Save, then Load gives the policy Apply returned.
func TestPolicy_Apply_SaveLoad(t *testing.T) {
	path := t.TempDir() + "/tangle/deployment-policy.json"
	p, exists, err := Load(path)
	require.NoError(t, err)
	require.False(t, exists)
	q, _, err := p.Apply(Update{
		Serverless: new(true), Provider: new(AWSLambda), Regions: []string{"us-east-1", "eu-west-1"},
		MemoryMB: new(1024), CostThresholdUSD: new(0.0002), StateURL: new("redis://127.0.0.1:6379/0"),
	})
	require.NoError(t, err)
	require.NoError(t, Save(path, q))
	r, exists, err := Load(path)
	require.NoError(t, err)
	assert.True(t, exists)
	assert.Equal(t, q.Serverless, r.Serverless)
	assert.Equal(t, q.Ferry, r.Ferry)
	assert.Equal(t, []Provider{lambdaUS, lambdaEU}, r.Providers())
}
