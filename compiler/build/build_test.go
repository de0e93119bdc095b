package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/compiler/toolchain"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// copyBlueprint copies testdata/bp next to the repository's guest SDK
// layout (the Go job's replace directive is relative), into a temp dir
// inside testdata so the relative path still resolves.
func copyBlueprint(t *testing.T) string {
	t.Helper()
	base, err := filepath.Abs("testdata")
	require.NoError(t, err)
	dir, err := os.MkdirTemp(base, "run-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	dst := filepath.Join(dir, "bp")
	require.NoError(t, os.CopyFS(dst, os.DirFS(filepath.Join(base, "bp"))))
	// The copy is one level deeper than testdata/bp.
	gomod := filepath.Join(dst, "jobs", "sq", "go.mod")
	b, err := os.ReadFile(gomod)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(gomod, []byte(strings.Replace(string(b), "=> ../", "=> ../../", 1)), 0o644))
	return dst
}

func requireTools(t *testing.T) {
	t.Helper()
	for _, d := range []toolchain.Driver{&toolchain.GoDriver{}, &toolchain.WATDriver{}} {
		if _, err := d.Fingerprint(context.Background()); err != nil {
			t.Skipf("toolchain missing (make test installs it): %v", err)
		}
	}
}

func newRuntime(t *testing.T) *wasmrt.Runtime {
	rt, err := wasmrt.New(context.Background(), wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	return rt
}

func TestBuild_BlueprintAndCache(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	dir := copyBlueprint(t)
	cache := t.TempDir()
	var progress strings.Builder
	opts := Options{CacheDir: cache, Runtime: newRuntime(t), Progress: &progress, Ferry: "test", Runs: 2}

	res, err := Build(ctx, dir, opts)
	require.NoError(t, err, progress.String())
	assert.Equal(t, filepath.Join(dir, "build", "testbp.bundle"), res.Bundle)
	assert.Contains(t, progress.String(), "[3/3]")
	for _, j := range res.Jobs {
		assert.False(t, j.Cached, j.Name)
	}

	b, err := bundle.Open(res.Bundle)
	require.NoError(t, err)
	sq, ok := b.Manifest.Job("sq")
	require.True(t, ok)
	assert.Equal(t, "go", sq.Language)
	assert.True(t, sq.IsPure)
	assert.True(t, sq.IsDeterministic)
	require.NotNil(t, sq.Profile)
	assert.Equal(t, 2, sq.Profile.Samples)
	require.NotNil(t, sq.Overrides.MemoryMB)
	assert.Equal(t, 64, *sq.Overrides.MemoryMB)
	cat, _ := b.Manifest.Job("cat")
	assert.Nil(t, cat.Profile, "no samples: explicitly unprofiled")
	assert.Equal(t, "command", string(cat.Shape))

	// The built module runs.
	wasm, err := b.Module("sq")
	require.NoError(t, err)
	mod, err := opts.Runtime.Load(ctx, wasm, wasmrt.ModuleConfig{PoolSize: -1})
	require.NoError(t, err)
	out, err := mod.Invoke(ctx, []byte("9"))
	require.NoError(t, err)
	assert.Equal(t, "81", string(out.Output))

	// Unchanged: everything from the cache, same modules.
	res2, err := Build(ctx, dir, opts)
	require.NoError(t, err)
	for i, j := range res2.Jobs {
		assert.True(t, j.Cached, j.Name)
		assert.Equal(t, res.Jobs[i].Module, j.Module)
	}

	// A changed source rebuilds that job only.
	src := filepath.Join(dir, "jobs", "sq", "main.go")
	code, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(src, append(code, []byte("\n// changed\n")...), 0o644))
	res3, err := Build(ctx, dir, opts)
	require.NoError(t, err)
	for _, j := range res3.Jobs {
		assert.Equal(t, j.Name != "sq", j.Cached, j.Name)
	}
}

