package toolchain

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// rustPackages is what the Rust driver needs on Debian 12; the Makefile's
// test target installs it.
const rustPackages = "rustc cargo libstd-rust-dev-wasm32"

func requireRust(t *testing.T) {
	t.Helper()
	requireToolchain(t, "Rust toolchain for wasm", rustPackages, rustInstalled())
}

// rustInstalled probes once per test binary, with the real settings.
var rustInstalled = sync.OnceValue(func() error {
	_, err := findRust(context.Background())
	return err
})

// hideRust makes every toolchain look absent: no system cargo, an empty
// PATH.
func hideRust(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	setRustSystemBin(t, t.TempDir())
}

func setRustSystemBin(t *testing.T, dir string) {
	old := rustSystemBin
	rustSystemBin = dir
	t.Cleanup(func() { rustSystemBin = old })
}

// rustCrate writes a throwaway crate and returns the blueprint dir holding
// it as "crate".
func rustCrate(t *testing.T, cargoToml string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeJobFile(t, filepath.Join(dir, "crate", "Cargo.toml"), cargoToml)
	for name, src := range files {
		writeJobFile(t, filepath.Join(dir, "crate", name), src)
	}
	return dir
}

func TestRustDriver_ReverseReactor(t *testing.T) {
	requireRust(t)
	bp := nativeBlueprintDir(t)
	src := filepath.Join(bp, "jobs", "reverse-rust")
	lock, err := os.ReadFile(filepath.Join(src, "Cargo.lock"))
	require.NoError(t, err)

	// No shape: the cdylib crate makes it a reactor.
	wasm, err := (&RustDriver{}).Build(context.Background(), Request{
		Dir: bp, Source: "jobs/reverse-rust", WorkDir: t.TempDir(),
	})
	require.NoError(t, err)

	// The build ran on a copy: nothing appears in, or changes in, the source.
	_, err = os.Stat(filepath.Join(src, "target"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
	after, err := os.ReadFile(filepath.Join(src, "Cargo.lock"))
	require.NoError(t, err)
	assert.Equal(t, string(lock), string(after))

	big := strings.Repeat("0123456789", 10000)
	inputs := []string{"abc", "", big, "ferry"}
	// Reuse keeps one instance so the guest's buffers are reused and grown.
	outs := invokeBuilt(t, wasm, abi.Reactor, wasmrt.ModuleConfig{PoolSize: -1, Reuse: true}, inputs...)
	for i, in := range inputs {
		b := []byte(in)
		for l, r := 0, len(b)-1; l < r; l, r = l+1, r-1 {
			b[l], b[r] = b[r], b[l]
		}
		assert.Equal(t, string(b), outs[i], "input %d", i)
	}
	assert.Equal(t, "cba", outs[0])
}

// A crate with both a cdylib and a bin builds either shape; asking for one
// selects the target, and asking for nothing is ambiguous.
func TestRustDriver_ShapeSelectsTarget(t *testing.T) {
	requireRust(t)
	dir := rustCrate(t, `[package]
name = "both"
version = "0.1.0"
edition = "2021"

[lib]
name = "both_lib"
crate-type = ["cdylib"]
`, map[string]string{
		"src/lib.rs": `#[no_mangle] pub extern "C" fn ferry_abi_v1() {}
#[no_mangle] pub extern "C" fn ferry_alloc(_len: i32) -> i32 { 8 }
#[no_mangle] pub extern "C" fn ferry_run(_ptr: i32, _len: i32) -> i64 { 0 }
`,
		"src/main.rs": `use std::io::{Read, Write};
fn main() {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).unwrap();
    std::io::stdout().write_all(s.to_uppercase().as_bytes()).unwrap();
}
`,
	})
	d := &RustDriver{}
	ctx := context.Background()

	wasm, err := d.Build(ctx, Request{Dir: dir, Source: "crate", Shape: Command, WorkDir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, []string{"FERRY\n"}, invokeBuilt(t, wasm, abi.Command, wasmrt.ModuleConfig{PoolSize: -1}, "ferry\n"))

	// The second build shares nothing with the first (fresh WorkDir), as in
	// `ferry build`.
	wasm, err = d.Build(ctx, Request{Dir: dir, Source: "crate", Shape: Reactor, WorkDir: t.TempDir()})
	require.NoError(t, err)
	info, err := abi.Describe(wasm)
	require.NoError(t, err)
	assert.Equal(t, abi.Reactor, info.Shape)

	_, err = d.Build(ctx, Request{Dir: dir, Source: "crate", WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, "cargo built 2 modules (both.wasm, both_lib.wasm); keep one target or set the job's shape")
}

func TestRustDriver_CompileError(t *testing.T) {
	requireRust(t)
	dir := rustCrate(t, "[package]\nname = \"bad\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		map[string]string{"src/main.rs": "fn main() { let x: u32 = \"no\"; }\n"})

	_, err := (&RustDriver{}).Build(context.Background(), Request{Dir: dir, Source: "crate", WorkDir: t.TempDir()})
	require.ErrorIs(t, err, ErrBuild)
	var be *BuildError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, Rust, be.Language)
	assert.Contains(t, be.Output, "error[E0308]: mismatched types")
	assert.Contains(t, be.Output, "src/main.rs:1:")
}

// A reactor request for a crate with no cdylib fails in cargo with its own
// explanation; a lib that is not a cdylib builds no module at all.
func TestRustDriver_WrongCrateType(t *testing.T) {
	requireRust(t)
	d := &RustDriver{}
	ctx := context.Background()
	pkg := "[package]\nname = \"x\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"

	dir := rustCrate(t, pkg, map[string]string{"src/main.rs": "fn main() {}\n"})
	_, err := d.Build(ctx, Request{Dir: dir, Source: "crate", Shape: Reactor, WorkDir: t.TempDir()})
	require.ErrorIs(t, err, ErrBuild)
	assert.Contains(t, err.Error(), "no library targets found")

	dir = rustCrate(t, pkg, map[string]string{"src/lib.rs": "pub fn f() {}\n"})
	_, err = d.Build(ctx, Request{Dir: dir, Source: "crate", WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, `cargo built no .wasm: a reactor needs [lib] crate-type = ["cdylib"]`)
}

func TestRustDriver_BadSource(t *testing.T) {
	// Source problems are reported before any tool runs.
	dir := t.TempDir()
	d := &RustDriver{}
	ctx := context.Background()

	_, err := d.Build(ctx, Request{Dir: dir, Source: "jobs/missing", WorkDir: t.TempDir()})
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), "rust source jobs/missing")

	require.NoError(t, os.Mkdir(filepath.Join(dir, "nocargo"), 0o755))
	_, err = d.Build(ctx, Request{Dir: dir, Source: "nocargo", WorkDir: t.TempDir()})
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorContains(t, err, "want a crate directory with a Cargo.toml")

	writeJobFile(t, filepath.Join(dir, "lib.rs"), "")
	_, err = d.Build(ctx, Request{Dir: dir, Source: "lib.rs", WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, "want a crate directory")

	_, err = d.Build(ctx, Request{Dir: dir, Source: "nocargo", Shape: "library", WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, `unknown shape "library"`)
}

func TestRustDriver_MissingCargo(t *testing.T) {
	hideRust(t)
	d := &RustDriver{}
	dir := rustCrate(t, "[package]\nname = \"x\"\nversion = \"0.1.0\"\n", nil)

	_, err := d.Build(context.Background(), Request{Dir: dir, Source: "crate", WorkDir: t.TempDir()})
	require.ErrorIs(t, err, ErrMissing)
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, MissingError{Language: Rust, Tool: "cargo", Package: "cargo"}, *me)

	_, err = d.Fingerprint(context.Background())
	assert.ErrorAs(t, err, &me)
}

func TestRustDriver_MissingRustc(t *testing.T) {
	hideRust(t)
	// A cargo alone (any executable named cargo will do: it is not run).
	bin := t.TempDir()
	writeJobFile(t, filepath.Join(bin, "cargo"), "#!/bin/sh\nexit 1\n")
	require.NoError(t, os.Chmod(filepath.Join(bin, "cargo"), 0o755))
	setRustSystemBin(t, bin)

	_, err := (&RustDriver{}).Fingerprint(context.Background())
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, MissingError{Language: Rust, Tool: "rustc", Package: "rustc"}, *me)
}

// cargo and rustc without a wasm std (rustup's, without `rustup target
// add`) are not enough.
func TestRustDriver_MissingWasmStd(t *testing.T) {
	requireRust(t)
	old := rustSysroot
	rustSysroot = filepath.Join(t.TempDir(), "no-sysroot")
	t.Cleanup(func() { rustSysroot = old })

	_, err := (&RustDriver{}).Fingerprint(context.Background())
	require.ErrorIs(t, err, ErrMissing)
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, MissingError{Language: Rust, Tool: "rust std for wasm32-wasi", Package: "libstd-rust-dev-wasm32"}, *me)
	assert.Contains(t, err.Error(), "apt-get install libstd-rust-dev-wasm32")
}

// fakeRust installs a cargo and a rustc that only print a version, and a
// sysroot with a std for each of targets (an empty libstd rlib is enough for
// findRust), and returns the sysroot.
func fakeRust(t *testing.T, targets ...string) string {
	t.Helper()
	hideRust(t)
	bin := t.TempDir()
	for _, tool := range []string{"cargo", "rustc"} {
		writeJobFile(t, filepath.Join(bin, tool), "#!/bin/sh\necho '"+tool+" 9.9.9 (fake)'\n")
		require.NoError(t, os.Chmod(filepath.Join(bin, tool), 0o755))
	}
	setRustSystemBin(t, bin)
	root := t.TempDir()
	for _, target := range targets {
		writeJobFile(t, filepath.Join(root, "lib", "rustlib", target, "lib", "libstd-0123.rlib"), "")
	}
	old := rustSysroot
	rustSysroot = root
	t.Cleanup(func() { rustSysroot = old })
	return root
}

func TestRustDriver_PrefersWasip1(t *testing.T) {
	root := fakeRust(t, "wasm32-wasi", "wasm32-wasip1")
	writeJobFile(t, filepath.Join(root, "lib", "rustlib", "x86_64-unknown-linux-gnu", "bin", "rust-lld"), "")

	fp, err := (&RustDriver{}).Fingerprint(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "rustc 9.9.9 (fake); target wasm32-wasip1", fp)
}

func TestRustDriver_MissingLinker(t *testing.T) {
	fakeRust(t, "wasm32-wasi") // and PATH has no rust-lld

	_, err := (&RustDriver{}).Fingerprint(context.Background())
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "lld", me.Package)
	assert.Contains(t, me.Tool, "rust-lld")
}

