package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/analyze"
	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/orchestrator/plan"
	"github.com/ferryrun/ferry/orchestrator/policy"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

const testAccount = "0123456789abcdef0123456789abcdef"

func TestCloudPolicy_DefaultLocation(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	file := filepath.Join(xdg, "tangle", "deployment-policy.json")

	r := ferry(t, "", "cloud", "show")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, file+" (not there: defaults)")
	assert.Contains(t, r.stdout, "Serverless is off")

	r = ferry(t, "", "cloud", "policy", "--serverless", "true", "--faas-provider", "aws-lambda",
		"--faas-aws-region", "eu-west-1", "--faas-memory", "1024", "--faas-timeout", "600")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "✓ serverless: on")
	assert.Contains(t, r.stdout, "✓ provider: aws-lambda/eu-west-1")
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// The file is the Tangle CLI's schema, nothing more for one provider.
	var doc map[string]any
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Equal(t, map[string]any{"serverless": map[string]any{
		"enable": true, "provider": map[string]any{"type": "aws-lambda", "region": "eu-west-1"},
		"default_memory_mb": 1024.0, "default_timeout_secs": 600.0, "fallback_to_vm": true,
	}}, doc)

	r = ferry(t, "", "cloud", "show", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var v policy.View
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	assert.True(t, v.Exists)
	assert.True(t, v.Enable)
	require.Len(t, v.Providers, 1)
	assert.Equal(t, "aws-lambda/eu-west-1", v.Providers[0].ID)
	assert.Equal(t, 10240, v.Providers[0].Limits.MemoryMB)
}

func TestCloudPolicy_Flags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.json")
	run := func(args ...string) result {
		return ferry(t, "", append([]string{"cloud", "policy", "--policy", file}, args...)...)
	}
	r := run("--serverless", "true", "--faas-provider", "aws-lambda", "--faas-regions", "us-east-1,eu-west-1")
	require.Equal(t, 0, r.code, r.stderr)
	r = run("--faas-provider", "cloudflare-workers", "--faas-cf-account", testAccount, "--faas-add")
	require.Equal(t, 0, r.code, r.stderr)
	r = run("--faas-provider", "custom", "--faas-custom-endpoint", "http://127.0.0.1:8080", "--faas-add", "--faas-name", "edge")
	require.Equal(t, 0, r.code, r.stderr)
	r = run("--vm-instance", "t4g.micro", "--vm-hourly-price", "0.0084", "--cost-threshold", "0.0001",
		"--latency-threshold", "250", "--state-store", "redis://127.0.0.1:6379/0", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var v policy.View
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	var ids []string
	for _, p := range v.Providers {
		ids = append(ids, p.ID)
	}
	assert.Equal(t, []string{"aws-lambda/us-east-1", "aws-lambda/eu-west-1", "cloudflare-workers", "edge"}, ids)
	assert.Equal(t, "t4g.micro", v.VM.Instance)
	assert.Equal(t, 0.0084, v.VM.HourlyUSD)
	require.NotNil(t, v.CostThresholdUSD)
	assert.Equal(t, 0.0001, *v.CostThresholdUSD)
	require.NotNil(t, v.State)

	r = run("--faas-remove", "edge", "--cost-threshold", "none", "--state-store", "none")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "provider removed: edge")
	p, _, err := policy.Load(file)
	require.NoError(t, err)
	assert.Len(t, p.Providers(), 3)
	assert.Nil(t, p.CostThreshold())
	assert.Nil(t, p.State())

	// No flags: the policy is shown, nothing changes.
	before, err := os.ReadFile(file)
	require.NoError(t, err)
	r = run()
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "No changes given")
	after, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

