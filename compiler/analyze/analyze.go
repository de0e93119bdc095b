// Package analyze derives a job's routing metadata from its compiled module,
// so it holds for any source language: static analysis of the binary
// (shape, ABI version, capabilities and the flags derived from them) and
// profiling of sample inputs in the runtime (durations, peak memory, payload
// sizes, and whether the same input gives the same output).
//
// It reads modules and runs them; it writes nothing. ferry build stores its
// results in the manifest; the orchestrator routes by them.
package analyze

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// Analysis is what a module's binary says about the job.
type Analysis struct {
	Shape        abi.Shape        `json:"shape"`
	ABIVersion   int              `json:"abi_version"`
	Capabilities []abi.Capability `json:"capabilities"`
	// Exports are the module's export names, sorted.
	Exports []string `json:"exports"`
	// IsPure: no state, network or filesystem. Only pure jobs may reuse
	// instances, and only pure deterministic jobs may be hedged.
	IsPure bool `json:"is_pure"`
	// IsDeterministic: the same input gives the same output on every host.
	// Statically: pure (clock and randomness are fixed by the sandbox).
	// Profiling can only take it away (see Profile.Deterministic).
	IsDeterministic bool `json:"is_deterministic"`
	RequiresState   bool `json:"requires_state"`
	// NetworkCalls lists the hosts the job may reach; empty without the
	// network capability.
	NetworkCalls   []string `json:"network_calls"`
	MinMemoryBytes uint64   `json:"min_memory_bytes"`
}

// Module analyses a module. allowHosts are the hosts the blueprint grants
// the job; they matter only when the module has the network capability.
func Module(wasm []byte, allowHosts []string) (*Analysis, error) {
	info, err := abi.Describe(wasm)
	if err != nil {
		return nil, fmt.Errorf("analyse module: %w", err)
	}
	a := &Analysis{
		Shape:           info.Shape,
		ABIVersion:      info.Version,
		Capabilities:    info.Capabilities,
		IsPure:          info.Pure(),
		IsDeterministic: info.Pure(),
		RequiresState:   info.Has(abi.CapState),
		NetworkCalls:    []string{},
		MinMemoryBytes:  info.MinMemoryBytes(),
	}
	for _, e := range info.Exports {
		a.Exports = append(a.Exports, e.Name)
	}
	slices.Sort(a.Exports)
	if a.Exports == nil {
		a.Exports = []string{}
	}
	if a.Capabilities == nil {
		a.Capabilities = []abi.Capability{}
	}
	if info.Has(abi.CapNetwork) {
		a.NetworkCalls = slices.Clone(allowHosts)
		slices.Sort(a.NetworkCalls)
	}
	return a, nil
}

// Sample is one profiling input.
type Sample struct {
	Name  string
	Input []byte
}

// Profile is what running the samples measured.
type Profile struct {
	Samples int `json:"samples"`
	// Runs is the number of invocations per sample.
	Runs        int      `json:"runs"`
	DurationP50 Duration `json:"duration_p50_ms"`
	DurationP95 Duration `json:"duration_p95_ms"`
	DurationMax Duration `json:"duration_max_ms"`
	// PeakMemoryBytes is the largest linear memory any run reached.
	PeakMemoryBytes uint64 `json:"peak_memory_bytes"`
	InputBytesMax   int    `json:"input_bytes_max"`
	OutputBytesMax  int    `json:"output_bytes_max"`
	// Deterministic is false when some sample gave two different outputs.
	Deterministic bool `json:"deterministic"`
	// NondeterministicSample names the first sample whose outputs differed.
	NondeterministicSample string `json:"nondeterministic_sample,omitempty"`
}

// Duration marshals as fractional milliseconds.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%.3f", float64(time.Duration(d).Microseconds())/1000), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("duration in ms: %w", err)
	}
	if ms < 0 || ms > float64(math.MaxInt64/int64(time.Millisecond)) {
		return fmt.Errorf("duration %v ms out of range", ms)
	}
	*d = Duration(math.Round(ms * float64(time.Millisecond)))
	return nil
}

// ErrSample wraps every failure of a sample run; a *SampleError says which
// sample and how it failed.
var ErrSample = errors.New("sample failed")

// SampleError is a sample whose run failed.
type SampleError struct {
	Sample string
	Err    error // the *wasmrt.JobError, usually
}

func (e *SampleError) Error() string { return fmt.Sprintf("sample %q: %v", e.Sample, e.Err) }

// Unwrap returns ErrSample and the cause.
func (e *SampleError) Unwrap() []error { return []error{ErrSample, e.Err} }

// Run profiles mod: every sample runs `runs` times (at least 2, so every
// sample gets a determinism check), each on a fresh instance. A failing
// sample stops profiling with a *SampleError; samples are the author's
// promise of inputs that work.
func Run(ctx context.Context, mod *wasmrt.Module, samples []Sample, runs int) (*Profile, error) {
	if len(samples) == 0 {
		return nil, errors.New("profile: no samples")
	}
	runs = max(runs, 2)
	p := &Profile{Samples: len(samples), Runs: runs, Deterministic: true}
	var durations []time.Duration
	for _, s := range samples {
		var first []byte
		for i := range runs {
			res, err := mod.Invoke(ctx, s.Input)
			if err != nil {
				return nil, &SampleError{Sample: s.Name, Err: err}
			}
			durations = append(durations, res.Duration)
			p.PeakMemoryBytes = max(p.PeakMemoryBytes, res.PeakMemoryBytes)
			p.OutputBytesMax = max(p.OutputBytesMax, len(res.Output))
			if i == 0 {
				first = res.Output
			} else if p.Deterministic && string(res.Output) != string(first) {
				p.Deterministic, p.NondeterministicSample = false, s.Name
			}
		}
		p.InputBytesMax = max(p.InputBytesMax, len(s.Input))
	}
	slices.Sort(durations)
	p.DurationP50 = Duration(quantile(durations, 0.50))
	p.DurationP95 = Duration(quantile(durations, 0.95))
	p.DurationMax = Duration(durations[len(durations)-1])
	return p, nil
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
