package blueprint_test

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/blueprint"
)

const canonicalPath = "testdata/blueprint.toml"

func canonical(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(canonicalPath)
	require.NoError(t, err)
	return data
}

// withJob is a minimal valid document (one job "j" with source "src") plus
// extra lines in the job's table.
func withJob(extra string) string {
	return "[blueprint]\nname = \"bp\"\n\n[blueprint.jobs.j]\nsource = \"src\"\n" + extra
}

// withServerless is a minimal valid document plus extra lines in
// [blueprint.serverless].
func withServerless(extra string) string {
	return "[blueprint]\nname = \"bp\"\n\n[blueprint.jobs.j]\nsource = \"src\"\n\n[blueprint.serverless]\n" + extra
}

func ptr[T any](v T) *T { return &v }

func TestParse_Canonical(t *testing.T) {
	b, err := blueprint.Parse("blueprint.toml", canonical(t))
	require.NoError(t, err)

	assert.Equal(t, "incredible-squaring", b.Name)
	assert.Empty(t, b.Dir, "Parse does not know the folder")
	assert.Equal(t, blueprint.Serverless{
		Providers:        []blueprint.Provider{blueprint.ProviderAWSLambda, blueprint.ProviderCloudflareWorkers},
		CostThreshold:    ptr(0.10),
		LatencyThreshold: ptr(100),
		Regions:          []string{"us-east-1", "eu-west-1"},
	}, b.Serverless)
	assert.Equal(t, map[string]blueprint.Job{
		"heavy_computation": {
			Name:            "heavy_computation",
			Source:          "jobs/heavy",
			Language:        blueprint.LanguageGo,
			Shape:           blueprint.ShapeReactor,
			Samples:         []string{"samples/a.bin"},
			InlineSamples:   []string{"12345"},
			ForceServerless: true,
			Memory:          ptr(3008),
			Timeout:         ptr(300),
			AllowHosts:      []string{"api.example.com"},
		},
	}, b.Jobs)
	assert.NoError(t, b.Validate())
}

