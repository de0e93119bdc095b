package plan

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/orchestrator/policy"
)

const cfAccount = "0123456789abcdef0123456789abcdef"

var (
	lambda  = policy.Provider{Type: policy.AWSLambda, Region: "us-east-1"}
	lambdaE = policy.Provider{Type: policy.AWSLambda, Region: "eu-west-1"}
	workers = policy.Provider{Type: policy.CloudflareWorkers, AccountID: cfAccount}
	custom  = policy.Provider{Type: policy.Custom, Endpoint: "http://127.0.0.1:9000"}
)

// pol is an enabled policy with these providers.
func pol(t *testing.T, providers ...policy.Provider) *policy.Policy {
	t.Helper()
	p := policy.Default()
	p.Serverless.Enable = true
	p.SetProviders(providers)
	require.NoError(t, p.Validate())
	return p
}

// pure is a small, fast, pure, deterministic, profiled job.
func pure(name string) Job {
	return Job{
		Name: name, IsPure: true, IsDeterministic: true, MinMemoryBytes: 2 << 20,
		Profile: &Profile{
			P50: 100 * time.Microsecond, P95: 200 * time.Microsecond, Max: 300 * time.Microsecond,
			PeakMemoryBytes: 3 << 20, InputBytesMax: 100, OutputBytesMax: 100, Deterministic: true,
		},
	}
}

func ptr[T any](v T) *T { return &v }

func reasons(t Target) map[Code]Reason {
	m := map[Code]Reason{}
	for _, r := range t.Reasons {
		m[r.Code] = r
	}
	return m
}

