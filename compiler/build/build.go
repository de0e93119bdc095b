// Package build is `ferry build`: it loads blueprint.toml, builds every job
// to WebAssembly in parallel through a cache keyed by the sources and the
// toolchain, analyses and profiles each module in the runtime (which also
// warms the compilation cache), and writes the bundle atomically. One job
// failing does not stop the others: every job is reported, and no bundle is
// written unless all of them built.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferryrun/ferry/compiler/analyze"
	"github.com/ferryrun/ferry/compiler/blueprint"
	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/compiler/toolchain"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// Options configure a build. Runtime is required.
type Options struct {
	// Out is the bundle directory. Default: <blueprint dir>/build/<name>.bundle.
	Out string
	// CacheDir holds built modules by key. Empty: no build cache.
	CacheDir string
	// Runs is the number of profiling runs per sample (at least 2).
	Runs int
	// Parallel bounds concurrent job builds. Default GOMAXPROCS.
	Parallel int
	// Progress receives one line per finished step; nil is silent.
	Progress io.Writer
	// Runtime runs the samples. Its compilation cache is warmed as a side
	// effect, so the first `ferry run` of a built job does not compile.
	Runtime *wasmrt.Runtime
	// Drivers by language; default toolchain.Drivers().
	Drivers map[toolchain.Language]toolchain.Driver
	// Ferry is the version string recorded in the manifest.
	Ferry string
	// WasmOpt runs binaryen's wasm-opt -O2 over every built module.
	WasmOpt bool
}

// JobResult is what happened to one job.
type JobResult struct {
	Name     string             `json:"name"`
	Language toolchain.Language `json:"language"`
	Cached   bool               `json:"cached"`
	Module   string             `json:"module,omitempty"`
	Build    time.Duration      `json:"build_ns"`
	Analyze  time.Duration      `json:"analyze_ns"`
	Profile  time.Duration      `json:"profile_ns"`
	Err      error              `json:"-"`
	Error    string             `json:"error,omitempty"`
}

// Result is a build's outcome.
type Result struct {
	Blueprint string           `json:"blueprint"`
	Bundle    string           `json:"bundle,omitempty"`
	Manifest  *bundle.Manifest `json:"manifest,omitempty"`
	Jobs      []JobResult      `json:"jobs"`
	Total     time.Duration    `json:"total_ns"`
}

// ErrJobsFailed is returned when at least one job failed; Result.Jobs says
// which and why.
var ErrJobsFailed = errors.New("some jobs failed to build")

// Build builds the blueprint in dir.
func Build(ctx context.Context, dir string, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Runtime == nil {
		return nil, errors.New("build: no runtime")
	}
	if opts.Drivers == nil {
		opts.Drivers = toolchain.Drivers()
	}
	if opts.Parallel <= 0 {
		opts.Parallel = runtime.GOMAXPROCS(0)
	}
	bp, err := blueprint.Load(filepath.Join(dir, "blueprint.toml"))
	if err != nil {
		return nil, err
	}
	if opts.Out == "" {
		opts.Out = filepath.Join(bp.Dir, "build", bp.Name+".bundle")
	}
	jobs := bp.SortedJobs()
	fps := fingerprints(ctx, jobs, opts.Drivers)
	if opts.WasmOpt {
		// The optimiser is part of every job's toolchain: its version goes
		// into the cache key, and its absence fails every job clearly.
		v, err := toolchain.OptimizerFingerprint(ctx)
		for lang, fp := range fps {
			if fp.err == nil {
				fps[lang] = fingerprint{fp.value + "; " + v, err}
			}
		}
	}
	res := &Result{Blueprint: bp.Name, Jobs: make([]JobResult, len(jobs))}
	entries := make([]bundle.Job, len(jobs))
	mods := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, opts.Parallel)
	done := 0
	for i, job := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			jr, entry, wasm := buildJob(ctx, bp, job, opts, fps[toolchain.Language(job.Language)])
			mu.Lock()
			defer mu.Unlock()
			res.Jobs[i], entries[i] = jr, entry
			if wasm != nil {
				mods[entry.Module] = wasm
			}
			done++
			progress(opts.Progress, done, len(jobs), jr)
		})
	}
	wg.Wait()
	var failed []string
	for i := range res.Jobs {
		if res.Jobs[i].Err != nil {
			res.Jobs[i].Error = res.Jobs[i].Err.Error()
			failed = append(failed, res.Jobs[i].Name)
		}
	}
	res.Total = time.Since(start)
	if len(failed) > 0 {
		return res, fmt.Errorf("%w: %s (no bundle written)", ErrJobsFailed, strings.Join(failed, ", "))
	}
	m := &bundle.Manifest{Blueprint: bp.Name, BuiltAt: time.Now().UTC(), Ferry: opts.Ferry, Serverless: serverless(bp.Serverless), Jobs: entries}
	if err := bundle.Write(opts.Out, m, mods); err != nil {
		return res, err
	}
	res.Bundle, res.Manifest = opts.Out, m
	res.Total = time.Since(start)
	return res, nil
}

