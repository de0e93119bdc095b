package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	examples "github.com/ferryrun/ferry/wasm-examples"
)

type result struct {
	code           int
	stdout, stderr string
}

func ferry(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := doMain(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// module writes an example to a temp file and returns its path.
func module(t *testing.T, name string) string {
	t.Helper()
	var b []byte
	var err error
	if strings.HasPrefix(name, "go:") {
		b, err = examples.BuildGo(context.Background(), strings.TrimPrefix(name, "go:"), examples.Reactor)
	} else {
		b, err = examples.WAT(name)
	}
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), strings.TrimPrefix(name, "go:")+".wasm")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

func cacheFlag(t *testing.T) string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return "--cache-dir=" + filepath.Join(d, "ferry", "test-compile-cache")
}

func TestRun(t *testing.T) {
	tmp := t.TempDir()
	inFile := filepath.Join(tmp, "in")
	require.NoError(t, os.WriteFile(inFile, []byte("from file"), 0o644))
	tests := []struct {
		name      string
		stdin     string
		args      []string
		code      int
		stdout    string
		stderrHas string
	}{
		{"input flag", "", []string{"run", module(t, "go:incredible-squaring"), "--input", "12345", cacheFlag(t)}, 0, "152399025", ""},
		{"stdin", "piped", []string{"run", module(t, "echo")}, 0, "piped", ""},
		{"input file", "", []string{"run", module(t, "cat"), "--input-file", inFile}, 0, "from file", ""},
		{"timeout", "", []string{"run", module(t, "loop"), "--timeout", "50ms"}, 1, "", "timed out after 50ms"},
		{"memory", "", []string{"run", module(t, "membomb"), "--memory", "2"}, 1, "", "memory limit of 2 MiB"},
		{"trap", "", []string{"run", module(t, "trap")}, 1, "", "unreachable"},
		{"exit status", "", []string{"run", module(t, "exit3")}, 1, "", "exited with status 3"},
		{"input over limit", "toolong", []string{"run", module(t, "echo"), "--max-input", "3"}, 1, "", "input limit"},
		{"not wasm", "", []string{"run", filepath.Join(tmp, "in")}, 3, "", "not a WebAssembly module"},
		{"abi mismatch", "", []string{"run", module(t, "abiv99")}, 3, "", "declares Ferry ABI v99"},
		{"missing file", "", []string{"run", filepath.Join(tmp, "nope.wasm")}, 2, "", "no such file"},
		{"bad memory flag", "", []string{"run", module(t, "echo"), "--memory", "-5"}, 2, "", "--memory -5"},
		{"bad engine", "", []string{"run", module(t, "echo"), "--engine", "v8"}, 2, "", "unknown engine"},
		{"both inputs", "", []string{"run", module(t, "echo"), "--input", "a", "--input-file", inFile}, 2, "", "mutually exclusive"},
		{"no args", "", []string{"run"}, 2, "", "accepts 1 arg"},
		{"unknown flag", "", []string{"run", "--frobnicate"}, 2, "", "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--state", "memory", "-q")
			if tc.name == "no args" || tc.name == "unknown flag" {
				args = tc.args
			}
			r := ferry(t, tc.stdin, args...)
			assert.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
			assert.Equal(t, tc.stdout, r.stdout)
			assert.Contains(t, r.stderr, tc.stderrHas)
		})
	}
}

func TestRun_JSON(t *testing.T) {
	r := ferry(t, "", "run", module(t, "guesterror"), "--json", "--state", "memory")
	assert.Equal(t, 1, r.code)
	var res runResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	assert.False(t, res.OK)
	require.NotNil(t, res.Error)
	assert.Equal(t, "guest_error", res.Error.Kind)
	assert.Contains(t, res.Error.Message, "input rejected")
	assert.Nil(t, res.Output)
	assert.NotZero(t, res.MemoryUsedBytes)
	require.Len(t, res.Logs, 1)
	assert.Equal(t, "about to fail", res.Logs[0].Msg)

	r = ferry(t, "", "run", module(t, "echo"), "--json", "--input", "hi", "--state", "memory")
	assert.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.True(t, res.OK)
	require.NotNil(t, res.Output)
	assert.Equal(t, "hi", *res.Output)
	assert.Equal(t, "reactor", res.Shape)

	r = ferry(t, "", "run", module(t, "exit3"), "--json", "--state", "memory")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.NotNil(t, res.Error.ExitCode)
	assert.Equal(t, uint32(3), *res.Error.ExitCode)
}