func TestBuild_OneJobFails(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	dir := copyBlueprint(t)
	opts := Options{CacheDir: t.TempDir(), Runtime: newRuntime(t), Runs: 2}
	_, err := Build(ctx, dir, opts)
	require.NoError(t, err)

	// Break the Go job and add a job whose sample traps.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "jobs", "sq", "main.go"), []byte("package main\n\nfunc main() { this is not go }\n"), 0o644))
	f, err := os.OpenFile(filepath.Join(dir, "blueprint.toml"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("\n[blueprint.jobs.trap]\nsource = \"jobs/trap.wasm\"\ninline_samples = [\"x\"]\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	res, err := Build(ctx, dir, opts)
	require.ErrorIs(t, err, ErrJobsFailed)
	assert.Contains(t, err.Error(), "sq, trap")
	byName := map[string]JobResult{}
	for _, j := range res.Jobs {
		byName[j.Name] = j
	}
	assert.NoError(t, byName["echo"].Err, "other jobs still build and are reported")
	assert.NoError(t, byName["cat"].Err)
	assert.ErrorIs(t, byName["sq"].Err, toolchain.ErrBuild)
	assert.Contains(t, byName["sq"].Err.Error(), "main.go", "the compiler's output is shown")
	assert.ErrorIs(t, byName["trap"].Err, wasmrt.ErrTrap)
	assert.Contains(t, byName["trap"].Err.Error(), `sample "inline[0]"`)

	// The earlier bundle is intact: a failed build writes nothing.
	b, err := bundle.Open(filepath.Join(dir, "build", "testbp.bundle"))
	require.NoError(t, err)
	assert.Len(t, b.Manifest.Jobs, 3)
}

func TestBuild_BadBlueprint(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blueprint.toml"), []byte("[blueprint]\nname = \"x\"\n[blueprint.jobs.a]\nsource = \"a.wasm\"\nmemroy = 1\n"), 0o644))
	_, err := Build(context.Background(), dir, Options{Runtime: newRuntime(t)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "blueprint.toml:5:1")
	_, err = Build(context.Background(), t.TempDir(), Options{Runtime: newRuntime(t)})
	assert.ErrorContains(t, err, "blueprint.toml")
}

func writeBlueprint(t *testing.T, toml string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blueprint.toml"), []byte(toml), 0o644))
	for name, src := range files {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	return dir
}

func TestBuild_WasmOpt(t *testing.T) {
	ctx := context.Background()
	if _, err := toolchain.OptimizerFingerprint(ctx); err != nil {
		t.Skipf("%v", err)
	}
	requireTools(t)
	dir := writeBlueprint(t, "[blueprint]\nname = \"opt\"\n[blueprint.jobs.echo]\nsource = \"echo.wat\"\ninline_samples = [\"abc\"]\n",
		map[string]string{"echo.wat": "../../wasm-examples/wat/echo.wat"})
	cache := t.TempDir()
	plain, err := Build(ctx, dir, Options{CacheDir: cache, Runtime: newRuntime(t), Out: filepath.Join(t.TempDir(), "a")})
	require.NoError(t, err)
	opt, err := Build(ctx, dir, Options{CacheDir: cache, Runtime: newRuntime(t), Out: filepath.Join(t.TempDir(), "b"), WasmOpt: true})
	require.NoError(t, err)
	assert.False(t, opt.Jobs[0].Cached, "the optimiser is part of the cache key")
	assert.NotEqual(t, plain.Jobs[0].Module, opt.Jobs[0].Module, "wasm-opt changed the module")
	require.NotNil(t, opt.Manifest.Jobs[0].Profile, "the optimised module still runs its samples")
}

func TestBuild_ModuleBreaksABI(t *testing.T) {
	dir := writeBlueprint(t, "[blueprint]\nname = \"abi\"\n[blueprint.jobs.bad]\nsource = \"bad.wasm\"\n[blueprint.jobs.good]\nsource = \"good.wasm\"\n",
		map[string]string{"bad.wasm": "../../wasm-examples/wat/abiv99.wasm", "good.wasm": "../../wasm-examples/wat/echo.wasm"})
	res, err := Build(context.Background(), dir, Options{Runtime: newRuntime(t)})
	require.ErrorIs(t, err, ErrJobsFailed)
	assert.Contains(t, res.Jobs[0].Error, "declares Ferry ABI v99")
	assert.Empty(t, res.Jobs[1].Error)
	_, statErr := os.Stat(filepath.Join(dir, "build"))
	assert.True(t, os.IsNotExist(statErr), "no bundle, not even a directory")
}

// The example blueprint builds end to end in every language it uses.
func TestBuild_ExampleBlueprint(t *testing.T) {
	ctx := context.Background()
	for lang, d := range toolchain.Drivers() {
		if _, err := d.Fingerprint(ctx); err != nil {
			t.Skipf("%s toolchain missing (make deps installs it): %v", lang, err)
		}
	}
	out := filepath.Join(t.TempDir(), "example.bundle")
	res, err := Build(ctx, "../../wasm-examples/blueprint", Options{Out: out, CacheDir: t.TempDir(), Runtime: newRuntime(t), Runs: 2})
	require.NoError(t, err)
	langs := map[string]bool{}
	for _, j := range res.Manifest.Jobs {
		langs[j.Language] = true
	}
	assert.Equal(t, map[string]bool{"go": true, "c": true, "rust": true, "wat": true, "wasm": true}, langs)
	b, err := bundle.Open(out)
	require.NoError(t, err)
	for job, in := range map[string]string{"square": "12345", "reverse": "ferry", "wordcount": "a b\nc\n"} {
		wasm, err := b.Module(job)
		require.NoError(t, err)
		mod, err := newRuntime(t).Load(ctx, wasm, wasmrt.ModuleConfig{PoolSize: -1})
		require.NoError(t, err)
		r, err := mod.Invoke(ctx, []byte(in))
		require.NoError(t, err, job)
		assert.Equal(t, map[string]string{"square": "152399025", "reverse": "yrref", "wordcount": "2 3 6\n"}[job], string(r.Output), job)
	}
}
