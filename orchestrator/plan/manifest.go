package plan

import (
	"slices"
	"time"

	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/orchestrator/policy"
)

// FromManifest takes the jobs and the blueprint's preferences from a
// bundle's manifest.
func FromManifest(m *bundle.Manifest) ([]Job, Preferences) {
	jobs := make([]Job, 0, len(m.Jobs))
	for _, mj := range m.Jobs {
		j := Job{
			Name: mj.Name, IsPure: mj.IsPure, IsDeterministic: mj.IsDeterministic, RequiresState: mj.RequiresState,
			NetworkCalls: slices.Clone(mj.NetworkCalls), MinMemoryBytes: mj.MinMemoryBytes, ModuleBytes: mj.SizeBytes,
			ForceServerless: mj.Overrides.ForceServerless, MemoryMB: mj.Overrides.MemoryMB, TimeoutSecs: mj.Overrides.TimeoutSecs,
		}
		if p := mj.Profile; p != nil {
			j.Profile = &Profile{
				P50: time.Duration(p.DurationP50), P95: time.Duration(p.DurationP95), Max: time.Duration(p.DurationMax),
				PeakMemoryBytes: p.PeakMemoryBytes, InputBytesMax: p.InputBytesMax, OutputBytesMax: p.OutputBytesMax,
				Deterministic: p.Deterministic, NondeterministicSample: p.NondeterministicSample,
			}
		}
		jobs = append(jobs, j)
	}
	var prefs Preferences
	if s := m.Serverless; s != nil {
		for _, p := range s.Providers {
			prefs.Providers = append(prefs.Providers, kindFromBlueprint(p))
		}
		prefs.Regions = slices.Clone(s.Regions)
		prefs.CostThresholdUSD = s.CostThresholdUSD
		if s.LatencyThresholdMs != nil {
			v := float64(*s.LatencyThresholdMs)
			prefs.LatencyThresholdMs = &v
		}
	}
	return jobs, prefs
}

// kindFromBlueprint maps blueprint.toml's provider names (aws_lambda) to
// the policy's (aws-lambda).
func kindFromBlueprint(name string) policy.Kind {
	for _, k := range policy.Kinds {
		if k.BlueprintName() == name {
			return k
		}
	}
	return policy.Kind(name)
}
