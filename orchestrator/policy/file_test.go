package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPolicy_Load_MissingFileIsDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tangle", "deployment-policy.json")
	p, exists, err := Load(path)
	require.NoError(t, err)
	assert.False(t, exists)
	assert.False(t, p.Serverless.Enable, "a missing file means serverless off")
	assert.Equal(t, TangleProvider{Type: AWSLambda, Region: "us-east-1"}, p.Serverless.Provider)
	assert.Equal(t, 512, p.Serverless.DefaultMemoryMB)
	assert.Equal(t, 300, p.Serverless.DefaultTimeoutSecs)
	assert.True(t, p.Serverless.FallbackToVM)
	assert.Nil(t, p.Ferry)
	assert.Equal(t, Default(), p)
	assert.NoError(t, p.Validate(), "the defaults are valid")
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, fs.ErrNotExist, "Load creates nothing")
}

func TestPolicy_Load_ReadError(t *testing.T) {
	dir := t.TempDir() // a directory opens but cannot be read
	_, exists, err := Load(dir)
	require.Error(t, err)
	assert.True(t, exists)
	assert.NotErrorIs(t, err, ErrSyntax, "an I/O error is not a malformed file")
	assert.NotErrorIs(t, err, ErrInvalid)
}

func TestPolicy_Load_TangleExample(t *testing.T) {
	path := filepath.Join("testdata", "tangle-example.json")
	p, exists, err := Load(path)
	require.NoError(t, err)
	assert.True(t, exists)
	assert.Equal(t, Serverless{
		Enable:             true,
		Provider:           TangleProvider{Type: AWSLambda, Region: "us-east-1"},
		DefaultMemoryMB:    1024,
		DefaultTimeoutSecs: 600,
		FallbackToVM:       true,
	}, p.Serverless)
	assert.Nil(t, p.Ferry)
	assert.Nil(t, p.other)
	assert.Equal(t, []Provider{{Type: AWSLambda, Region: "us-east-1"}}, p.Providers())

	// Written back, it is the Tangle CLI's file: nothing added.
	b, err := p.Encode()
	require.NoError(t, err)
	assert.Equal(t, asJSON(t, readTestdata(t, "tangle-example.json")), asJSON(t, b))
}

