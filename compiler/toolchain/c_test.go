package toolchain

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// cPackages is what the C driver needs on Debian 12; the Makefile's test
// target installs it.
const cPackages = "clang lld wasi-libc libclang-rt-14-dev-wasm32"

// nativeBlueprintDir is the example blueprint whose jobs these tests build.
func nativeBlueprintDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "wasm-examples", "blueprint"))
	require.NoError(t, err)
	return dir
}

// requireC skips the test when the C toolchain is not installed, naming the
// packages, so `go test` passes on a machine with only Go.
func requireC(t *testing.T) { t.Helper(); requireToolchain(t, "C toolchain", cPackages, cInstalled()) }

// requireToolchain skips when probeErr says a toolchain is missing (naming
// the packages that install it) and fails on any other probe error.
func requireToolchain(t *testing.T, what, packages string, probeErr error) {
	t.Helper()
	if probeErr != nil {
		if errors.Is(probeErr, ErrMissing) {
			t.Skipf("%s not installed (apt-get install %s): %v", what, packages, probeErr)
		}
		require.NoError(t, probeErr)
	}
}

// cInstalled probes the toolchain once per test binary: the probe runs
// clang twice, and every C test asks.
var cInstalled = sync.OnceValue(func() error {
	_, err := findC(context.Background())
	return err
})

// invokeBuilt checks wasm has the wanted shape, loads it into a real
// runtime and runs each input through it, returning the outputs.
func invokeBuilt(t *testing.T, wasm []byte, shape abi.Shape, cfg wasmrt.ModuleConfig, inputs ...string) []string {
	t.Helper()
	info, err := abi.Describe(wasm)
	require.NoError(t, err)
	require.Equal(t, shape, info.Shape)
	if shape == abi.Reactor {
		assert.Equal(t, abi.Version, info.Version)
	}
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close(ctx) })
	mod, err := rt.Load(ctx, wasm, cfg)
	require.NoError(t, err)
	defer mod.Close(ctx)
	var outs []string
	for _, in := range inputs {
		res, err := mod.Invoke(ctx, []byte(in))
		require.NoError(t, err, "input %.40q", in)
		outs = append(outs, string(res.Output))
	}
	return outs
}

func fnvHex(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return fmt.Sprintf("%016x", h.Sum64())
}

func TestCDriver_ChecksumReactor(t *testing.T) {
	requireC(t)
	wasm, err := (&CDriver{}).Build(context.Background(), Request{
		Dir: nativeBlueprintDir(t), Source: "jobs/checksum-c", Shape: Reactor, WorkDir: t.TempDir(),
	})
	require.NoError(t, err)

	big := strings.Repeat("the quick brown fox jumps over the lazy dog\n", 5000)
	inputs := []string{"hello", "", big, "hello"}
	// Reuse keeps one instance, so a big input after a small one exercises
	// the guest's buffer growing and being reused.
	outs := invokeBuilt(t, wasm, abi.Reactor, wasmrt.ModuleConfig{PoolSize: -1, Reuse: true}, inputs...)
	for i, in := range inputs {
		assert.Equal(t, fnvHex(in), outs[i], "input %d", i)
	}
	assert.Equal(t, "a430d84680aabd0b", outs[0]) // FNV-1a 64 of "hello", a known vector
}

func TestCDriver_WordcountCommand(t *testing.T) {
	requireC(t)
	// No shape: C defaults to a command.
	wasm, err := (&CDriver{}).Build(context.Background(), Request{
		Dir: nativeBlueprintDir(t), Source: "jobs/wordcount-c", WorkDir: t.TempDir(),
	})
	require.NoError(t, err)
	outs := invokeBuilt(t, wasm, abi.Command, wasmrt.ModuleConfig{PoolSize: -1},
		"a b\nc\n", "", "  one\ttwo  three")
	assert.Equal(t, []string{"2 3 6\n", "0 0 0\n", "0 3 16\n"}, outs)
}

