// Package bundle defines the manifest (schema version 1, docs/manifest.md)
// and reads and writes bundles: a directory holding manifest.json and the
// job modules, each named by its sha256. A bundle is written to a temporary
// directory and renamed into place, so a failed build never leaves a
// half-written bundle; reading verifies every module against its digest.
package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ferryrun/ferry/compiler/analyze"
	"github.com/ferryrun/ferry/runtime/modstore"
)

// SchemaVersion is the manifest schema this package writes and reads.
const SchemaVersion = 1

// ManifestFile is the manifest's name inside a bundle.
const ManifestFile = "manifest.json"

// Manifest describes a built blueprint.
type Manifest struct {
	Schema    int       `json:"schema"`
	Blueprint string    `json:"blueprint"`
	BuiltAt   time.Time `json:"built_at"`
	// Ferry is the version of ferry that built the bundle.
	Ferry string `json:"ferry"`
	// Serverless is blueprint.toml's [blueprint.serverless]; nil when the
	// blueprint sets none of it.
	Serverless *Serverless `json:"serverless,omitempty"`
	Jobs       []Job       `json:"jobs"`
}

// Serverless is where the blueprint lets its jobs go, and at what price and
// speed (blueprint.toml's [blueprint.serverless]).
type Serverless struct {
	// Providers as blueprint.toml spells them (aws_lambda, …); empty: any.
	Providers []string `json:"providers,omitempty"`
	// Regions; empty: any.
	Regions []string `json:"regions,omitempty"`
	// CostThresholdUSD is the most one execution may cost.
	CostThresholdUSD *float64 `json:"cost_threshold_usd,omitempty"`
	// LatencyThresholdMs is the most one execution may take.
	LatencyThresholdMs *int `json:"latency_threshold_ms,omitempty"`
}

// Job is one job's entry.
type Job struct {
	Name string `json:"name"`
	// Module is the digest of the module, "sha256:<hex>"; the file is
	// modules/<hex>.wasm.
	Module    string `json:"module"`
	SizeBytes int    `json:"size_bytes"`
	Language  string `json:"language"`
	Source    string `json:"source"`
	analyze.Analysis
	// Profile is nil when the job had no samples: the job is then reported
	// as unprofiled, never silently skipped.
	Profile   *analyze.Profile `json:"profile"`
	Overrides Overrides        `json:"overrides"`
}

// Overrides are blueprint.toml's per-job settings, which win over measured
// values.
type Overrides struct {
	ForceServerless bool `json:"force_serverless,omitempty"`
	MemoryMB        *int `json:"memory_mb,omitempty"`
	TimeoutSecs     *int `json:"timeout_secs,omitempty"`
}

// Errors.
var (
	ErrSchema  = errors.New("unsupported manifest schema")
	ErrInvalid = errors.New("invalid manifest")
	ErrModule  = errors.New("bundle module missing or corrupt")
)

var jobName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Validate checks the manifest's own consistency.
func (m *Manifest) Validate() error {
	var errs []error
	if m.Schema != SchemaVersion {
		return fmt.Errorf("%w: %d (this ferry reads schema %d)", ErrSchema, m.Schema, SchemaVersion)
	}
	if m.Blueprint == "" {
		errs = append(errs, fmt.Errorf("%w: blueprint name is empty", ErrInvalid))
	}
	if len(m.Jobs) == 0 {
		errs = append(errs, fmt.Errorf("%w: no jobs", ErrInvalid))
	}
	seen := map[string]bool{}
	for i, j := range m.Jobs {
		switch {
		case !jobName.MatchString(j.Name):
			errs = append(errs, fmt.Errorf("%w: jobs[%d].name %q", ErrInvalid, i, j.Name))
		case seen[j.Name]:
			errs = append(errs, fmt.Errorf("%w: job %q appears twice", ErrInvalid, j.Name))
		}
		seen[j.Name] = true
		if _, err := modstore.ParseDigest(j.Module); err != nil {
			errs = append(errs, fmt.Errorf("%w: job %q: %w", ErrInvalid, j.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Job returns the job called name.
func (m *Manifest) Job(name string) (*Job, bool) {
	for i := range m.Jobs {
		if m.Jobs[i].Name == name {
			return &m.Jobs[i], true
		}
	}
	return nil, false
}

// Write writes a bundle at dir: manifest.json and modules/<hex>.wasm for
// every module in mods (keyed by digest). It builds the bundle beside dir
// and renames it into place, replacing an older bundle only once the new
// one is complete.
func Write(dir string, m *Manifest, mods map[string][]byte) (err error) {
	m.Schema = SchemaVersion
	slices.SortFunc(m.Jobs, func(a, b Job) int { return strings.Compare(a.Name, b.Name) })
	if err := m.Validate(); err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	store, err := modstore.Open(filepath.Join(tmp, "modules"))
	if err != nil {
		return err
	}
	for _, j := range m.Jobs {
		wasm, ok := mods[j.Module]
		if !ok {
			return fmt.Errorf("write bundle %s: job %q: %w: no bytes for %s", dir, j.Name, ErrModule, j.Module)
		}
		d, err := store.Put(wasm)
		if err != nil {
			return fmt.Errorf("write bundle %s: %w", dir, err)
		}
		if d != j.Module {
			return fmt.Errorf("write bundle %s: job %q: %w: bytes hash to %s, manifest says %s", dir, j.Name, ErrModule, d, j.Module)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ManifestFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	// Swap: move an old bundle aside first so the rename cannot fail on a
	// non-empty directory, and drop it only after the new one is in place.
	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("write bundle %s: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return nil
}

// Bundle is an opened bundle.
type Bundle struct {
	Dir      string
	Manifest *Manifest
	store    *modstore.Store
}

const maxManifest = 16 << 20

// Open reads and validates a bundle's manifest and checks that every module
// is present. Module bytes are verified when read with Module.
func Open(dir string) (*Bundle, error) {
	f, err := os.Open(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("open bundle %s: %w", dir, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("open bundle %s: %w", dir, err)
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("open bundle %s: %w: manifest over 16 MiB", dir, ErrInvalid)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("open bundle %s: %w: %w", dir, ErrInvalid, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("open bundle %s: %w", dir, err)
	}
	store, err := modstore.Open(filepath.Join(dir, "modules"))
	if err != nil {
		return nil, err
	}
	for _, j := range m.Jobs {
		if !store.Has(j.Module) {
			return nil, fmt.Errorf("open bundle %s: job %q: %w: %s", dir, j.Name, ErrModule, j.Module)
		}
	}
	return &Bundle{Dir: dir, Manifest: &m, store: store}, nil
}

// Module returns a job's module bytes, verified against the digest.
func (b *Bundle) Module(job string) ([]byte, error) {
	j, ok := b.Manifest.Job(job)
	if !ok {
		return nil, fmt.Errorf("bundle %s: no job %q (jobs: %s)", b.Dir, job, strings.Join(b.jobNames(), ", "))
	}
	wasm, err := b.store.Get(j.Module)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: job %q: %w: %w", b.Dir, job, ErrModule, err)
	}
	return wasm, nil
}

func (b *Bundle) jobNames() []string {
	out := make([]string, len(b.Manifest.Jobs))
	for i, j := range b.Manifest.Jobs {
		out[i] = j.Name
	}
	return out
}