func TestMake_Reasons(t *testing.T) {
	withState := pol(t, lambda)
	withState.Ferry = &policy.Extensions{State: &policy.StateStore{URL: "redis://127.0.0.1:6379/0"}}
	noNet := lambda
	noNet.AllowNetwork = ptr(false)
	cheap := pol(t, lambda)
	cheap.Ferry = &policy.Extensions{CostThresholdUSD: ptr(1e-9)}
	fast := pol(t, lambda)
	fast.Ferry = &policy.Extensions{LatencyThresholdMs: ptr(5.0)}
	free := workers
	free.Plan = policy.PlanFree

	tests := []struct {
		name     string
		job      func(Job) Job
		policy   *policy.Policy
		prefs    Preferences
		target   int  // index of the target checked
		eligible bool // expected eligibility there
		code     Code // a reason that must be present ("" for none)
		blocking bool
		contains string // in the reason's message
	}{
		{name: "clean job is eligible", policy: pol(t, lambda), eligible: true},
		{name: "serverless off", policy: policy.Default(), code: CodeServerlessOff, blocking: true, contains: "--serverless true"},
		{name: "provider not allowed by blueprint", policy: pol(t, workers), prefs: Preferences{Providers: []policy.Kind{policy.AWSLambda}},
			code: CodeProvider, blocking: true, contains: "aws_lambda"},
		{name: "region not allowed by blueprint", policy: pol(t, lambdaE), prefs: Preferences{Regions: []string{"us-east-1"}},
			code: CodeRegion, blocking: true, contains: "eu-west-1"},
		{name: "region does not restrict workers", policy: pol(t, workers), prefs: Preferences{Regions: []string{"us-east-1"}}, eligible: true},
		{name: "memory override above provider max", policy: pol(t, lambda), job: func(j Job) Job { j.MemoryMB = ptr(20000); return j },
			code: CodeMemory, blocking: true, contains: "at most 10240 MB"},
		{name: "memory override below need", policy: pol(t, lambda), job: func(j Job) Job {
			j.MemoryMB = ptr(128)
			j.Profile.PeakMemoryBytes = 100 << 20
			return j
		}, code: CodeMemory, blocking: true, contains: "less than"},
		{name: "peak memory too big for workers", policy: pol(t, workers), job: func(j Job) Job { j.Profile.PeakMemoryBytes = 120 << 20; return j },
			code: CodeMemory, blocking: true, contains: "runtime"},
		{name: "timeout override above provider max", policy: pol(t, lambda), job: func(j Job) Job { j.TimeoutSecs = ptr(1200); return j },
			code: CodeTimeout, blocking: true, contains: "900 s"},
		{name: "longest sample over the timeout, scaled by CPU share", policy: pol(t, lambda), job: func(j Job) Job {
			j.TimeoutSecs = ptr(10)
			j.MemoryMB = ptr(512)
			j.Profile.Max = 5 * time.Second // × 1769/512 ≈ 17 s
			return j
		}, code: CodeTimeout, blocking: true, contains: "of a vCPU"},
		{name: "workers CPU limit", policy: pol(t, free), job: func(j Job) Job { j.Profile.Max = 50 * time.Millisecond; return j },
			code: CodeTimeout, blocking: true, contains: "CPU limit is 10 ms"},
		{name: "input payload too large for lambda after base64", policy: pol(t, lambda), job: func(j Job) Job { j.Profile.InputBytesMax = 5 << 20; return j },
			code: CodePayload, blocking: true, contains: "inputs reach 5.0 MiB"},
		{name: "output payload too large for custom", policy: pol(t, custom), job: func(j Job) Job { j.Profile.OutputBytesMax = 2 << 20; return j },
			code: CodePayload, blocking: true, contains: "outputs reach"},
		{name: "state without a store", policy: pol(t, lambda), job: func(j Job) Job { j.IsPure, j.RequiresState = false, true; return j },
			code: CodeState, blocking: true, contains: "--state-store"},
		{name: "state with a store", policy: withState, job: func(j Job) Job { j.IsPure, j.RequiresState = false, true; return j },
			eligible: true, code: CodeNondeterministic, contains: "never hedged"},
		{name: "network forbidden", policy: pol(t, noNet), job: func(j Job) Job {
			j.IsPure, j.NetworkCalls = false, []string{"api.example.com"}
			return j
		}, code: CodeNetwork, blocking: true, contains: "api.example.com"},
		{name: "network allowed", policy: pol(t, lambda), job: func(j Job) Job {
			j.IsPure, j.NetworkCalls = false, []string{"api.example.com"}
			return j
		}, eligible: true},
		{name: "unprofiled", policy: pol(t, lambda), job: func(j Job) Job { j.Profile = nil; return j },
			code: CodeUnprofiled, blocking: true, contains: "add samples"},
		{name: "unprofiled but forced", policy: pol(t, lambda), job: func(j Job) Job { j.Profile, j.ForceServerless = nil, true; return j },
			eligible: true, code: CodeUnprofiled, contains: "overridden by force_serverless"},
		{name: "over the cost threshold", policy: cheap, code: CodeCost, blocking: true, contains: "threshold"},
		{name: "over the blueprint's cost threshold", policy: pol(t, lambda), prefs: Preferences{CostThresholdUSD: ptr(1e-9)},
			code: CodeCost, blocking: true, contains: "$1e-09"},
		{name: "cost threshold overridden by force", policy: cheap, job: func(j Job) Job { j.ForceServerless = true; return j },
			eligible: true, code: CodeCost, contains: "overridden"},
		{name: "over the latency threshold", policy: fast, code: CodeLatency, blocking: true, contains: "5 ms"},
		{name: "latency threshold overridden by force", policy: fast, job: func(j Job) Job { j.ForceServerless = true; return j },
			eligible: true, code: CodeLatency, contains: "overridden"},
		{name: "nondeterministic samples", policy: pol(t, lambda), job: func(j Job) Job {
			j.Profile.Deterministic, j.Profile.NondeterministicSample = false, "inline[0]"
			return j
		}, eligible: true, code: CodeNondeterministic, contains: `"inline[0]"`},
		{name: "forced", policy: pol(t, lambda), job: func(j Job) Job { j.ForceServerless = true; return j },
			eligible: true, code: CodeForced, contains: "every call goes remote"},
		{name: "second target checked on its own", policy: pol(t, lambda, free), target: 1,
			job: func(j Job) Job { j.Profile.Max = 20 * time.Millisecond; return j }, code: CodeTimeout, blocking: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := pure("job")
			if tc.job != nil {
				j = tc.job(j)
			}
			p := Make(Input{Blueprint: "bp", Jobs: []Job{j}, Policy: tc.policy, Prefs: tc.prefs})
			require.Len(t, p.Jobs, 1)
			require.Greater(t, len(p.Jobs[0].Targets), tc.target)
			tg := p.Jobs[0].Targets[tc.target]
			assert.Equal(t, tc.eligible, tg.Eligible, "reasons: %+v", tg.Reasons)
			if tc.code == "" {
				for _, r := range tg.Reasons {
					assert.False(t, r.Blocking, "unexpected blocking reason %+v", r)
				}
				return
			}
			r, ok := reasons(tg)[tc.code]
			require.True(t, ok, "no %s reason in %+v", tc.code, tg.Reasons)
			assert.Equal(t, tc.blocking, r.Blocking)
			assert.Contains(t, r.Message, tc.contains)
		})
	}
}