func TestParse_Valid(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, b *blueprint.Blueprint)
	}{
		{
			name: "minimal",
			doc:  withJob(""),
			check: func(t *testing.T, b *blueprint.Blueprint) {
				j := b.Jobs["j"]
				assert.Equal(t, blueprint.Job{Name: "j", Source: "src"}, j)
				assert.Nil(t, j.Memory, "absent memory stays unset")
				assert.Nil(t, b.Serverless.CostThreshold)
				assert.Nil(t, b.Serverless.LatencyThreshold)
			},
		},
		{
			name: "lower bounds",
			doc:  withJob("memory = 1\ntimeout = 1\n") + "[blueprint.serverless]\ncost_threshold = 0\nlatency_threshold = 1\n",
			check: func(t *testing.T, b *blueprint.Blueprint) {
				assert.Equal(t, 1, *b.Jobs["j"].Memory)
				assert.Equal(t, 1, *b.Jobs["j"].Timeout)
				assert.Equal(t, 0.0, *b.Serverless.CostThreshold, "an integer is a valid cost")
				assert.Equal(t, 1, *b.Serverless.LatencyThreshold)
			},
		},
		{
			name: "upper bounds",
			doc:  withJob("memory = 10240\ntimeout = 900\n"),
			check: func(t *testing.T, b *blueprint.Blueprint) {
				assert.Equal(t, 10240, *b.Jobs["j"].Memory)
				assert.Equal(t, 900, *b.Jobs["j"].Timeout)
			},
		},
		{
			name: "every provider",
			doc:  withServerless(`providers = ["aws_lambda", "gcp_functions", "azure_functions", "cloudflare_workers", "custom"]` + "\n"),
			check: func(t *testing.T, b *blueprint.Blueprint) {
				assert.Equal(t, blueprint.Providers, b.Serverless.Providers)
			},
		},
		{
			name: "every language and shape",
			doc: "[blueprint]\nname = \"bp\"\n" +
				"[blueprint.jobs.a]\nsource = \"a\"\nlanguage = \"go\"\nshape = \"command\"\n" +
				"[blueprint.jobs.b]\nsource = \"b\"\nlanguage = \"rust\"\nshape = \"reactor\"\n" +
				"[blueprint.jobs.c]\nsource = \"c\"\nlanguage = \"c\"\n" +
				"[blueprint.jobs.d]\nsource = \"d\"\nlanguage = \"wat\"\n" +
				"[blueprint.jobs.e]\nsource = \"e\"\nlanguage = \"wasm\"\n",
			check: func(t *testing.T, b *blueprint.Blueprint) {
				var got []blueprint.Language
				for _, j := range b.SortedJobs() {
					got = append(got, j.Language)
				}
				assert.Equal(t, blueprint.Languages, got)
				assert.Equal(t, blueprint.ShapeCommand, b.Jobs["a"].Shape)
			},
		},
		{
			name: "longest names",
			doc:  "[blueprint]\nname = \"a" + long("-", 62) + "\"\n[blueprint.jobs." + long("_", 64) + "]\nsource = \"x\"\n",
			check: func(t *testing.T, b *blueprint.Blueprint) {
				assert.Len(t, b.Name, 63)
				assert.Equal(t, []string{long("_", 64)}, b.JobNames())
			},
		},
		{
			name: "paths that stay inside",
			doc: withJob(`samples = ["s", "./s/t.bin", "a/../b", "dir/"]`+"\n") +
				"[blueprint.jobs.dot]\nsource = \".\"\n" +
				"[blueprint.jobs.clean]\nsource = \"./jobs/../jobs/x.wat\"\n",
			check: func(t *testing.T, b *blueprint.Blueprint) {
				assert.Equal(t, ".", b.Jobs["dot"].Source)
				assert.Len(t, b.Jobs["j"].Samples, 4)
			},
		},
		{
			name: "allow_hosts forms",
			doc:  withJob(`allow_hosts = ["example.com", "API.Example.com", "example.com:8443", "*.example.com", "*.example.com:443", "127.0.0.1", "[::1]:8080", "::1"]` + "\n"),
			check: func(t *testing.T, b *blueprint.Blueprint) {
				assert.Len(t, b.Jobs["j"].AllowHosts, 8)
			},
		},
		{
			name: "inline and dotted tables",
			doc:  "blueprint.name = \"bp\"\nblueprint.serverless = { regions = [\"eastus\"] }\nblueprint.jobs = { one = { source = \"x\", inline_samples = [\"\", \"a\"] } }\n",
			check: func(t *testing.T, b *blueprint.Blueprint) {
				assert.Equal(t, []string{"eastus"}, b.Serverless.Regions)
				assert.Equal(t, []string{"", "a"}, b.Jobs["one"].InlineSamples, "an empty inline sample is an empty input")
				assert.Equal(t, "one", b.Jobs["one"].Name)
			},
		},
		{
			name: "empty serverless lists",
			doc:  withServerless("providers = []\nregions = []\n"),
			check: func(t *testing.T, b *blueprint.Blueprint) {
				assert.Empty(t, b.Serverless.Providers)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := blueprint.Parse("bp.toml", []byte(tc.doc))
			require.NoError(t, err)
			require.NoError(t, b.Validate())
			for name, j := range b.Jobs {
				assert.Equal(t, name, j.Name)
			}
			tc.check(t, b)
		})
	}
}