// serverless copies blueprint.toml's serverless preferences into the
// manifest; nil when there are none.
func serverless(s blueprint.Serverless) *bundle.Serverless {
	if len(s.Providers) == 0 && len(s.Regions) == 0 && s.CostThreshold == nil && s.LatencyThreshold == nil {
		return nil
	}
	out := &bundle.Serverless{Regions: slices.Clone(s.Regions), CostThresholdUSD: s.CostThreshold, LatencyThresholdMs: s.LatencyThreshold}
	for _, p := range s.Providers {
		out.Providers = append(out.Providers, string(p))
	}
	return out
}

func progress(w io.Writer, n, total int, jr JobResult) {
	if w == nil {
		return
	}
	if jr.Err != nil {
		fmt.Fprintf(w, "[%d/%d] %s (%s): FAILED: %s\n", n, total, jr.Name, jr.Language, firstLine(jr.Err.Error()))
		return
	}
	how := fmt.Sprintf("built in %s", jr.Build.Round(time.Millisecond))
	if jr.Cached {
		how = "cached"
	}
	fmt.Fprintf(w, "[%d/%d] %s (%s): %s, analysed in %s, profiled in %s\n", n, total, jr.Name, jr.Language, how,
		jr.Analyze.Round(time.Microsecond), jr.Profile.Round(time.Millisecond))
}

func firstLine(s string) string {
	l, rest, _ := strings.Cut(s, "\n")
	if rest != "" {
		l += " (compiler output below)"
	}
	return l
}

// fingerprint is a driver's Fingerprint result, computed once per build.
type fingerprint struct {
	value string
	err   error
}