func TestMake_Strategy(t *testing.T) {
	stateful := pure("counter")
	stateful.IsPure, stateful.IsDeterministic, stateful.RequiresState = false, false, true
	tests := []struct {
		name     string
		policy   *policy.Policy
		jobs     []Job
		strategy Strategy
		remote   []string
		local    []string
	}{
		{"all eligible", pol(t, lambda), []Job{pure("a"), pure("b")}, Serverless, []string{"a", "b"}, []string{}},
		{"some eligible", pol(t, lambda), []Job{pure("a"), stateful}, Hybrid, []string{"a"}, []string{"counter"}},
		{"none eligible", pol(t, lambda), []Job{stateful}, Traditional, []string{}, []string{"counter"}},
		{"serverless off", policy.Default(), []Job{pure("a")}, Traditional, []string{}, []string{"a"}},
		{"no jobs", pol(t, lambda), nil, Traditional, []string{}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Make(Input{Blueprint: "bp", Jobs: tc.jobs, Policy: tc.policy})
			assert.Equal(t, tc.strategy, p.Strategy, p.Why)
			assert.Equal(t, tc.remote, p.RemoteJobs)
			assert.Equal(t, tc.local, p.LocalJobs)
			assert.NotEmpty(t, p.Why)
			for _, j := range p.Jobs {
				want := Local
				if slices.Contains(tc.remote, j.Name) {
					want = Remote
				}
				assert.Equal(t, want, j.Placement, j.Name)
			}
		})
	}
}

func TestMake_Placement(t *testing.T) {
	t.Run("local is preferred when cheaper", func(t *testing.T) {
		p := Make(Input{Jobs: []Job{pure("a")}, Policy: pol(t, lambda, workers)})
		j := p.Jobs[0]
		assert.Equal(t, Remote, j.Placement)
		assert.Equal(t, "local", j.Preferred)
		assert.Equal(t, []string{"aws-lambda/us-east-1", "cloudflare-workers"}, j.Deploy)
		assert.True(t, j.Hedge)
	})
	t.Run("a forced job prefers the cheapest provider", func(t *testing.T) {
		j := pure("a")
		j.ForceServerless = true
		p := Make(Input{Jobs: []Job{j}, Policy: pol(t, workers, lambda)})
		require.NotNil(t, p.Jobs[0].Targets[0].Cost)
		require.NotNil(t, p.Jobs[0].Targets[1].Cost)
		// Lambda: 1 ms at 512 MB + $0.2/M ≈ $2.07e-7; Workers: $0.3/M + CPU.
		assert.Equal(t, "aws-lambda/us-east-1", p.Jobs[0].Preferred)
	})
	t.Run("impure jobs are never hedged", func(t *testing.T) {
		j := pure("a")
		j.IsPure, j.NetworkCalls = false, []string{"x.example"}
		p := Make(Input{Jobs: []Job{j}, Policy: pol(t, lambda)})
		assert.Equal(t, Remote, p.Jobs[0].Placement)
		assert.False(t, p.Jobs[0].Hedge)
	})
	t.Run("a forced job nobody can run is a problem", func(t *testing.T) {
		j := pure("big")
		j.ForceServerless, j.MemoryMB = true, ptr(20000)
		p := Make(Input{Jobs: []Job{j}, Policy: pol(t, lambda)})
		assert.Equal(t, Local, p.Jobs[0].Placement)
		require.Len(t, p.Problems, 1)
		assert.Contains(t, p.Problems[0], `"big" has force_serverless`)
	})
	t.Run("unpriced custom host loses to priced providers on cost", func(t *testing.T) {
		j := pure("a")
		j.ForceServerless = true
		p := Make(Input{Jobs: []Job{j}, Policy: pol(t, custom, lambda)})
		assert.Nil(t, p.Jobs[0].Targets[0].Cost)
		assert.Equal(t, "aws-lambda/us-east-1", p.Jobs[0].Preferred)
	})
}