func TestCDriver_DirectoryOfFiles(t *testing.T) {
	requireC(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "job")
	require.NoError(t, os.Mkdir(src, 0o755))
	writeJobFile(t, filepath.Join(src, "main.c"), "#include <stdio.h>\nint twice(int);\nint main(void) { printf(\"%d\\n\", twice(21)); return 0; }\n")
	writeJobFile(t, filepath.Join(src, "twice.c"), "int twice(int x) { return 2 * x; }\n")
	writeJobFile(t, filepath.Join(src, "README"), "not C\n")

	wasm, err := (&CDriver{}).Build(context.Background(), Request{Dir: dir, Source: "job", Shape: Command, WorkDir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, []string{"42\n"}, invokeBuilt(t, wasm, abi.Command, wasmrt.ModuleConfig{PoolSize: -1}, ""))
}

func TestCDriver_SyntaxError(t *testing.T) {
	requireC(t)
	dir := t.TempDir()
	writeJobFile(t, filepath.Join(dir, "bad.c"), "int main(void) { return 0 }\n")

	_, err := (&CDriver{}).Build(context.Background(), Request{Dir: dir, Source: "bad.c", WorkDir: t.TempDir()})
	require.ErrorIs(t, err, ErrBuild)
	var be *BuildError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, C, be.Language)
	// The compiler's own diagnostic, with a path relative to the source.
	assert.Contains(t, be.Output, "bad.c:1:")
	assert.Contains(t, be.Output, "error: expected ';'")
}

func TestCDriver_BadSource(t *testing.T) {
	// Source problems are reported before any tool runs, so these need no
	// toolchain.
	dir := t.TempDir()
	d := &CDriver{}
	ctx := context.Background()

	_, err := d.Build(ctx, Request{Dir: dir, Source: "jobs/missing.c", WorkDir: t.TempDir()})
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), "c source jobs/missing.c")

	require.NoError(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	_, err = d.Build(ctx, Request{Dir: dir, Source: "empty", WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, "no .c files")

	writeJobFile(t, filepath.Join(dir, "job.cpp"), "int main() {}\n")
	_, err = d.Build(ctx, Request{Dir: dir, Source: "job.cpp", WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, "want a .c file")

	writeJobFile(t, filepath.Join(dir, "ok.c"), "int main(void) { return 0; }\n")
	_, err = d.Build(ctx, Request{Dir: dir, Source: "ok.c", Shape: "library", WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, `unknown shape "library"`)
}

func TestCDriver_MissingClang(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	writeJobFile(t, filepath.Join(dir, "ok.c"), "int main(void) { return 0; }\n")
	d := &CDriver{}

	_, err := d.Build(context.Background(), Request{Dir: dir, Source: "ok.c", WorkDir: t.TempDir()})
	require.ErrorIs(t, err, ErrMissing)
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, MissingError{Language: C, Tool: "clang", Package: "clang"}, *me)

	_, err = d.Fingerprint(context.Background())
	assert.ErrorAs(t, err, &me)
}

func TestCDriver_MissingSysroot(t *testing.T) {
	requireC(t)
	old := cSysroots
	cSysroots = []string{filepath.Join(t.TempDir(), "no-sysroot")}
	t.Cleanup(func() { cSysroots = old })

	_, err := (&CDriver{}).Fingerprint(context.Background())
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "wasi-libc", me.Package)
	assert.Contains(t, err.Error(), "apt-get install wasi-libc")
}

func TestCDriver_Fingerprint(t *testing.T) {
	requireC(t)
	fp, err := (&CDriver{}).Fingerprint(context.Background())
	require.NoError(t, err)
	assert.Contains(t, fp, "clang version")
	assert.Contains(t, fp, "sysroot /")
	assert.Equal(t, "libclang-rt-14-dev-wasm32", builtinsPackage("Debian clang version 14.0.6"))
	assert.Equal(t, "libclang-rt-19-dev-wasm32", builtinsPackage("Debian clang version 19.1.7 (3+b1)"))
}

func writeJobFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}
