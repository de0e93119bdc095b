package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/orchestrator/cost"
	"github.com/ferryrun/ferry/orchestrator/plan"
)

func newPlanCmd(e *env) *cobra.Command {
	var (
		js         bool
		policyFile string
		rate       string
	)
	cmd := &cobra.Command{
		Use:   "plan BUNDLE",
		Short: "Say where each job of a bundle may run, what it would cost, and why",
		Long: `Analyse a bundle (from ferry build) against the deployment policy and the
blueprint's own preferences: for every job and every provider, whether the
job may run there and every reason (memory, timeout, payload, state,
network, thresholds, determinism, force_serverless, a missing profile), the
expected cost and warm latency of a call, and a monthly projection at a call
rate; then the strategy (serverless, hybrid or traditional) and which jobs run
remotely. ferry serve acts on this same plan. docs/policy.md gives the rules
and docs/cost.md the cost model.`,
		Example: `  ferry plan wasm-examples/blueprint/build/example.bundle
  ferry plan app.bundle --rate 50/s --json | jq '.jobs[] | {name, placement}'
  ferry plan app.bundle --policy ./policy.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			perSec, err := parseRate(rate)
			if err != nil {
				return withCode(exitUsage, err)
			}
			b, err := bundle.Open(args[0])
			if err != nil {
				code := exitHost
				if errors.Is(err, bundle.ErrInvalid) || errors.Is(err, bundle.ErrSchema) || errors.Is(err, bundle.ErrModule) {
					code = exitModule
				}
				return withCode(code, err)
			}
			pol, _, _, err := loadPolicy(policyFile)
			if err != nil {
				return err
			}
			jobs, prefs := plan.FromManifest(b.Manifest)
			p := plan.Make(plan.Input{Blueprint: b.Manifest.Blueprint, Jobs: jobs, Policy: pol, Prefs: prefs, CallsPerSecond: perSec})
			if js {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return withCode(exitHost, enc.Encode(p))
			}
			return withCode(exitHost, p.WriteText(e.stdout))
		},
	}
	cmd.Flags().BoolVar(&js, "json", false, "print the plan as JSON")
	cmd.Flags().StringVar(&policyFile, "policy", "", "policy file (default: the Tangle CLI's)")
	cmd.Flags().StringVar(&rate, "rate", "1/s", "call rate per job for the monthly projection: N[/s|/min|/h|/day|/month]")
	return cmd
}

// parseRate reads "N", "N/s", "N/min", "N/h", "N/day" or "N/month" as
// calls per second.
func parseRate(s string) (float64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("--rate %q: want a positive number of calls, like 5/s or 1e6/month", s)
	}
	per := map[string]float64{"": 1, "s": 1, "sec": 1, "min": 60, "h": 3600, "hour": 3600, "day": 86400, "month": cost.SecondsPerMonth}
	d, ok := per[strings.TrimSpace(unit)]
	if !ok {
		return 0, fmt.Errorf("--rate %q: unit %q; want s, min, h, day or month", s, unit)
	}
	r := v / d
	if r > 1e9 {
		return 0, fmt.Errorf("--rate %q: over a billion calls a second", s)
	}
	return r, nil
}