func TestCloudPolicy_BadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	r := ferry(t, "", "cloud", "policy", "--policy", good, "--serverless", "true")
	require.Equal(t, 0, r.code, r.stderr)
	goodBytes, err := os.ReadFile(good)
	require.NoError(t, err)

	malformed := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(malformed, []byte("{\n  \"serverless\": {\n    \"enable\": true,\n  }\n}\n"), 0o600))
	typo := filepath.Join(dir, "typo.json")
	require.NoError(t, os.WriteFile(typo, []byte("{\n  \"serverless\": {\n    \"default_memory_mb\": \"lots\"\n  }\n}\n"), 0o600))

	tests := []struct {
		name      string
		args      []string
		code      int
		stderrHas string
	}{
		{"unknown provider", []string{"cloud", "policy", "--policy", good, "--faas-provider", "oracle-cloud"}, 2, `"oracle-cloud"`},
		{"gcp without project", []string{"cloud", "policy", "--policy", good, "--faas-provider", "gcp-functions"}, 2, "requires --faas-gcp-project"},
		{"azure without subscription", []string{"cloud", "policy", "--policy", good, "--faas-provider", "azure-functions"}, 2, "requires --faas-azure-subscription"},
		{"custom without endpoint", []string{"cloud", "policy", "--policy", good, "--faas-provider", "custom"}, 2, "requires --faas-custom-endpoint"},
		{"workers without account", []string{"cloud", "policy", "--policy", good, "--faas-provider", "cloudflare-workers"}, 2, "requires --faas-cf-account"},
		{"flag for another provider", []string{"cloud", "policy", "--policy", good, "--faas-provider", "aws-lambda", "--faas-gcp-project", "my-project"}, 2, "is for --faas-provider gcp-functions"},
		{"region without provider", []string{"cloud", "policy", "--policy", good, "--faas-aws-region", "us-east-1"}, 2, "needs --faas-provider"},
		{"negative memory", []string{"cloud", "policy", "--policy", good, "--faas-memory", "-512"}, 2, "--faas-memory -512"},
		{"absurd memory", []string{"cloud", "policy", "--policy", good, "--faas-memory", "1000000"}, 2, "want 128..32768"},
		{"zero timeout", []string{"cloud", "policy", "--policy", good, "--faas-timeout", "0"}, 2, "--faas-timeout 0"},
		{"absurd timeout", []string{"cloud", "policy", "--policy", good, "--faas-timeout", "99999"}, 2, "want 1..3600"},
		{"bool without value", []string{"cloud", "policy", "--policy", good, "--serverless"}, 2, "needs an argument"},
		{"bool with junk", []string{"cloud", "policy", "--policy", good, "--serverless", "maybe"}, 2, "want true or false"},
		{"bad endpoint", []string{"cloud", "policy", "--policy", good, "--faas-provider", "custom", "--faas-custom-endpoint", "ftp://x"}, 2, "http:// or https://"},
		{"bad region", []string{"cloud", "policy", "--policy", good, "--faas-provider", "aws-lambda", "--faas-aws-region", "mars-1"}, 2, "not an AWS region"},
		{"bad utilisation", []string{"cloud", "policy", "--policy", good, "--vm-utilisation", "1.5"}, 2, "utilisation"},
		{"bad threshold", []string{"cloud", "policy", "--policy", good, "--cost-threshold", "cheap"}, 2, "want a number or none"},
		{"bad state store", []string{"cloud", "policy", "--policy", good, "--state-store", "mysql://x"}, 2, "redis://"},
		{"remove unknown", []string{"cloud", "policy", "--policy", good, "--faas-remove", "nope"}, 2, "no such provider"},
		{"malformed file: show", []string{"cloud", "show", "--policy", malformed}, 2, "bad.json:4:3"},
		{"malformed file: policy", []string{"cloud", "policy", "--policy", malformed, "--serverless", "false"}, 2, "bad.json:4:3"},
		{"wrong type names the field", []string{"cloud", "show", "--policy", typo}, 2, "typo.json:3:26: serverless.default_memory_mb: want a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ferry(t, "", tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.stderrHas)
			now, err := os.ReadFile(good)
			require.NoError(t, err)
			assert.Equal(t, string(goodBytes), string(now), "a refused change must leave the file as it was")
		})
	}
	// The malformed file is never rewritten either.
	b, err := os.ReadFile(malformed)
	require.NoError(t, err)
	assert.Contains(t, string(b), "true,\n  }")
}