// fingerprints asks every driver the blueprint uses for its toolchain
// fingerprint, concurrently: each is a compiler subprocess (clang alone
// takes ~0.1 s), and an unchanged rebuild is mostly these.
func fingerprints(ctx context.Context, jobs []blueprint.Job, drivers map[toolchain.Language]toolchain.Driver) map[toolchain.Language]fingerprint {
	out := map[toolchain.Language]fingerprint{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, j := range jobs {
		lang := toolchain.Language(j.Language)
		drv, ok := drivers[lang]
		mu.Lock()
		_, seen := out[lang]
		if !seen {
			out[lang] = fingerprint{}
		}
		mu.Unlock()
		if !ok || seen {
			continue
		}
		wg.Go(func() {
			v, err := drv.Fingerprint(ctx)
			mu.Lock()
			out[lang] = fingerprint{v, err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func buildJob(ctx context.Context, bp *blueprint.Blueprint, job blueprint.Job, opts Options, fp fingerprint) (JobResult, bundle.Job, []byte) {
	jr := JobResult{Name: job.Name, Language: toolchain.Language(job.Language)}
	entry := bundle.Job{Name: job.Name, Language: string(job.Language), Source: job.Source}
	fail := func(err error) (JobResult, bundle.Job, []byte) {
		jr.Err = fmt.Errorf("job %s: %w", job.Name, err)
		return jr, entry, nil
	}
	drv, ok := opts.Drivers[jr.Language]
	if !ok {
		return fail(fmt.Errorf("no driver for language %q", job.Language))
	}
	t0 := time.Now()
	if fp.err != nil {
		return fail(fp.err)
	}
	wasm, cached, err := buildCached(ctx, bp, job, drv, fp.value, opts.CacheDir, opts.WasmOpt)
	jr.Build, jr.Cached = time.Since(t0), cached
	if err != nil {
		return fail(err)
	}
	entry.Module, entry.SizeBytes = modstore.Digest(wasm), len(wasm)
	jr.Module = entry.Module

	t0 = time.Now()
	a, err := analyze.Module(wasm, job.AllowHosts)
	jr.Analyze = time.Since(t0)
	if err != nil {
		return fail(err)
	}
	entry.Analysis = *a
	entry.Overrides = bundle.Overrides{ForceServerless: job.ForceServerless, MemoryMB: job.Memory, TimeoutSecs: job.Timeout}

	t0 = time.Now()
	samples, err := loadSamples(bp, job)
	if err != nil {
		return fail(err)
	}
	pkey := profileKey(entry.Module, job, samples, opts)
	if p, ok := readProfile(opts.CacheDir, pkey); ok {
		// Same module, samples, limits and runs: the profile would be
		// measured again only to come out the same, and the module is
		// already in the compilation cache from that first run.
		entry.Profile = p
		entry.IsDeterministic = entry.IsDeterministic && p.Deterministic
		jr.Profile = time.Since(t0)
		return jr, entry, wasm
	}
	lim := wasmrt.Limits{}
	if job.Memory != nil {
		lim.MaxMemoryBytes = uint64(*job.Memory) << 20
	}
	if job.Timeout != nil {
		lim.Timeout = time.Duration(*job.Timeout) * time.Second
	}
	mod, err := opts.Runtime.Load(ctx, wasm, wasmrt.ModuleConfig{Name: bp.Name + "." + job.Name, Limits: lim, AllowHosts: job.AllowHosts, PoolSize: -1})
	if err != nil {
		return fail(err)
	}
	defer mod.Close(ctx)
	if len(samples) > 0 {
		p, err := analyze.Run(ctx, mod, samples, opts.Runs)
		if err != nil {
			return fail(err)
		}
		entry.Profile = p
		entry.IsDeterministic = entry.IsDeterministic && p.Deterministic
		writeProfile(opts.CacheDir, pkey, p)
	}
	jr.Profile = time.Since(t0)
	return jr, entry, wasm
}

// profileKey identifies a profile: the module, every sample byte, the
// limits and the number of runs. Empty when there is nothing to cache.
func profileKey(module string, job blueprint.Job, samples []analyze.Sample, opts Options) string {
	if opts.CacheDir == "" || len(samples) == 0 {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "ferry-profile-v1\x00%s\x00%d\x00%v\x00%v\x00%v\x00", module, max(opts.Runs, 2), deref(job.Memory), deref(job.Timeout), job.AllowHosts)
	for _, s := range samples {
		fmt.Fprintf(h, "%s\x00%d\x00", s.Name, len(s.Input))
		h.Write(s.Input)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func readProfile(dir, key string) (*analyze.Profile, bool) {
	if key == "" {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(dir, key+".profile.json"))
	if err != nil {
		return nil, false
	}
	var p analyze.Profile
	if json.Unmarshal(b, &p) != nil {
		return nil, false
	}
	return &p, true
}

func writeProfile(dir, key string, p *analyze.Profile) {
	if key == "" {
		return
	}
	b, err := json.Marshal(p)
	if err != nil {
		return
	}
	tmp := filepath.Join(dir, key+".profile.tmp")
	if os.MkdirAll(dir, 0o755) == nil && os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, filepath.Join(dir, key+".profile.json"))
	}
}

func loadSamples(bp *blueprint.Blueprint, job blueprint.Job) ([]analyze.Sample, error) {
	var out []analyze.Sample
	for _, f := range job.Samples {
		b, err := os.ReadFile(filepath.Join(bp.Dir, f))
		if err != nil {
			return nil, fmt.Errorf("sample %s: %w", f, err)
		}
		out = append(out, analyze.Sample{Name: f, Input: b})
	}
	for i, s := range job.InlineSamples {
		out = append(out, analyze.Sample{Name: fmt.Sprintf("inline[%d]", i), Input: []byte(s)})
	}
	return out, nil
}

// buildCached returns the module from the cache when the key (toolchain
// fingerprint, shape and every source byte) is unchanged, and builds it
// otherwise.
func buildCached(ctx context.Context, bp *blueprint.Blueprint, job blueprint.Job, drv toolchain.Driver, fp, cacheDir string, optimize bool) ([]byte, bool, error) {
	key := ""
	var err error
	if cacheDir != "" {
		if key, err = cacheKey(bp.Dir, job, fp); err != nil {
			return nil, false, err
		}
		if b, err := os.ReadFile(filepath.Join(cacheDir, key+".wasm")); err == nil {
			return b, true, nil
		}
	}
	work, err := os.MkdirTemp("", "ferry-build-"+job.Name+"-")
	if err != nil {
		return nil, false, err
	}
	defer os.RemoveAll(work)
	wasm, err := drv.Build(ctx, toolchain.Request{Dir: bp.Dir, Source: job.Source, Shape: toolchain.Shape(job.ResolvedShape()), WorkDir: work})
	if err != nil {
		return nil, false, err
	}
	if optimize {
		if wasm, err = toolchain.Optimize(ctx, wasm, work); err != nil {
			return nil, false, err
		}
	}
	if key != "" {
		if err := os.MkdirAll(cacheDir, 0o755); err == nil {
			tmp := filepath.Join(cacheDir, key+".tmp-"+filepath.Base(work))
			if os.WriteFile(tmp, wasm, 0o644) == nil {
				_ = os.Rename(tmp, filepath.Join(cacheDir, key+".wasm"))
			}
		}
	}
	return wasm, false, nil
}

// cacheKey digests the toolchain fingerprint, the job's language and shape,
// and every file the build can read: the source, and for Go the whole module
// plus local replace targets (a job's SDK lives outside its directory).
func cacheKey(dir string, job blueprint.Job, fingerprint string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "ferry-build-v1\x00%s\x00%s\x00%s\x00", fingerprint, job.Language, job.ResolvedShape())
	roots := []string{filepath.Join(dir, job.Source)}
	if job.Language == blueprint.LanguageGo {
		if mod := findGoMod(filepath.Join(dir, job.Source)); mod != "" {
			roots = append(roots, filepath.Dir(mod))
			roots = append(roots, localReplaces(mod)...)
		}
	}
	sort.Strings(roots)
	for _, r := range roots {
		if err := digestTree(h, r); err != nil {
			return "", fmt.Errorf("cache key for %s: %w", job.Name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func findGoMod(p string) string {
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		p = filepath.Dir(p)
	}
	for {
		if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
			return filepath.Join(p, "go.mod")
		}
		parent := filepath.Dir(p)
		if parent == p {
			return ""
		}
		p = parent
	}
}

// localReplaces returns the directories of `replace X => ./path` lines.
func localReplaces(gomod string) []string {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		_, target, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		target = strings.Fields(target + " ")[0]
		if strings.HasPrefix(target, ".") || filepath.IsAbs(target) {
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(gomod), target)
			}
			out = append(out, target)
		}
	}
	return out
}

// digestTree hashes names and contents of the regular files under root,
// skipping build outputs and VCS metadata.
func digestTree(h io.Writer, root string) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "build", "target", "node_modules":
				if p != root {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		_, err = h.Write(b)
		return err
	})
}