func TestMake_Estimates(t *testing.T) {
	j := pure("a")
	j.Profile.P50, j.Profile.P95 = 10*time.Millisecond, 20*time.Millisecond
	j.MemoryMB = ptr(1769) // one full vCPU on Lambda
	p := Make(Input{Jobs: []Job{j}, Policy: pol(t, lambda), CallsPerSecond: 2})
	tg := p.Jobs[0].Targets[0]
	require.NotNil(t, tg.Cost)
	require.NotNil(t, tg.Latency)
	// 10 ms × 1769/1024 GB × $0.0000133334 + $0.0000002.
	want := 0.010*1769.0/1024*0.0000133334 + 0.0000002
	assert.InDelta(t, want, tg.Cost.PerCallUSD, 1e-15)
	assert.Equal(t, int64(10), tg.Cost.BilledMs)
	assert.InDelta(t, want*2*730*3600, tg.Cost.MonthlyUSD, 1e-9)
	// 20 ms overhead + 20 ms p95 + 2 × 100 B × 4/3 over 100 MB/s.
	assert.InDelta(t, 40.003, tg.Latency.WarmMs, 0.001)
	assert.Equal(t, 450.0, tg.Latency.ColdStartMs)
	assert.Equal(t, 1769, tg.MemoryMB)

	// Half the memory: half the CPU, twice the time, same compute cost.
	j.MemoryMB = ptr(884)
	p2 := Make(Input{Jobs: []Job{j}, Policy: pol(t, lambda)})
	tg2 := p2.Jobs[0].Targets[0]
	assert.Greater(t, tg2.Latency.WarmMs, tg.Latency.WarmMs+15)
	assert.InEpsilon(t, tg.Cost.PerCallUSD, tg2.Cost.PerCallUSD, 0.05) // 1 ms of rounding apart

	// Local: t4g.nano at 50 % utilisation.
	local := p.Jobs[0].Local
	require.NotNil(t, local.Cost)
	assert.InDelta(t, 0.0042/3600*0.010/(2*0.5), local.Cost.PerCallUSD, 1e-18)
	assert.Equal(t, 20.0, local.Latency.WarmMs)
}

func TestMake_PureAndDeterministic(t *testing.T) {
	in := Input{Blueprint: "bp", Jobs: []Job{pure("b"), pure("a")}, Policy: pol(t, lambda, workers, custom),
		Prefs: Preferences{Providers: []policy.Kind{policy.AWSLambda}}}
	before, err := json.Marshal(in.Jobs)
	require.NoError(t, err)
	p1, err := json.Marshal(Make(in))
	require.NoError(t, err)
	p2, err := json.Marshal(Make(in))
	require.NoError(t, err)
	assert.Equal(t, string(p1), string(p2))
	after, err := json.Marshal(in.Jobs)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "Make must not modify its input")
	assert.True(t, strings.Index(string(p1), `"name":"a"`) < strings.Index(string(p1), `"name":"b"`), "jobs sorted by name")
}

func TestMake_NilPolicyIsDefault(t *testing.T) {
	p := Make(Input{Jobs: []Job{pure("a")}})
	assert.Equal(t, Traditional, p.Strategy)
	assert.False(t, p.Serverless)
	assert.Equal(t, DefaultCallsPerSecond, p.CallsPerSecond)
}

func BenchmarkMake(b *testing.B) {
	p := policy.Default()
	p.Serverless.Enable = true
	p.SetProviders([]policy.Provider{lambda, lambdaE, workers, custom})
	jobs := make([]Job, 50)
	for i := range jobs {
		jobs[i] = pure(strings.Repeat("j", i+1))
	}
	in := Input{Blueprint: "bp", Jobs: jobs, Policy: p}
	b.ReportAllocs()
	for b.Loop() {
		Make(in)
	}
}

func TestMake_LocalCapacity(t *testing.T) {
	j := pure("slow")
	j.Profile.P50 = time.Second
	low := Make(Input{Jobs: []Job{j}, Policy: pol(t, lambda), CallsPerSecond: 1})
	_, noted := reasons(low.Jobs[0].Local)[CodeCapacity]
	assert.False(t, noted, "1 call/s of 1 s fits 2 vCPUs")
	high := Make(Input{Jobs: []Job{j}, Policy: pol(t, lambda), CallsPerSecond: 5})
	r, noted := reasons(high.Jobs[0].Local)[CodeCapacity]
	require.True(t, noted)
	assert.False(t, r.Blocking)
	assert.Contains(t, r.Message, "keeps 5 vCPUs busy")
}