func TestRun_StatePersists(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	p := module(t, "go:counter")
	for _, want := range []string{"1", "2"} {
		r := ferry(t, "", "run", p, "--state", db, cacheFlag(t), "-q")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, want, r.stdout)
		assert.Contains(t, r.stderr, "counter is now "+want)
	}
}

func TestInspect(t *testing.T) {
	r := ferry(t, "", "inspect", module(t, "go:counter"))
	require.Equal(t, 0, r.code, r.stderr)
	for _, want := range []string{"shape          reactor", "abi version    v1", "state", "ferry.state_get", "ferry_run"} {
		assert.Contains(t, r.stdout, want)
	}
	r = ferry(t, "", "inspect", module(t, "cat"), "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Equal(t, "command", res["shape"])
	assert.Equal(t, float64(0), res["abi_version"])
	assert.Equal(t, true, res["pure"])

	r = ferry(t, "", "inspect", module(t, "noalloc"))
	assert.Equal(t, 3, r.code)
	assert.Contains(t, r.stderr, "missing export: reactor must export ferry_alloc")
}

func TestHelp_HasExamples(t *testing.T) {
	for _, cmd := range [][]string{{"--help"}, {"run", "--help"}, {"inspect", "--help"}, {"build", "--help"}, {"analyze", "--help"}, {"version", "--help"}} {
		r := ferry(t, "", cmd...)
		assert.Equal(t, 0, r.code)
		assert.Contains(t, r.stdout, "Examples:", "%v", cmd)
	}
	r := ferry(t, "", "version", "--json")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, `"abi":"v1"`)
}

func TestBuildAndAnalyze(t *testing.T) {
	for _, tool := range []string{"go", "wat2wasm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps installs it)", tool)
		}
	}
	out := filepath.Join(t.TempDir(), "bp.bundle")
	r := ferry(t, "", "build", "../../compiler/build/testdata/bp", "--out", out, "--cache-dir", t.TempDir(), "--runs", "2", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var res struct {
		Blueprint string `json:"blueprint"`
		Jobs      []struct {
			Name   string `json:"name"`
			Module string `json:"module"`
		} `json:"jobs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	assert.Equal(t, "testbp", res.Blueprint)
	assert.Len(t, res.Jobs, 3)

	r = ferry(t, "", "analyze", out)
	require.Equal(t, 0, r.code, r.stderr)
	for _, want := range []string{"JOB", "sq", "go", "reactor", "unprofiled"} {
		assert.Contains(t, r.stdout, want)
	}
	r = ferry(t, "", "analyze", filepath.Join(t.TempDir(), "missing.bundle"))
	assert.Equal(t, 3, r.code)
	assert.Contains(t, r.stderr, "manifest.json")

	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, "blueprint.toml"), []byte("[blueprint\n"), 0o644))
	r = ferry(t, "", "build", bad)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "blueprint.toml:1:")
}

func TestRun_BundleJob(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm not installed (make deps installs it)")
	}
	out := filepath.Join(t.TempDir(), "bp.bundle")
	r := ferry(t, "", "build", "../../compiler/build/testdata/bp", "--out", out, "--cache-dir", t.TempDir(), "--runs", "2", "-j", "1")
	require.Equal(t, 0, r.code, r.stderr)

	r = ferry(t, "", "run", out, "--job", "sq", "--input", "12", "--state", "memory", "-q", cacheFlag(t))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "144", r.stdout)

	r = ferry(t, "", "run", out, "--job", "sq", "--input", "3", "--json", "--state", "memory", cacheFlag(t))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"job": "testbp.sq"`)

	r = ferry(t, "", "run", out, "--state", "memory")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--job (one of cat, echo, sq)")
	r = ferry(t, "", "run", out, "--job", "nope", "--state", "memory")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `no job "nope"`)
}