func TestPolicy_Parse_TangleFullFile(t *testing.T) {
	in := readTestdata(t, "tangle-full.json")
	p, err := Parse("tangle-full.json", in)
	require.NoError(t, err)
	assert.Equal(t, true, p.Serverless.Enable)
	assert.Equal(t, TangleProvider{Type: GCPFunctions, ProjectID: "tangle-prod-42"}, p.Serverless.Provider)
	assert.Equal(t, 2048, p.Serverless.DefaultMemoryMB)
	assert.Equal(t, 120, p.Serverless.DefaultTimeoutSecs)
	assert.False(t, p.Serverless.FallbackToVM)
	assert.Nil(t, p.Ferry)
	assert.ElementsMatch(t, []string{"providers", "cost_limits", "regions", "failover"}, keys(p.other))
	assert.ElementsMatch(t, []string{"max_concurrency", "tags"}, keys(p.Serverless.other))
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Ferry must never drop the Tangle CLI's fields: every other section, and
// every key it does not know inside "serverless", survives Encode and Save,
// also after Ferry changed its own settings.
func TestPolicy_Encode_KeepsTangleFields(t *testing.T) {
	in := readTestdata(t, "tangle-full.json")
	orig := asJSON(t, in)
	origServerless := orig["serverless"].(map[string]any)

	p, err := Parse("tangle-full.json", in)
	require.NoError(t, err)
	q, _, err := p.Apply(Update{
		Serverless: new(false),
		Provider:   new(CloudflareWorkers), Add: true, CFAccount: new(cfAccount),
		CostThresholdUSD: new(0.001),
	})
	require.NoError(t, err)

	tests := []struct {
		name    string
		encode  func(t *testing.T) []byte
		changed bool // Ferry's own settings were changed
	}{
		{"encode as read", func(t *testing.T) []byte {
			b, err := p.Encode()
			require.NoError(t, err)
			return b
		}, false},
		{"encode after apply", func(t *testing.T) []byte {
			b, err := q.Encode()
			require.NoError(t, err)
			return b
		}, true},
		{"save and read back", func(t *testing.T) []byte {
			path := filepath.Join(t.TempDir(), "deployment-policy.json")
			require.NoError(t, Save(path, q))
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			return b
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := asJSON(t, tt.encode(t))
			for _, section := range []string{"providers", "cost_limits", "regions", "failover"} {
				assert.Equal(t, orig[section], got[section], section)
			}
			s := got["serverless"].(map[string]any)
			assert.Equal(t, origServerless["max_concurrency"], s["max_concurrency"])
			assert.Equal(t, origServerless["tags"], s["tags"])
			if !tt.changed {
				assert.Equal(t, orig, got, "nothing changed, nothing differs")
				return
			}
			assert.Equal(t, false, s["enable"])
			assert.Equal(t, origServerless["provider"], s["provider"], "Workers cannot be serverless.provider")
			assert.Equal(t, without(origServerless, "enable"), without(s, "enable"))
			require.Contains(t, got, "ferry")
			ferry := got["ferry"].(map[string]any)
			assert.Equal(t, 0.001, ferry["cost_threshold_usd"])
			assert.Len(t, ferry["providers"], 2)
		})
	}
}

func TestPolicy_Encode_Format(t *testing.T) {
	b, err := Default().Encode()
	require.NoError(t, err)
	assert.Equal(t, lines(
		`{`,
		`  "serverless": {`,
		`    "default_memory_mb": 512,`,
		`    "default_timeout_secs": 300,`,
		`    "enable": false,`,
		`    "fallback_to_vm": true,`,
		`    "provider": {`,
		`      "type": "aws-lambda",`,
		`      "region": "us-east-1"`,
		`    }`,
		`  }`,
		`}`,
	), string(b))
}

// A file Save writes must be one Load reads: Encode must not turn a file
// under MaxFileSize into one over it (indenting a compact file can triple
// it).
func TestPolicy_Encode_StaysUnderMaxFileSize(t *testing.T) {
	compact := `{"x":[` + strings.Repeat("1,", 400_000) + `1],"serverless":{"enable":true}}`
	require.Less(t, len(compact), MaxFileSize)
	p, err := Parse("", []byte(compact))
	require.NoError(t, err)
	b, err := p.Encode()
	require.NoError(t, err)
	assert.LessOrEqual(t, len(b), MaxFileSize)
	q, err := Parse("", b)
	require.NoError(t, err, "what Encode writes, Parse reads")
	assert.True(t, q.Serverless.Enable)
	assert.Len(t, asJSON(t, b)["x"], 400_001, "the other section is all there")

	// When even the compact form is too large, Encode (and so Save) says so
	// rather than writing a file Load would refuse.
	big := `{"x":"` + strings.Repeat("<", MaxFileSize-20) + `"}`
	p, err = Parse("", []byte(big))
	require.NoError(t, err)
	_, err = p.Encode()
	require.Error(t, err)
	path := filepath.Join(t.TempDir(), "p.json")
	require.Error(t, Save(path, p))
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestPolicy_Parse_Defaults(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Serverless
	}{
		{
			name: "empty object",
			in:   `{}`,
			want: Default().Serverless,
		},
		{
			name: "null serverless",
			in:   `{"serverless": null}`,
			want: Default().Serverless,
		},
		{
			name: "empty serverless",
			in:   `{"serverless": {}}`,
			want: Default().Serverless,
		},
		{
			name: "only enable",
			in:   `{"serverless": {"enable": true}}`,
			want: Serverless{Enable: true, Provider: TangleProvider{Type: AWSLambda, Region: "us-east-1"},
				DefaultMemoryMB: 512, DefaultTimeoutSecs: 300, FallbackToVM: true},
		},
		{
			name: "aws-lambda without region gets us-east-1",
			in:   `{"serverless": {"provider": {"type": "aws-lambda"}, "default_memory_mb": 2048}}`,
			want: Serverless{Provider: TangleProvider{Type: AWSLambda, Region: "us-east-1"},
				DefaultMemoryMB: 2048, DefaultTimeoutSecs: 300, FallbackToVM: true},
		},
		{
			name: "aws-lambda with an empty region gets us-east-1",
			in:   `{"serverless": {"provider": {"type": "aws-lambda", "region": ""}}}`,
			want: Default().Serverless,
		},
		{
			name: "null fields keep their defaults",
			in:   `{"serverless": {"enable": null, "provider": null, "default_memory_mb": null, "default_timeout_secs": null, "fallback_to_vm": null}}`,
			want: Default().Serverless,
		},
		{
			name: "fallback off is kept, not defaulted",
			in:   `{"serverless": {"fallback_to_vm": false, "default_timeout_secs": 60}}`,
			want: Serverless{Provider: TangleProvider{Type: AWSLambda, Region: "us-east-1"},
				DefaultMemoryMB: 512, DefaultTimeoutSecs: 60, FallbackToVM: false},
		},
		{
			name: "custom provider keeps its endpoint and gets no region",
			in:   `{"serverless": {"provider": {"type": "custom", "endpoint": "https://faas.example.com"}}}`,
			want: Serverless{Provider: TangleProvider{Type: Custom, Endpoint: "https://faas.example.com"},
				DefaultMemoryMB: 512, DefaultTimeoutSecs: 300, FallbackToVM: true},
		},
		{
			name: "empty ferry section is no ferry section",
			in:   `{"serverless": {"enable": true}, "ferry": {"providers": []}}`,
			want: Serverless{Enable: true, Provider: TangleProvider{Type: AWSLambda, Region: "us-east-1"},
				DefaultMemoryMB: 512, DefaultTimeoutSecs: 300, FallbackToVM: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.in)
			assert.Equal(t, tt.want, p.Serverless)
			assert.Nil(t, p.Ferry)
		})
	}
}

