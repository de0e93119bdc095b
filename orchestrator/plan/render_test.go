package plan

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/orchestrator/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), string(got), "run go test ./orchestrator/plan -update after checking the change")
}

// goldenInput is a blueprint whose jobs hit most reasons.
func goldenInput(t *testing.T, enable bool) Input {
	p := pol(t, lambda, lambdaE, workers, custom)
	p.Serverless.Enable = enable
	p.Serverless.DefaultMemoryMB = 1024
	p.Ferry.LatencyThresholdMs = ptr(250.0)
	square := pure("square")
	heavy := pure("heavy")
	heavy.Profile.P50, heavy.Profile.P95, heavy.Profile.Max = 2*time.Second, 3*time.Second, 4*time.Second
	heavy.Profile.PeakMemoryBytes = 300 << 20
	heavy.TimeoutSecs = ptr(60)
	counter := pure("counter")
	counter.IsPure, counter.IsDeterministic, counter.RequiresState = false, false, true
	fetch := pure("fetch")
	fetch.IsPure, fetch.IsDeterministic, fetch.NetworkCalls = false, false, []string{"api.example.com"}
	big := pure("big_input")
	big.Profile.InputBytesMax = 8 << 20
	prebuilt := pure("prebuilt")
	prebuilt.Profile = nil
	forced := pure("forced")
	forced.ForceServerless, forced.MemoryMB = true, ptr(256)
	return Input{
		Blueprint:      "golden",
		Jobs:           []Job{square, heavy, counter, fetch, big, prebuilt, forced},
		Policy:         p,
		Prefs:          Preferences{Providers: []policy.Kind{policy.AWSLambda, policy.CloudflareWorkers}, Regions: []string{"us-east-1", "eu-west-1"}, CostThresholdUSD: ptr(0.001)},
		CallsPerSecond: 10,
	}
}

func TestPlan_WriteText_Golden(t *testing.T) {
	for _, tc := range []struct {
		file   string
		enable bool
	}{{"plan.golden", true}, {"plan-off.golden", false}} {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, Make(goldenInput(t, tc.enable)).WriteText(&buf))
			golden(t, tc.file, buf.Bytes())
		})
	}
}

func TestPlan_JSON_Golden(t *testing.T) {
	b, err := json.MarshalIndent(Make(goldenInput(t, true)), "", "  ")
	require.NoError(t, err)
	golden(t, "plan.json.golden", append(b, '\n'))
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, os.ErrClosed
	}
	f.n--
	return len(b), nil
}

func TestPlan_WriteText_WriteError(t *testing.T) {
	err := Make(goldenInput(t, true)).WriteText(&failWriter{n: 3})
	assert.ErrorIs(t, err, os.ErrClosed)
}