// With the system directory hidden, a toolchain on PATH that has a wasm std
// is found (here: links to the installed one).
func TestRustDriver_FindsToolchainOnPath(t *testing.T) {
	requireRust(t)
	tc, err := findRust(context.Background())
	require.NoError(t, err)

	bin := t.TempDir()
	require.NoError(t, os.Symlink(tc.cargo, filepath.Join(bin, "cargo")))
	require.NoError(t, os.Symlink(tc.rustc, filepath.Join(bin, "rustc")))
	if lld, err := exec.LookPath("rust-lld"); err == nil { // Debian's; rustup's is in the sysroot
		require.NoError(t, os.Symlink(lld, filepath.Join(bin, "rust-lld")))
	}
	t.Setenv("PATH", bin)
	setRustSystemBin(t, t.TempDir())

	got, err := findRust(context.Background())
	require.NoError(t, err)
	assert.Equal(t, tc.target, got.target)
	assert.Equal(t, tc.version, got.version)
}

func TestRustDriver_Fingerprint(t *testing.T) {
	requireRust(t)
	fp, err := (&RustDriver{}).Fingerprint(context.Background())
	require.NoError(t, err)
	assert.Regexp(t, `^rustc \d+\.\d+\.\d+.*; target wasm32-wasi(p1)?$`, fp)
}

func TestRustEnv(t *testing.T) {
	got := rustEnv([]string{"HOME=/root", "CARGO_HOME=/x", "RUSTC_WRAPPER=sccache", "RUSTFLAGS=-Cx", "RUSTUP_TOOLCHAIN=stable", "PATH=/bin"})
	assert.Equal(t, []string{"HOME=/root", "RUSTUP_TOOLCHAIN=stable", "PATH=/bin"}, got)
}
