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

	"github.com/ferryrun/ferry/benchmarks/harness"
	"github.com/ferryrun/ferry/hosts/lambda/lambdatest"
	"github.com/ferryrun/ferry/hosts/workers/workerd"
)

// ferry bench measures a bundle's jobs on the engines and on every host
// it can start here — the HTTP host (itself), the local Lambda with the
// real bootstrap, workerd — and writes the table, JSON and benchstat
// lines.
func TestBench_EveryTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and a bundle")
	}
	bundleDir := e2eBundle(t, "aws_lambda")
	dir := t.TempDir()
	boot := lambdatest.File(t)
	targets := []string{"wazero", "wazero-interpreter", "http", "lambda"}
	if _, err := workerd.Find(); err == nil {
		targets = append(targets, "workerd")
	}
	args := []string{"bench", "--json", "--raw", filepath.Join(dir, "raw.txt"), "--lambda-bootstrap", boot,
		"--warm", "20", "--duration", "100ms", "--concurrency", "1,4", "--samples", "1", "--instances", "2",
		"--job", "echo", "--input", "echo=bench me"}
	for _, tg := range targets {
		args = append(args, "--target", tg)
	}
	cmd := exec.Command(ferryBinary(t), append(args, bundleDir)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Contains(t, stderr.String(), "bench: http: echo", "progress on stderr")

	var rep harness.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep))
	require.Len(t, rep.Results, len(targets))
	for i, r := range rep.Results {
		assert.Equal(t, targets[i], r.Target)
		assert.Empty(t, r.Error, r.Target)
		assert.Positive(t, r.WarmP50Us, r.Target)
		assert.Positive(t, r.ColdMs, r.Target)
		require.Len(t, r.Load, 2, r.Target)
		for _, l := range r.Load {
			assert.Empty(t, l.Error, r.Target)
		}
		if r.Kind == harness.KindHost {
			assert.Positive(t, r.DeployMs, r.Target)
		} else {
			assert.Positive(t, r.CompileColdMs, r.Target)
		}
	}
	// Lambda reports its environment's Max Memory Used, and workerd's
	// process grows by the isolate's instance on the first call.
	for _, r := range rep.Results {
		if r.Target == "lambda" || r.Target == "workerd" {
			assert.Greater(t, r.MemoryPerInstanceKB, 1024.0, r.Target)
		}
	}
	assert.NotEmpty(t, rep.Machine.Versions["wazero"])
	raw, err := os.ReadFile(filepath.Join(dir, "raw.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), "BenchmarkFerry/job=echo/target=lambda-")

	// The table, in process, on one engine.
	var out, errs bytes.Buffer
	code := doMain(context.Background(), []string{"bench", "--quick", "--target", "wazero", "--concurrency", "2",
		"--duration", "50ms", "--job", "echo", bundleDir}, nil, &out, &errs)
	require.Equal(t, 0, code, errs.String())
	assert.Regexp(t, `(?m)^echo\s+wazero\s+\S+ ms`, out.String())
	assert.Contains(t, out.String(), "CALLS/S @2")
}

// Bad input gets a usage error naming the problem, before anything runs.
func TestBench_BadInput(t *testing.T) {
	bundleDir := e2eBundle(t, "aws_lambda")
	big := filepath.Join(t.TempDir(), "big")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte("x"), maxBenchInput+1), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no bundle", []string{"bench"}, exitUsage, "accepts 1 arg"},
		{"missing bundle", []string{"bench", filepath.Join(t.TempDir(), "nope")}, exitHost, "nope"},
		{"unknown target", []string{"bench", "--target", "v8", bundleDir}, exitUsage, "--target v8"},
		{"native", []string{"bench", "--target", "native", bundleDir}, exitUsage, "no native Go version"},
		{"unknown job", []string{"bench", "--job", "nope", bundleDir}, exitUsage, "--job nope"},
		{"bad input", []string{"bench", "--input", "echo", bundleDir}, exitUsage, "want JOB=VALUE"},
		{"input for unknown job", []string{"bench", "--input", "nope=1", bundleDir}, exitUsage, "no such job"},
		{"input twice", []string{"bench", "--input", "echo=1", "--input-file", "echo=" + big, bundleDir}, exitUsage, "given twice"},
		{"input too big", []string{"bench", "--input-file", "echo=" + big, bundleDir}, exitUsage, "over 64 MiB"},
		{"warm", []string{"bench", "--warm", "0", bundleDir}, exitUsage, "--warm 0"},
		{"duration", []string{"bench", "--duration", "1ns", bundleDir}, exitUsage, "--duration"},
		{"concurrency", []string{"bench", "--concurrency", "0", bundleDir}, exitUsage, "--concurrency 0"},
		{"lambda without bootstrap", []string{"bench", "--target", "lambda", "--lambda-bootstrap", filepath.Join(t.TempDir(), "none"), bundleDir}, exitUsage, "no Lambda bootstrap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := doMain(context.Background(), tc.args, nil, &out, &errs)
			assert.Equal(t, tc.code, code, errs.String())
			assert.True(t, strings.Contains(errs.String(), tc.want), "stderr %q lacks %q", errs.String(), tc.want)
			assert.Empty(t, out.String())
		})
	}
}
