package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/orchestrator/api"
	"github.com/ferryrun/ferry/orchestrator/plan"
)

// `ferry jobs` against a real `ferry serve` after a few calls.
func TestJobs_Server(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	srv := startServe(t, invokeBundle(t), "jobs-token")
	tok := tokenFile(t, "jobs-token")
	common := []string{"--server", srv.URL, "--token-file", tok}
	r := ferry(t, "", append([]string{"invoke", "echo", "--input", "x", "--repeat", "7"}, common...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	r = ferry(t, "", append([]string{"invoke", "guesterror", "--input", "x"}, common...)...)
	require.Equal(t, exitJobError, r.code, r.stderr)

	t.Run("table", func(t *testing.T) {
		r := ferry(t, "", append([]string{"jobs"}, common...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 5, r.stdout) // the strategy, the header, three jobs
		assert.Contains(t, lines[0], "ferry serve at "+srv.URL+": TRADITIONAL")
		assert.Regexp(t, `^JOB +PLACEMENT +HEDGE +CALLS +FAILED +RAN ON +P50 +P99 +COST$`, lines[1])
		assert.Regexp(t, `^echo +local +no +7 +0 +local 7 +[0-9.]+ ms +[0-9.]+ ms +\$[0-9.]+$`, lines[2])
		assert.Regexp(t, `^guesterror +local +no +1 +1 +- +- +- +-$`, lines[3])
		assert.Regexp(t, `^spin +local +no +0 +0 +-`, lines[4])
	})
	t.Run("routes", func(t *testing.T) {
		r := ferry(t, "", append([]string{"jobs", "--routes"}, common...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Regexp(t, `JOB +TARGET +CALLS +FAILED +LEARNED +EXPECTED +COST/CALL +BREAKER`, r.stdout)
		assert.Regexp(t, `echo +local +7 +0 +[0-9.]+ ± [0-9.]+ ms +[0-9.]+ ms +\$[0-9.]+ +closed`, r.stdout)
	})
	t.Run("json", func(t *testing.T) {
		r := ferry(t, "", append([]string{"jobs", "--json"}, common...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		var got jobsJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
		assert.Equal(t, srv.URL, got.Server)
		assert.Equal(t, "traditional", got.Strategy)
		assert.Equal(t, 8, got.Window)
		require.Len(t, got.Jobs, 3)
		echo := got.Jobs[0]
		assert.Equal(t, "echo", echo.Name)
		assert.Equal(t, plan.Local, echo.Placement)
		assert.Equal(t, 7, echo.Recent.Calls)
		assert.Equal(t, map[string]int{"local": 7}, echo.Recent.RanOn)
		assert.Greater(t, echo.Recent.LatencyMs["p50"], 0.0)
		require.NotEmpty(t, echo.Routes)
		assert.Equal(t, int64(7), echo.Routes[0].Calls)
		assert.Equal(t, 1, got.Jobs[1].Recent.Failed)
	})
	t.Run("bad token", func(t *testing.T) {
		r := ferry(t, "", "jobs", "--server", srv.URL, "--token-file", tokenFile(t, "wrong"))
		assert.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "ferry: list jobs: wrong bearer token (401 UNAUTHORIZED)")
	})
}

func TestJobs_Errors(t *testing.T) {
	url := closedURL(t)
	r := ferry(t, "", "jobs", "--server", url)
	assert.Equal(t, exitHost, r.code)
	assert.Contains(t, r.stderr, "ferry: list jobs: cannot reach ferry serve at "+url)

	r = ferry(t, "", "jobs", "--server", "ftp://x")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "--server")

	r = ferry(t, "", "jobs", "extra")
	assert.Equal(t, exitUsage, r.code)

	r = ferry(t, "", "jobs", "--help")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "Examples:")
}

func TestJobs_CostOf(t *testing.T) {
	job := api.JobView{Eligibility: []plan.Target{
		{ID: "local", Cost: &plan.Cost{PerCallUSD: 1e-9}},
		{ID: "edge"}, // a custom host without a price
	}}
	for _, tc := range []struct {
		name  string
		ranOn []string
		want  string
	}{
		{"priced only", []string{"local", "local"}, "$0.0000000020"},
		{"unpriced only", []string{"edge"}, "unpriced"},
		{"both", []string{"local", "edge"}, "$0.0000000010 + unpriced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTally()
			for _, target := range tc.ranOn {
				cost := 0.0
				if target == "local" {
					cost = 1e-9
				}
				tl.add(target, 1, cost)
			}
			assert.Equal(t, tc.want, costOf(job, tl))
		})
	}
}