// The Tangle CLI reads "serverless" with exact key names; "ENABLE" is a key
// it does not know. Ferry must read the file the same way (and keep the key).
func TestPolicy_Parse_ServerlessKeysAreCaseSensitive(t *testing.T) {
	p := mustParse(t, `{"serverless": {"ENABLE": true, "Default_Memory_MB": 4096, "fallback_to_vm": false}}`)
	assert.False(t, p.Serverless.Enable)
	assert.Equal(t, 512, p.Serverless.DefaultMemoryMB)
	assert.False(t, p.Serverless.FallbackToVM)
	assert.ElementsMatch(t, []string{"ENABLE", "Default_Memory_MB"}, keys(p.Serverless.other))

	b, err := p.Encode()
	require.NoError(t, err)
	s := asJSON(t, b)["serverless"].(map[string]any)
	assert.Equal(t, true, s["ENABLE"])
	assert.Equal(t, false, s["enable"])
	assert.Equal(t, 4096.0, s["Default_Memory_MB"])
	assert.Equal(t, 512.0, s["default_memory_mb"])
}

func TestPolicy_Parse_Errors(t *testing.T) {
	const noPos = -1 // position not checked
	type at struct {
		needle string // the reported position is where this starts
		nth    int
	}
	tests := []struct {
		name      string
		in        string
		sentinel  error
		field     string
		line, col int // hand-computed; 0,0: unknown; noPos: not checked
		at        *at // instead of line and col
		msg       string
	}{
		{
			name: "trailing comma",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "enable": true,`,
				`  }`,
				`}`),
			sentinel: ErrSyntax, line: 4, col: 3, msg: "looking for beginning of object key string",
		},
		{
			name: "missing comma",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "enable": true`,
				`    "fallback_to_vm": false`,
				`  }`,
				`}`),
			sentinel: ErrSyntax, line: 4, col: 5, msg: "after object key:value pair",
		},
		{
			name:     "truncated file",
			in:       lines(`{`, `  "serverless": {`),
			sentinel: ErrSyntax, line: noPos, msg: "unexpected end of JSON input",
		},
		{
			name:     "trailing garbage",
			in:       lines(`{}`, `x`),
			sentinel: ErrSyntax, line: 2, col: 1, msg: "invalid character 'x' after top-level value",
		},
		{
			name:     "empty file",
			in:       "",
			sentinel: ErrSyntax, line: 1, col: 1, msg: "empty file",
		},
		{
			name:     "blank file",
			in:       " \n\t\n",
			sentinel: ErrSyntax, line: 1, col: 1, msg: "empty file",
		},
		{
			name:     "null",
			in:       "null",
			sentinel: ErrInvalid, line: 1, col: 1, msg: "must be a JSON object",
		},
		{
			name:     "empty array",
			in:       "[]",
			sentinel: ErrInvalid, line: 1, col: 1, msg: "want an object, found a JSON array",
		},
		{
			name:     "array after blank lines",
			in:       "\n\n  []\n",
			sentinel: ErrInvalid, line: 3, col: 3, msg: "want an object, found a JSON array",
		},
		{
			name:     "string",
			in:       `"policy"`,
			sentinel: ErrInvalid, line: 1, col: 1, msg: "found a JSON string",
		},
		{
			name: "wrong type for enable",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "enable": "yes"`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.enable", line: 3, col: 15, msg: "want true or false, found a JSON string",
		},
		{
			name: "wrong type for memory",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "enable": true,`,
				`    "default_memory_mb": "1024"`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.default_memory_mb", line: 4, col: 26, msg: "found a JSON string",
		},
		{
			name: "wrong type for provider type",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "provider": {`,
				`      "type": 7`,
				`    }`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.provider.type", line: 4, col: 15, msg: "want a string",
		},
		{
			name: "serverless is not an object",
			in: lines(
				`{`,
				`  "serverless": true`,
				`}`),
			sentinel: ErrInvalid, field: "serverless", line: 2, col: 17, msg: "want an object",
		},
		{
			name: "memory too large for an int",
			in: lines(
				`{`,
				`  "serverless": {"default_memory_mb": 1e100}`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.default_memory_mb", at: &at{needle: "1e100"}, msg: "1e100",
		},
		{
			name: "negative default memory",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "enable": true,`,
				`    "default_memory_mb": -5`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.default_memory_mb", line: 4, col: 26, msg: "-5 MB is outside 128..32768",
		},
		{
			name: "timeout 0",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "default_timeout_secs": 0`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.default_timeout_secs", line: 3, col: 29, msg: "outside 1..3600",
		},
		{
			name: "timeout over an hour",
			in: lines(
				`{`,
				`  "serverless": {"default_timeout_secs": 3601}`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.default_timeout_secs", at: &at{needle: "3601"}, msg: "3601 s",
		},
		{
			name: "unknown provider type",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "provider": {`,
				`      "type": "aws-fargate"`,
				`    }`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.provider.type", line: 4, col: 15, msg: `unknown provider "aws-fargate"`,
		},
		{
			name: "cloudflare-workers as serverless.provider",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "provider": {`,
				`      "type": "cloudflare-workers"`,
				`    }`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.provider.type", line: 4, col: 15, msg: "list it in ferry.providers",
		},
		{
			name: "bad AWS region",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "provider": {"type": "aws-lambda", "region": "us-east"}`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.provider.region", at: &at{needle: `"us-east"`}, msg: "not an AWS region",
		},
		{
			name: "region on a GCP provider",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "provider": {"type": "gcp-functions", "project_id": "tangle-prod-42", "region": "us-east-1"}`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.provider.region", at: &at{needle: `"us-east-1"`}, msg: "only for aws-lambda",
		},
		{
			name: "bad GCP project",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "provider": {`,
				`      "type": "gcp-functions",`,
				`      "project_id": "My_Project"`,
				`    }`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.provider.project_id", line: 5, col: 21, msg: "not a GCP project ID",
		},
		{
			name: "GCP project missing",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "provider": {`,
				`      "type": "gcp-functions"`,
				`    }`,
				`  }`,
				`}`),
			// reported at the provider, where it is missing
			sentinel: ErrInvalid, field: "serverless.provider.project_id", line: 3, col: 17, msg: `"" is not a GCP project ID`,
		},
		{
			name: "bad Azure subscription GUID",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "provider": {`,
				`      "type": "azure-functions",`,
				`      "subscription_id": "12345678-90ab-cdef-1234-567890abcdeg"`,
				`    }`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.provider.subscription_id", line: 5, col: 26, msg: "not an Azure subscription ID",
		},
		{
			name: "custom serverless provider with a query in its endpoint",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "provider": {"type": "custom", "endpoint": "https://faas.example.com/?k=v"}`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.provider.endpoint", at: &at{needle: `"https:`}, msg: "no query",
		},
		{
			name: "custom provider without endpoint",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "us-east-1"},`,
				`      {"type": "custom", "name": "edge"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[1].endpoint", line: 5, col: 7, msg: "required for a custom provider",
		},
		{
			name: "custom endpoint not http",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "custom", "endpoint": "ftp://faas.example.com"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].endpoint", at: &at{needle: `"ftp:`}, msg: "want an http:// or https:// URL",
		},
		{
			name: "unknown key in a provider",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {`,
				`        "type": "aws-lambda",`,
				`        "region": "us-east-1",`,
				`        "bogus": 1`,
				`      }`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].bogus", line: 7, col: 18, msg: "unknown field",
		},
		{
			name: "unknown key in the second provider",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "us-east-1"},`,
				`      {"type": "aws-lambda", "region": "eu-west-1", "bogus": true}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[1].bogus", at: &at{needle: "true"}, msg: "unknown field",
		},
		{
			name: "unknown key directly under ferry",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "vm": {"vcpus": 2, "hourly_usd": 0.01, "utilisation": 0.5},`,
				`    "bogus": {}`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.bogus", line: 4, col: 14, msg: "unknown field",
		},
		{
			// "region" is a provider field, but not a field of the section.
			name: "unknown key under ferry that a provider also has",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "us-east-1"},`,
				`      {"type": "aws-lambda", "region": "eu-west-1"}`,
				`    ],`,
				`    "region": "eu-west-2"`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.region", line: 7, col: 15, msg: "unknown field",
		},
		{
			name: "unknown key in the vm",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "vm": {"vcpus": 2, "hourly_usd": 0.01, "utilisation": 0.5, "source": "x", "ram_gb": 1}`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.vm.ram_gb", at: &at{needle: "1}"}, msg: "unknown field",
		},
		{
			name: "type error in a provider",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "cloudflare-workers", "account_id": "`+cfAccount+`", "cpu_ms": "fifty"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].cpu_ms", at: &at{needle: `"fifty"`}, msg: "found a JSON string",
		},
		{
			// Both entries have cpu_ms; the second one is wrong.
			name: "type error in the second provider",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "cloudflare-workers", "account_id": "`+cfAccount+`", "cpu_ms": 50},`,
				`      {"type": "cloudflare-workers", "name": "b", "account_id": "`+cfAccount+`", "cpu_ms": "fifty"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[1].cpu_ms", at: &at{needle: `"fifty"`}, msg: "found a JSON string",
		},
		{
			name: "type error in a nested provider field",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "us-east-1", "limits": {"memory_mb": 1024}},`,
				`      {"type": "aws-lambda", "region": "eu-west-1", "limits": {"memory_mb": [1]}}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[1].limits.memory_mb", at: &at{needle: "[1]"}, msg: "found a JSON array",
		},
		{
			name: "providers is not an array",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": {"type": "aws-lambda"}`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers", line: 3, col: 18, msg: "want an array",
		},
		{
			name: "ferry is not an object",
			in: lines(
				`{`,
				`  "ferry": []`,
				`}`),
			sentinel: ErrInvalid, field: "ferry", line: 2, col: 12, msg: "want an object",
		},
		{
			name: "vm vcpus is a string",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "vm": {`,
				`      "vcpus": "2"`,
				`    }`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.vm.vcpus", line: 4, col: 16, msg: "found a JSON string",
		},
		{
			name: "duplicate provider IDs",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "us-east-1"},`,
				`      {"type": "aws-lambda", "region": "us-east-1", "arch": "x86_64"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[1]", line: 5, col: 7, msg: `"aws-lambda/us-east-1" is also ferry.providers[0]`,
		},
		{
			name: "duplicate names",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "custom", "name": "edge", "endpoint": "https://a.example.com"},`,
				`      {"type": "aws-lambda", "region": "us-east-1"},`,
				`      {"type": "custom", "name": "edge", "endpoint": "https://b.example.com"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[2]", line: 6, col: 7, msg: "ferry.providers[0]",
		},
		{
			name: "bad AWS region in ferry.providers",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "US-EAST-1"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].region", at: &at{needle: `"US-EAST-1"`}, msg: "not an AWS region",
		},
		{
			name: "bad Lambda arch",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "us-east-1", "arch": "amd64"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].arch", at: &at{needle: `"amd64"`}, msg: "want arm64 or x86_64",
		},
		{
			name: "bad Cloudflare account",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {`,
				`        "type": "cloudflare-workers",`,
				`        "account_id": "0123456789ABCDEF0123456789ABCDEF"`,
				`      }`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].account_id", line: 6, col: 23, msg: "not a Cloudflare account ID",
		},
		{
			name: "Workers free plan with cpu_ms",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {`,
				`        "type": "cloudflare-workers",`,
				`        "account_id": "`+cfAccount+`",`,
				`        "plan": "free",`,
				`        "cpu_ms": 50`,
				`      }`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].cpu_ms", line: 8, col: 19, msg: "fixed at 10 ms",
		},
		{
			name: "Workers cpu_ms over five minutes",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "cloudflare-workers", "account_id": "`+cfAccount+`", "cpu_ms": 300001}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].cpu_ms", at: &at{needle: "300001"}, msg: "outside 1..300000",
		},
		{
			name: "Workers plan unknown",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "cloudflare-workers", "account_id": "`+cfAccount+`", "plan": "pro"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].plan", at: &at{needle: `"pro"`}, msg: "want free or paid",
		},
		{
			name: "cpu_ms on a Lambda",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "us-east-1", "cpu_ms": 100}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].cpu_ms", at: &at{needle: "100}"}, msg: "only for cloudflare-workers",
		},
		{
			name: "bad provider name",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "custom", "name": "Edge Host", "endpoint": "https://faas.example.com"}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].name", at: &at{needle: `"Edge Host"`}, msg: "want lowercase letters",
		},
		{
			name: "invalid price in a provider",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "custom", "endpoint": "https://faas.example.com",`,
				`       "price": {"meter": "gb-hour", "per_request_usd": 0, "granularity_ms": 1}}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].price", at: &at{needle: `{"meter"`}, msg: "meter",
		},
		{
			name: "negative limit",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "us-east-1", "limits": {"payload_bytes": -1}}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].limits.payload_bytes", at: &at{needle: "-1}"}, msg: "outside 0..",
		},
		{
			name: "negative latency",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "providers": [`,
				`      {"type": "aws-lambda", "region": "us-east-1", "latency": {"cold_start_ms": -3}}`,
				`    ]`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.providers[0].latency.cold_start_ms", at: &at{needle: "-3"}, msg: "outside 0..1000000",
		},
		{
			name: "invalid vm",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "vm": {"hourly_usd": 0.01, "vcpus": 0, "utilisation": 0.5}`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.vm", line: 3, col: 11, msg: "vcpus",
		},
		{
			name: "bad state URL scheme",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "state": {`,
				`      "url": "http://127.0.0.1:6379"`,
				`    }`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.state.url", line: 4, col: 14, msg: "want redis://, rediss:// or dynamodb://",
		},
		{
			name: "dynamodb state URL without a table",
			in: lines(
				`{`,
				`  "ferry": {"state": {"url": "dynamodb://?region=eu-west-1"}}`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.state.url", at: &at{needle: `"dynamodb:`}, msg: "names no table",
		},
		{
			name: "dynamodb state URL with a bad endpoint",
			in: lines(
				`{`,
				`  "ferry": {"state": {"url": "dynamodb://jobs?endpoint=localhost:8000"}}`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.state.url", at: &at{needle: `"dynamodb:`}, msg: "endpoint",
		},
		{
			name: "negative cost threshold",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "cost_threshold_usd": -0.5`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.cost_threshold_usd", line: 3, col: 27, msg: "outside 0..1000",
		},
		{
			name: "cost threshold over 1000",
			in: lines(
				`{`,
				`  "ferry": {"cost_threshold_usd": 1000.5}`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.cost_threshold_usd", at: &at{needle: "1000.5"}, msg: "outside 0..1000",
		},
		{
			name: "zero latency threshold",
			in: lines(
				`{`,
				`  "ferry": {`,
				`    "latency_threshold_ms": 0`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.latency_threshold_ms", line: 3, col: 29, msg: "outside (0, 3.6e+06] ms",
		},
		{
			name: "latency threshold over an hour",
			in: lines(
				`{`,
				`  "ferry": {"latency_threshold_ms": 3600001}`,
				`}`),
			sentinel: ErrInvalid, field: "ferry.latency_threshold_ms", at: &at{needle: "3600001"}, msg: "outside (0,",
		},
		{
			// A key the serverless section does not know, spelled as "" (an
			// empty key) must not confuse the position of the next value.
			name: "empty key before a bad value",
			in: lines(
				`{`,
				`  "serverless": {`,
				`    "": "x",`,
				`    "enable": "yes"`,
				`  }`,
				`}`),
			sentinel: ErrInvalid, field: "serverless.enable", line: 4, col: 15, msg: "want true or false",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("/etc/ferry/policy.json", []byte(tt.in))
			require.Error(t, err)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, tt.sentinel)
			other := ErrSyntax
			if tt.sentinel == ErrSyntax {
				other = ErrInvalid
			}
			assert.NotErrorIs(t, err, other)

			e := errorFor(t, err, tt.field)
			assert.Equal(t, "/etc/ferry/policy.json", e.File)
			assert.Contains(t, e.Msg, tt.msg)
			line, col := tt.line, tt.col
			if tt.at != nil {
				line, col = posOf(t, tt.in, tt.at.needle, tt.at.nth)
			}
			if line != noPos {
				assert.Equal(t, [2]int{line, col}, [2]int{e.Line, e.Col}, "line and column")
			}
			// The message names the file, the place and the field.
			want := "/etc/ferry/policy.json"
			if e.Line > 0 {
				want += ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col)
			}
			want += ": "
			if tt.field != "" {
				want += tt.field + ": "
			}
			assert.True(t, strings.HasPrefix(e.Error(), want), "%q does not start with %q", e.Error(), want)
			assert.Contains(t, err.Error(), e.Error())

			// Load reports the same.
			path := filepath.Join(t.TempDir(), "p.json")
			require.NoError(t, os.WriteFile(path, []byte(tt.in), 0o600))
			_, exists, lerr := Load(path)
			assert.True(t, exists)
			require.Error(t, lerr)
			le := errorFor(t, lerr, tt.field)
			assert.Equal(t, path, le.File)
			assert.Equal(t, [2]int{e.Line, e.Col}, [2]int{le.Line, le.Col})
		})
	}
}

func TestPolicy_Parse_ReportsEveryProblem(t *testing.T) {
	in := lines(
		`{`,
		`  "serverless": {`,
		`    "default_memory_mb": 64,`,
		`    "default_timeout_secs": 0`,
		`  },`,
		`  "ferry": {`,
		`    "providers": [`,
		`      {"type": "gcp-functions", "project_id": "x"},`,
		`      {"type": "custom"}`,
		`    ],`,
		`    "cost_threshold_usd": -1`,
		`  }`,
		`}`)
	_, err := Parse("p.json", []byte(in))
	require.Error(t, err)
	errs := policyErrors(err)
	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
		assert.ErrorIs(t, e, ErrInvalid)
		assert.Positive(t, e.Line, e.Field)
	}
	assert.Equal(t, []string{
		"serverless.default_memory_mb",
		"serverless.default_timeout_secs",
		"ferry.providers[0].project_id",
		"ferry.providers[1].endpoint",
		"ferry.cost_threshold_usd",
	}, got)
	assert.Equal(t, 3, errorFor(t, err, "serverless.default_memory_mb").Line)
	assert.Equal(t, 8, errorFor(t, err, "ferry.providers[0].project_id").Line)
	assert.Equal(t, 9, errorFor(t, err, "ferry.providers[1].endpoint").Line)
}

func TestPolicy_Parse_TooLarge(t *testing.T) {
	big := []byte(`{"x":"` + strings.Repeat("a", MaxFileSize) + `"}`)
	_, err := Parse("big.json", big)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrSyntax)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "big.json", e.File)
	assert.Contains(t, e.Msg, "larger than 1048576 bytes")

	path := filepath.Join(t.TempDir(), "big.json")
	require.NoError(t, os.WriteFile(path, big, 0o600))
	p, exists, err := Load(path)
	assert.Nil(t, p)
	assert.True(t, exists)
	assert.ErrorIs(t, err, ErrSyntax)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, path, e.File)

	// MaxFileSize itself is fine.
	exact := []byte(`{"x":"` + strings.Repeat("a", MaxFileSize-9) + `"}` + "\n")
	require.Len(t, exact, MaxFileSize)
	_, err = Parse("exact.json", exact)
	assert.NoError(t, err)
}

func TestPolicy_Save(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "tangle")
	path := filepath.Join(dir, "deployment-policy.json")
	p := mustParse(t, string(readTestdata(t, "ferry-multi.json")))

	require.NoError(t, Save(path, p))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(dir)
	require.NoError(t, err)
	assert.True(t, di.IsDir())
	assert.Equal(t, fs.FileMode(0o700), di.Mode().Perm())

	q, exists, err := Load(path)
	require.NoError(t, err)
	assert.True(t, exists)
	assert.Equal(t, p.Serverless, q.Serverless, "Save then Load gives the same policy")
	assert.Equal(t, p.Ferry, q.Ferry)
	assert.Equal(t, p.Providers(), q.Providers())

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := p.Encode()
	require.NoError(t, err)
	assert.Equal(t, string(want), string(b), "the file is Encode's output")
	again, err := q.Encode()
	require.NoError(t, err)
	assert.Equal(t, string(want), string(again), "and encodes the same after reading")

	// Overwriting keeps 0600 even when the old file was more open.
	require.NoError(t, os.Chmod(path, 0o644))
	require.NoError(t, Save(path, Default()))
	fi, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	q, _, err = Load(path)
	require.NoError(t, err)
	assert.Equal(t, Default(), q)
	assertNoTemporaryFiles(t, dir, "deployment-policy.json")
}

func TestPolicy_Save_InvalidLeavesOldFile(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Policy)
		field  string
	}{
		{"memory too small", func(p *Policy) { p.Serverless.DefaultMemoryMB = 5 }, "serverless.default_memory_mb"},
		{"workers as serverless.provider", func(p *Policy) { p.Serverless.Provider = TangleProvider{Type: CloudflareWorkers} }, "serverless.provider.type"},
		{"duplicate providers", func(p *Policy) {
			p.SetProviders([]Provider{{Type: AWSLambda, Region: "eu-west-1"}, {Type: AWSLambda, Region: "eu-west-1"}})
		}, "ferry.providers[1]"},
		{"bad state URL", func(p *Policy) { p.ext().State = &StateStore{URL: "memcached://x"} }, "ferry.state.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "deployment-policy.json")
			old := readTestdata(t, "tangle-full.json")
			require.NoError(t, os.WriteFile(path, old, 0o644))

			p := Default()
			tt.mutate(p)
			err := Save(path, p)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			e := errorFor(t, err, tt.field)
			assert.Equal(t, path, e.File)

			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(old, b), "the old file is left byte for byte")
			fi, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, fs.FileMode(0o644), fi.Mode().Perm(), "not even its mode changes")
			assertNoTemporaryFiles(t, dir, "deployment-policy.json")
		})
	}
}

func TestWriteAtomic_RenameFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deployment-policy.json")
	old := []byte(`{"serverless": {"enable": true}}` + "\n")
	require.NoError(t, os.WriteFile(path, old, 0o600))

	boom := errors.New("rename: disk on fire")
	var renamedFrom string
	err := writeAtomic(path, []byte(`{"new": true}`), func(from, to string) error {
		renamedFrom = from
		assert.Equal(t, path, to)
		// The temporary file is complete, private and next to the target
		// when it is renamed.
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		assert.Equal(t, `{"new": true}`, string(b))
		fi, err := os.Stat(from)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
		assert.Equal(t, dir, filepath.Dir(from))
		return boom
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), path)
	require.NotEmpty(t, renamedFrom, "rename was called")

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, old, b, "the old file is intact")
	_, err = os.Stat(renamedFrom)
	assert.ErrorIs(t, err, fs.ErrNotExist, "the temporary file is removed")
	assertNoTemporaryFiles(t, dir, "deployment-policy.json")
}

func TestWriteAtomic_DirectoryCannotBeCreated(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "tangle")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600)) // a file where the directory should be
	err := writeAtomic(filepath.Join(blocker, "deployment-policy.json"), []byte("{}"), func(string, string) error {
		t.Fatal("rename must not be reached")
		return nil
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "write policy")
}

func assertNoTemporaryFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, want, names, "only the policy file is in the directory")
}

func TestPolicy_Path(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name string
		xdg  string
		want string
	}{
		{"absolute XDG_CONFIG_HOME", "/srv/cfg", "/srv/cfg/tangle/deployment-policy.json"},
		{"absolute XDG_CONFIG_HOME with trailing slash", "/srv/cfg/", "/srv/cfg/tangle/deployment-policy.json"},
		{"relative XDG_CONFIG_HOME is ignored", "cfg", filepath.Join(home, ".config", "tangle", "deployment-policy.json")},
		{"dot-relative XDG_CONFIG_HOME is ignored", "./cfg", filepath.Join(home, ".config", "tangle", "deployment-policy.json")},
		{"empty XDG_CONFIG_HOME", "", filepath.Join(home, ".config", "tangle", "deployment-policy.json")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("XDG_CONFIG_HOME", tt.xdg)
			got, err := Path()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPolicy_Path_NoHome(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	_, err := Path()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "policy path")
}

func TestPolicy_Clone_IsDeep(t *testing.T) {
	p := mustParse(t, string(readTestdata(t, "ferry-multi.json")))
	before, err := p.Encode()
	require.NoError(t, err)

	c := p.Clone()
	assert.Equal(t, p.Serverless, c.Serverless)
	assert.Equal(t, p.Ferry, c.Ferry)
	cb, err := c.Encode()
	require.NoError(t, err)
	assert.Equal(t, string(before), string(cb))
	assert.NotSame(t, p.Ferry, c.Ferry)
	c.Serverless.Enable = false
	c.Ferry.Providers[0].Region = "eu-central-1"
	*c.Ferry.CostThresholdUSD = 5
	c.Ferry.VM.VCPUs = 64
	c.Ferry.Providers[6].Price.PerGBSecondUSD = 1
	c.other["providers"] = json.RawMessage(`{}`)

	after, err := p.Encode()
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "changing the clone leaves the original")
}

// A list longer than the limit is one error, found quickly, not one error
// per entry (a 20,000-entry single-line file took seconds to check).
func TestPolicy_Parse_TooManyProviders(t *testing.T) {
	entry := `{"type":"aws-lambda","region":"nowhere"},`
	in := `{"ferry":{"providers":[` + strings.Repeat(entry, 20_000) + `{"type":"aws-lambda"}]}}`
	require.Less(t, len(in), MaxFileSize)
	_, err := Parse("p.json", []byte(in))
	require.Error(t, err)
	e := errorFor(t, err, "ferry.providers")
	assert.Contains(t, e.Msg, "20001 providers; at most 64")
	// the count, and for each of the first 64 entries its region and its
	// duplicate ID; not 40,000 errors
	assert.Len(t, policyErrors(err), 1+64+63, "entries past the limit are not checked one by one")

	// 64 is allowed.
	var list []string
	for i := range 64 {
		list = append(list, `{"type":"custom","name":"h`+strconv.Itoa(i)+`","endpoint":"https://h.example.com"}`)
	}
	_, err = Parse("p.json", []byte(`{"ferry":{"providers":[`+strings.Join(list, ",")+`]}}`))
	assert.NoError(t, err)
}