// TestParse_Invalid has one case per rule. Each document breaks exactly one
// rule, so the error is exactly one line.
func TestParse_Invalid(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		want     string
		sentinel error
	}{
		// blueprint.name
		{name: "name missing", doc: "[blueprint.jobs.j]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.name: required`},
		{name: "name empty", doc: "[blueprint]\nname = \"\"\n[blueprint.jobs.j]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.name: required`},
		{name: "name uppercase", doc: "[blueprint]\nname = \"Squaring\"\n[blueprint.jobs.j]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.name = "Squaring": must match [a-z0-9][a-z0-9-]{0,62} (lowercase letters, digits and '-', at most 63, not starting with '-')`},
		{name: "name leading dash", doc: "[blueprint]\nname = \"-x\"\n[blueprint.jobs.j]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.name = "-x": must match`},
		{name: "name underscore", doc: "[blueprint]\nname = \"a_b\"\n[blueprint.jobs.j]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.name = "a_b": must match`},
		{name: "name too long", doc: "[blueprint]\nname = \"" + strings.Repeat("a", 64) + "\"\n[blueprint.jobs.j]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.name = "` + strings.Repeat("a", 64) + `": must match`},

		// blueprint.serverless
		{name: "provider unknown", doc: withServerless(`providers = ["aws_lambda", "lambda"]` + "\n"),
			want: `bp.toml: blueprint.serverless.providers[1] = "lambda": unknown provider; want one of "aws_lambda", "gcp_functions", "azure_functions", "cloudflare_workers", "custom"`},
		{name: "provider twice", doc: withServerless(`providers = ["custom", "custom"]` + "\n"),
			want: `bp.toml: blueprint.serverless.providers[1] = "custom": listed twice`},
		{name: "cost negative", doc: withServerless("cost_threshold = -0.5\n"),
			want: `bp.toml: blueprint.serverless.cost_threshold = -0.5: must be >= 0 (dollars per execution)`},
		{name: "cost nan", doc: withServerless("cost_threshold = nan\n"),
			want: `bp.toml: blueprint.serverless.cost_threshold = nan: must be a finite number of dollars >= 0`},
		{name: "cost inf", doc: withServerless("cost_threshold = inf\n"),
			want: `bp.toml: blueprint.serverless.cost_threshold = inf: must be a finite number of dollars >= 0`},
		{name: "latency zero", doc: withServerless("latency_threshold = 0\n"),
			want: `bp.toml: blueprint.serverless.latency_threshold = 0: must be > 0 ms`},
		{name: "latency negative", doc: withServerless("latency_threshold = -100\n"),
			want: `bp.toml: blueprint.serverless.latency_threshold = -100: must be > 0 ms`},
		{name: "region bad", doc: withServerless(`regions = ["us-east-1", "US East"]` + "\n"),
			want: `bp.toml: blueprint.serverless.regions[1] = "US East": must match [a-z0-9][a-z0-9-]{0,62} (a provider's region name, such as us-east-1)`},
		{name: "region empty", doc: withServerless(`regions = [""]` + "\n"),
			want: `bp.toml: blueprint.serverless.regions[0] = "": must match`},
		{name: "region twice", doc: withServerless(`regions = ["eu-west-1", "eu-west-1"]` + "\n"),
			want: `bp.toml: blueprint.serverless.regions[1] = "eu-west-1": listed twice`},

		// blueprint.jobs
		{name: "no jobs", doc: "[blueprint]\nname = \"bp\"\n",
			want: `bp.toml: blueprint.jobs: at least one job required ([blueprint.jobs.NAME] with a source)`},
		{name: "empty jobs table", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs]\n",
			want: `bp.toml: blueprint.jobs: at least one job required`},
		{name: "job name uppercase", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.Heavy]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.jobs.Heavy: job name must match [a-z0-9_-]{1,64} (lowercase letters, digits, '_' and '-')`},
		{name: "job name with a dot", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.\"a.b\"]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.jobs."a.b": job name must match`},
		{name: "job name empty", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.\"\"]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.jobs."": job name must match`},
		{name: "job name too long", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs." + strings.Repeat("a", 65) + "]\nsource = \"s\"\n",
			want: `bp.toml: blueprint.jobs.` + strings.Repeat("a", 65) + `: job name must match`},

		// source
		{name: "source missing", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nmemory = 128\n",
			want: `bp.toml: blueprint.jobs.j.source: required (a file or folder relative to the blueprint folder)`},
		{name: "source empty", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"\"\n",
			want: `bp.toml: blueprint.jobs.j.source: required`},
		{name: "source absolute", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"/srv/job\"\n",
			want: `bp.toml: blueprint.jobs.j.source = "/srv/job": must be relative to the blueprint folder, not absolute`},
		{name: "source drive letter", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"C:/job\"\n",
			want: `bp.toml: blueprint.jobs.j.source = "C:/job": must be relative to the blueprint folder, not absolute`},
		{name: "source escapes", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"../job\"\n",
			want: `bp.toml: blueprint.jobs.j.source = "../job": must stay inside the blueprint folder (no escaping '..')`},
		{name: "source escapes after a folder", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"jobs/../../job\"\n",
			want: `bp.toml: blueprint.jobs.j.source = "jobs/../../job": must stay inside the blueprint folder`},
		{name: "source is dot-dot", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"..\"\n",
			want: `bp.toml: blueprint.jobs.j.source = "..": must stay inside the blueprint folder`},
		{name: "source backslash", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = 'jobs\\heavy'\n",
			want: `bp.toml: blueprint.jobs.j.source = "jobs\\heavy": must use '/' as the separator, not '\'`},
		{name: "source NUL", doc: "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"a\\u0000b\"\n",
			want: `bp.toml: blueprint.jobs.j.source = "a\x00b": must not contain a NUL byte`},

		// language, shape
		{name: "language unknown", doc: withJob("language = \"java\"\n"),
			want: `bp.toml: blueprint.jobs.j.language = "java": unknown language; want one of "go", "rust", "c", "wat", "wasm"`},
		{name: "language wrong case", doc: withJob("language = \"Go\"\n"),
			want: `bp.toml: blueprint.jobs.j.language = "Go": unknown language`},
		{name: "shape unknown", doc: withJob("shape = \"library\"\n"),
			want: `bp.toml: blueprint.jobs.j.shape = "library": unknown shape; want one of "reactor", "command"`},

		// samples
		{name: "sample absolute", doc: withJob(`samples = ["ok.bin", "/etc/passwd"]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.samples[1] = "/etc/passwd": must be relative to the blueprint folder, not absolute`},
		{name: "sample escapes", doc: withJob(`samples = ["../secret"]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.samples[0] = "../secret": must stay inside the blueprint folder (no escaping '..')`},
		{name: "sample empty", doc: withJob(`samples = [""]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.samples[0] = "": must not be empty`},

		// memory, timeout
		{name: "memory too big", doc: withJob("memory = 20000\n"),
			want: `bp.toml: blueprint.jobs.j.memory = 20000: must be 1..10240 MB`},
		{name: "memory just too big", doc: withJob("memory = 10241\n"),
			want: `bp.toml: blueprint.jobs.j.memory = 10241: must be 1..10240 MB`},
		{name: "memory zero", doc: withJob("memory = 0\n"),
			want: `bp.toml: blueprint.jobs.j.memory = 0: must be 1..10240 MB`},
		{name: "memory negative", doc: withJob("memory = -1\n"),
			want: `bp.toml: blueprint.jobs.j.memory = -1: must be 1..10240 MB`},
		{name: "timeout zero", doc: withJob("timeout = 0\n"),
			want: `bp.toml: blueprint.jobs.j.timeout = 0: must be 1..900 s`},
		{name: "timeout too long", doc: withJob("timeout = 901\n"),
			want: `bp.toml: blueprint.jobs.j.timeout = 901: must be 1..900 s`},

		// allow_hosts
		{name: "host empty", doc: withJob(`allow_hosts = [""]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.allow_hosts[0] = "": want host, host:port or *.domain`},
		{name: "host is a URL", doc: withJob(`allow_hosts = ["https://api.example.com/"]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.allow_hosts[0] = "https://api.example.com/": want host, host:port or *.domain`},
		{name: "host bare wildcard", doc: withJob(`allow_hosts = ["*"]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.allow_hosts[0] = "*": a wildcard may only open the name (*.example.com)`},
		{name: "host empty wildcard", doc: withJob(`allow_hosts = ["*."]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.allow_hosts[0] = "*.": bad wildcard; want host, host:port or *.domain`},
		{name: "host inner wildcard", doc: withJob(`allow_hosts = ["api.*.com"]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.allow_hosts[0] = "api.*.com": a wildcard may only open the name (*.example.com)`},
		{name: "host port zero", doc: withJob(`allow_hosts = ["example.com:0"]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.allow_hosts[0] = "example.com:0": port must be 1..65535; want host, host:port or *.domain`},
		{name: "host port not a number", doc: withJob(`allow_hosts = ["example.com:http"]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.allow_hosts[0] = "example.com:http": port must be 1..65535`},
		{name: "host with space", doc: withJob(`allow_hosts = ["example .com"]` + "\n"),
			want: `bp.toml: blueprint.jobs.j.allow_hosts[0] = "example .com": want host, host:port or *.domain`},

		// the file itself
		{name: "unknown top-level table", doc: withJob("") + "[build]\nflags = 1\n",
			want: `bp.toml:6:2: unknown key "build"`, sentinel: blueprint.ErrUnknownKey},
		{name: "unknown blueprint key", doc: "[blueprint]\nname = \"bp\"\nversion = 2\n[blueprint.jobs.j]\nsource = \"s\"\n",
			want: `bp.toml:3:1: unknown key "blueprint.version"`, sentinel: blueprint.ErrUnknownKey},
		{name: "unknown serverless key", doc: withServerless("cost_treshold = 1.0\n"),
			want: `bp.toml:8:1: unknown key "blueprint.serverless.cost_treshold" (did you mean "cost_threshold"?)`, sentinel: blueprint.ErrUnknownKey},
		{name: "jobs not a table", doc: "[blueprint]\nname = \"bp\"\njobs = [\"a\"]\n",
			want: `bp.toml:3:8: wrong type for "blueprint.jobs": got array, want table`, sentinel: blueprint.ErrWrongType},
		{name: "job not a table", doc: "[blueprint]\nname = \"bp\"\njobs.j = \"src\"\n",
			want: `bp.toml:3:10: wrong type for "blueprint.jobs.j": got string, want table`, sentinel: blueprint.ErrWrongType},
		{name: "samples not an array", doc: withJob("samples = \"a.bin\"\n"),
			want: `bp.toml:6:11: wrong type for "blueprint.jobs.j.samples": got string, want array of strings`, sentinel: blueprint.ErrWrongType},
		{name: "array element wrong type", doc: withJob("inline_samples = [\"a\", 2]\n"),
			want: `bp.toml:6:24: wrong type for "blueprint.jobs.j.inline_samples": got integer in the array, want array of strings`, sentinel: blueprint.ErrWrongType},
		{name: "bool as string", doc: withJob("force_serverless = \"yes\"\n"),
			want: `bp.toml:6:20: wrong type for "blueprint.jobs.j.force_serverless": got string, want boolean`, sentinel: blueprint.ErrWrongType},
		{name: "float memory", doc: withJob("memory = 128.5\n"),
			want: `bp.toml:6:10: wrong type for "blueprint.jobs.j.memory": got float, want integer`, sentinel: blueprint.ErrWrongType},
		{name: "cost as string", doc: withServerless("cost_threshold = \"0.1\"\n"),
			want: `bp.toml:8:18: wrong type for "blueprint.serverless.cost_threshold": got string, want number`, sentinel: blueprint.ErrWrongType},
		{name: "array of tables", doc: "[[blueprint]]\nname = \"bp\"\n",
			want: `bp.toml:1:3: wrong type for "blueprint": cannot store an array table in a struct`, sentinel: blueprint.ErrWrongType},
		{name: "duplicate key", doc: "[blueprint]\nname = \"bp\"\nname = \"bp\"\n",
			want: `bp.toml:3:1: TOML syntax error: key name is already defined`, sentinel: blueprint.ErrSyntax},
		{name: "integer overflow", doc: withJob("memory = 99999999999999999999\n"),
			want: `bp.toml:6:10: TOML syntax error: decimal number is too large to fit in a 64-bit signed integer`, sentinel: blueprint.ErrSyntax},
		{name: "not TOML", doc: "{\"blueprint\": {}}\n",
			want: `bp.toml:1:1: TOML syntax error:`, sentinel: blueprint.ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := blueprint.Parse("bp.toml", []byte(tc.doc))
			require.Error(t, err)
			assert.Nil(t, b)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, tc.want), "error:\n%s\nwant prefix:\n%s", msg, tc.want)
			assert.NotContains(t, msg, "\n", "one rule broken, one problem")
			sentinel := tc.sentinel
			if sentinel == nil {
				sentinel = blueprint.ErrInvalid
			}
			assert.ErrorIs(t, err, sentinel)
		})
	}
}

func TestParse_AllProblemsReported(t *testing.T) {
	doc := `[blueprint]
name = "Bad Name"

[blueprint.serverless]
providers = ["heroku"]
latency_threshold = 0

[blueprint.jobs.b]
source = "../b"
memory = 20000

[blueprint.jobs.a]
timeout = 1000
`
	_, err := blueprint.Parse("bp.toml", []byte(doc))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`bp.toml: blueprint.name = "Bad Name": must match`,
		`bp.toml: blueprint.serverless.providers[0] = "heroku": unknown provider`,
		`bp.toml: blueprint.serverless.latency_threshold = 0: must be > 0 ms`,
		`bp.toml: blueprint.jobs.a.source: required`,
		`bp.toml: blueprint.jobs.a.timeout = 1000: must be 1..900 s`,
		`bp.toml: blueprint.jobs.b.source = "../b": must stay inside`,
		`bp.toml: blueprint.jobs.b.memory = 20000: must be 1..10240 MB`,
	}
	require.Len(t, lines, len(want), err.Error())
	for i := range want {
		assert.True(t, strings.HasPrefix(lines[i], want[i]), "line %d: %s\nwant prefix: %s", i, lines[i], want[i])
	}

	var fe *blueprint.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "blueprint.name", fe.Path, "the first problem is the first field")
}

func TestParse_AllUnknownKeysReported(t *testing.T) {
	doc := withJob("memroy = 1\nlanguag = \"go\"\n") + "[extra]\n"
	_, err := blueprint.Parse("bp.toml", []byte(doc))
	require.Error(t, err)
	assert.Equal(t,
		`bp.toml:6:1: unknown key "blueprint.jobs.j.memroy" (did you mean "memory"?)`+"\n"+
			`bp.toml:7:1: unknown key "blueprint.jobs.j.languag" (did you mean "language"?)`+"\n"+
			`bp.toml:8:2: unknown key "extra"`,
		err.Error())
}

func TestParse_TooLarge(t *testing.T) {
	doc := []byte(withJob(""))
	doc = append(doc, '#')
	doc = append(doc, strings.Repeat("x", blueprint.MaxFileSize)...)
	_, err := blueprint.Parse("bp.toml", doc)
	require.ErrorIs(t, err, blueprint.ErrTooLarge)
}

func TestValidate_Constructed(t *testing.T) {
	tests := []struct {
		name string
		b    *blueprint.Blueprint
		want string
	}{
		{name: "nil", b: nil, want: "blueprint: missing"},
		{name: "zero", b: &blueprint.Blueprint{},
			want: "blueprint.name: required\nblueprint.jobs: at least one job required ([blueprint.jobs.NAME] with a source)"},
		{name: "valid", b: &blueprint.Blueprint{Name: "x", Jobs: map[string]blueprint.Job{"j": {Source: "s"}}}},
		{name: "cost nan", b: &blueprint.Blueprint{Name: "x", Jobs: map[string]blueprint.Job{"j": {Source: "s"}},
			Serverless: blueprint.Serverless{CostThreshold: ptr(math.NaN())}},
			want: "blueprint.serverless.cost_threshold = nan: must be a finite number of dollars >= 0"},
		{name: "typed values quoted", b: &blueprint.Blueprint{Name: "x", Jobs: map[string]blueprint.Job{"j": {Source: "s", Language: "cobol"}}},
			want: `blueprint.jobs.j.language = "cobol": unknown language; want one of "go", "rust", "c", "wat", "wasm"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.b.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			assert.ErrorIs(t, err, blueprint.ErrInvalid)
		})
	}
}

func TestJobNames_Sorted(t *testing.T) {
	doc := "[blueprint]\nname = \"bp\"\n" +
		"[blueprint.jobs.zeta]\nsource = \"z\"\n" +
		"[blueprint.jobs.alpha]\nsource = \"a\"\n" +
		"[blueprint.jobs.mid-1]\nsource = \"m\"\n" +
		"[blueprint.jobs.mid_0]\nsource = \"m\"\n"
	b, err := blueprint.Parse("bp.toml", []byte(doc))
	require.NoError(t, err)
	for range 20 { // map order must not leak
		assert.Equal(t, []string{"alpha", "mid-1", "mid_0", "zeta"}, b.JobNames())
	}
	jobs := b.SortedJobs()
	require.Len(t, jobs, 4)
	for i, name := range b.JobNames() {
		assert.Equal(t, name, jobs[i].Name)
	}
}

func TestJob_ResolvedShape(t *testing.T) {
	tests := []struct {
		name string
		job  blueprint.Job
		want blueprint.Shape
	}{
		{name: "go default", job: blueprint.Job{Language: blueprint.LanguageGo}, want: blueprint.ShapeReactor},
		{name: "go command", job: blueprint.Job{Language: blueprint.LanguageGo, Shape: blueprint.ShapeCommand}, want: blueprint.ShapeCommand},
		{name: "rust decided by source", job: blueprint.Job{Language: blueprint.LanguageRust}, want: ""},
		{name: "wasm set", job: blueprint.Job{Language: blueprint.LanguageWasm, Shape: blueprint.ShapeReactor}, want: blueprint.ShapeReactor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.job.ResolvedShape())
		})
	}
}

func TestErrors_OneSentinelEach(t *testing.T) {
	sentinels := []error{
		blueprint.ErrTooLarge, blueprint.ErrSyntax, blueprint.ErrUnknownKey, blueprint.ErrWrongType,
		blueprint.ErrInvalid, blueprint.ErrSourceNotFound, blueprint.ErrSampleNotFound, blueprint.ErrUnknownLanguage,
	}
	_, err := blueprint.Parse("bp.toml", []byte(withJob("memory = 0\n")))
	require.Error(t, err)
	var n int
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	assert.Equal(t, 1, n)
}