// planBundle writes a bundle with two jobs (the echo WAT module): one
// profiled and pure, one stateful and unprofiled.
func planBundle(t *testing.T) string {
	t.Helper()
	wasm, err := examples.WAT("echo")
	require.NoError(t, err)
	d := modstore.Digest(wasm)
	an, err := analyze.Module(wasm, nil)
	require.NoError(t, err)
	prof := &analyze.Profile{Samples: 1, Runs: 2, DurationP50: analyze.Duration(100 * time.Microsecond),
		DurationP95: analyze.Duration(200 * time.Microsecond), DurationMax: analyze.Duration(300 * time.Microsecond),
		PeakMemoryBytes: 1 << 16, InputBytesMax: 5, OutputBytesMax: 5, Deterministic: true}
	stateful := *an
	stateful.IsPure, stateful.IsDeterministic, stateful.RequiresState = false, false, true
	lat := 100
	m := &bundle.Manifest{Blueprint: "plan-test", Ferry: "test",
		Serverless: &bundle.Serverless{Providers: []string{"aws_lambda"}, LatencyThresholdMs: &lat},
		Jobs: []bundle.Job{
			{Name: "echo", Module: d, SizeBytes: len(wasm), Language: "wat", Source: "echo.wat", Analysis: *an, Profile: prof},
			{Name: "counter", Module: d, SizeBytes: len(wasm), Language: "wat", Source: "echo.wat", Analysis: stateful},
		}}
	dir := filepath.Join(t.TempDir(), "plan-test.bundle")
	require.NoError(t, bundle.Write(dir, m, map[string][]byte{d: wasm}))
	return dir
}

func TestPlanCmd(t *testing.T) {
	b := planBundle(t)
	file := filepath.Join(t.TempDir(), "policy.json")
	r := ferry(t, "", "cloud", "policy", "--policy", file, "--serverless", "true", "--faas-provider", "aws-lambda")
	require.Equal(t, 0, r.code, r.stderr)

	r = ferry(t, "", "plan", b, "--policy", file)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Blueprint plan-test: HYBRID")
	assert.Contains(t, r.stdout, "✗ state")
	assert.Contains(t, r.stdout, "UNPROFILED")

	r = ferry(t, "", "plan", b, "--policy", file, "--json", "--rate", "3600/h")
	require.Equal(t, 0, r.code, r.stderr)
	var p plan.Plan
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p))
	assert.Equal(t, plan.Hybrid, p.Strategy)
	assert.Equal(t, []string{"echo"}, p.RemoteJobs)
	assert.Equal(t, []string{"counter"}, p.LocalJobs)
	assert.Equal(t, 1.0, p.CallsPerSecond)
	require.NotNil(t, p.LatencyThresholdMs, "the manifest carries blueprint.toml's threshold")
	assert.Equal(t, 100.0, *p.LatencyThresholdMs)

	// Without a policy file: the defaults, serverless off.
	r = ferry(t, "", "plan", b, "--policy", filepath.Join(t.TempDir(), "none.json"), "--json")
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p))
	assert.Equal(t, plan.Traditional, p.Strategy)

	for _, tc := range []struct {
		name string
		args []string
		code int
		has  string
	}{
		{"no bundle", []string{"plan", filepath.Join(t.TempDir(), "nope")}, 4, "no such file"},
		{"bad rate", []string{"plan", b, "--rate", "-3/s"}, 2, "--rate"},
		{"bad rate unit", []string{"plan", b, "--rate", "3/week"}, 2, "unit"},
		{"no args", []string{"plan"}, 2, "accepts 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ferry(t, "", tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.has)
		})
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"5": 5, "5/s": 5, "60/min": 1, "7200/h": 2, "86400/day": 1, "2628000/month": 1} {
		got, err := parseRate(in)
		require.NoError(t, err, in)
		assert.InDelta(t, want, got, 1e-9, in)
	}
	for _, in := range []string{"", "0", "-1", "x/s", "1/fortnight", "NaN", "Inf", "2e9"} {
		_, err := parseRate(in)
		assert.Error(t, err, in)
	}
}
