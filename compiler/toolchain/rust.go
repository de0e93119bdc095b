package toolchain

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// RustDriver builds a Cargo crate for WASI preview 1 with cargo, offline.
// The source is the crate directory (with Cargo.toml); the crate may use
// std and nothing else, because builds never touch the network.
//
// The crate decides the shape: a cdylib library is a reactor exporting the
// ABI functions itself (#[no_mangle] pub extern "C" fn ferry_run…), a bin
// is a command. A requested shape selects the matching target (--lib for a
// reactor, --bins for a command), so a crate with both can serve either.
//
// Several toolchains may be installed, and not all can target wasm: rustup's
// cargo (often first on PATH) has only the targets added with `rustup target
// add`, and cannot download one here. The driver therefore looks for a
// toolchain whose sysroot really holds a wasm std, preferring Debian's
// (/usr/bin/cargo, /usr/bin/rustc and libstd-rust-dev-wasm32).
type RustDriver struct{}

// rustSystemBin is where Debian's cargo and rustc are installed; tried
// before PATH. A variable so tests can hide it.
var rustSystemBin = "/usr/bin"

// rustSysroot, when set, replaces `rustc --print sysroot` for every
// candidate toolchain; tests point it at a missing directory.
var rustSysroot = ""

// rustTargets are the WASI preview 1 target names, newest first: rustc 1.78
// renamed wasm32-wasi to wasm32-wasip1 (and later dropped the old name),
// while Debian 12's rustc 1.63 knows only wasm32-wasi.
var rustTargets = []string{"wasm32-wasip1", "wasm32-wasi"}

// rustToolchain is a cargo and rustc pair with a wasm std.
type rustToolchain struct {
	cargo, rustc string
	target       string
	version      string // rustc --version
}

// Language returns Rust.
func (*RustDriver) Language() Language { return Rust }

// Fingerprint is the chosen rustc's version and the target it builds for.
func (*RustDriver) Fingerprint(ctx context.Context) (string, error) {
	tc, err := findRust(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s; target %s", tc.version, tc.target), nil
}

// Build compiles the crate at req.Source and returns its one .wasm.
func (*RustDriver) Build(ctx context.Context, req Request) ([]byte, error) {
	args := []string{"build", "--release", "--offline"}
	switch req.Shape {
	case "":
	case Reactor:
		args = append(args, "--lib")
	case Command:
		args = append(args, "--bins")
	default:
		return nil, fmt.Errorf("rust: unknown shape %q (want %s or %s)", req.Shape, Reactor, Command)
	}
	src := filepath.Join(req.Dir, req.Source)
	if st, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("rust source %s: %w", req.Source, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("rust source %s: want a crate directory with a Cargo.toml", req.Source)
	}
	if _, err := os.Stat(filepath.Join(src, "Cargo.toml")); err != nil {
		return nil, fmt.Errorf("rust source %s: want a crate directory with a Cargo.toml: %w", req.Source, err)
	}

	tc, err := findRust(ctx)
	if err != nil {
		return nil, err
	}

	// Build a copy: cargo writes Cargo.lock next to Cargo.toml when it is
	// missing, and would pick up a workspace above the source directory.
	// Neither belongs in the user's tree (nor in the build cache's key).
	crate := filepath.Join(req.WorkDir, "crate")
	if err := copyCrate(src, crate); err != nil {
		return nil, fmt.Errorf("rust source %s: copy to work dir: %w", req.Source, err)
	}
	targetDir := filepath.Join(req.WorkDir, "target")
	env := append(rustEnv(os.Environ()),
		// A private CARGO_HOME keeps ~/.cargo (registry, config, credentials)
		// out of the build; with no dependencies it stays empty.
		"CARGO_HOME="+filepath.Join(req.WorkDir, "cargo-home"),
		"CARGO_TARGET_DIR="+targetDir,
		"CARGO_NET_OFFLINE=true",
		"CARGO_TERM_COLOR=never",
		// cargo runs whatever rustc it finds on PATH unless told; that may
		// be rustup's, which has no wasm std.
		"RUSTC="+tc.rustc,
	)
	args = append(args, "--target", tc.target)
	if err := run(ctx, Rust, crate, env, tc.cargo, args...); err != nil {
		return nil, err
	}

	// cargo puts final artifacts at the top of release/ (deps/ holds
	// intermediate copies): name.wasm for a bin, name_with_underscores.wasm
	// for a cdylib.
	rel := filepath.Join(targetDir, tc.target, "release")
	mods, err := filepath.Glob(filepath.Join(rel, "*.wasm"))
	if err != nil {
		return nil, fmt.Errorf("rust: list modules: %w", err)
	}
	sort.Strings(mods)
	switch len(mods) {
	case 1:
	case 0:
		return nil, fmt.Errorf("rust source %s: cargo built no .wasm: a reactor needs [lib] crate-type = [\"cdylib\"], a command a bin target", req.Source)
	default:
		names := make([]string, len(mods))
		for i, m := range mods {
			names[i] = filepath.Base(m)
		}
		return nil, fmt.Errorf("rust source %s: cargo built %d modules (%s); keep one target or set the job's shape", req.Source, len(mods), strings.Join(names, ", "))
	}
	wasm, err := os.ReadFile(mods[0])
	if err != nil {
		return nil, fmt.Errorf("rust: read compiled module: %w", err)
	}
	return wasm, nil
}

// findRust returns the first cargo and rustc pair whose sysroot has a std
// for a WASI target: Debian's in rustSystemBin first, then PATH's. The
// *MissingError names what is absent: cargo, rustc, or the wasm std.
func findRust(ctx context.Context) (*rustToolchain, error) {
	type pair struct{ cargo, rustc string }
	var cands []pair
	var haveCargo, haveRustc bool
	seen := map[string]bool{}
	add := func(cargo, rustc string) {
		haveCargo = haveCargo || cargo != ""
		haveRustc = haveRustc || rustc != ""
		if cargo == "" || rustc == "" {
			return
		}
		// /bin is /usr/bin on merged-/usr systems; try each real pair once.
		key := resolvedPath(cargo) + "\x00" + resolvedPath(rustc)
		if !seen[key] {
			seen[key] = true
			cands = append(cands, pair{cargo, rustc})
		}
	}
	sysCargo, sysRustc := filepath.Join(rustSystemBin, "cargo"), filepath.Join(rustSystemBin, "rustc")
	add(executableAt(sysCargo), executableAt(sysRustc))
	pathCargo, _ := exec.LookPath("cargo")
	pathRustc, _ := exec.LookPath("rustc")
	add(pathCargo, pathRustc)

	switch {
	case !haveCargo:
		return nil, &MissingError{Language: Rust, Tool: "cargo", Package: "cargo"}
	case !haveRustc:
		return nil, &MissingError{Language: Rust, Tool: "rustc", Package: "rustc"}
	}
	for _, c := range cands {
		root := rustSysroot
		if root == "" {
			// A rustup proxy with no default toolchain fails here; that
			// candidate simply has no std.
			r, err := version(ctx, c.rustc, "--print", "sysroot")
			if err != nil {
				continue
			}
			root = r
		}
		for _, t := range rustTargets {
			if hasRustStd(filepath.Join(root, "lib", "rustlib", t, "lib")) {
				// Pin the rustc inside that sysroot rather than a rustup
				// proxy, which could pick another toolchain in the crate's
				// directory (rust-toolchain.toml).
				if r := executableAt(filepath.Join(root, "bin", "rustc")); r != "" && rustSysroot == "" {
					c.rustc = r
				}
				if !hasRustLinker(root) {
					return nil, &MissingError{Language: Rust, Tool: "rust-lld (the wasm linker rustc runs)", Package: "lld"}
				}
				v, err := version(ctx, c.rustc, "--version")
				if err != nil {
					return nil, fmt.Errorf("rust toolchain: %w", err)
				}
				return &rustToolchain{cargo: c.cargo, rustc: c.rustc, target: t, version: v}, nil
			}
		}
	}
	return nil, &MissingError{Language: Rust, Tool: "rust std for wasm32-wasi", Package: "libstd-rust-dev-wasm32"}
}

// hasRustStd reports whether dir holds a compiled std (libstd-<hash>.rlib):
// an empty or partial target directory is not enough to build.
func hasRustStd(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "libstd-*.rlib"))
	return len(m) > 0
}

// hasRustLinker reports whether rustc can find rust-lld, the linker of its
// wasm targets: rustup ships it in the sysroot's host bin directory, Debian
// as /usr/bin/rust-lld, a symlink to lld-14 that the rustc package only
// recommends. Without it cargo fails with "linker `rust-lld` not found",
// which does not say which package to install.
func hasRustLinker(sysroot string) bool {
	if m, _ := filepath.Glob(filepath.Join(sysroot, "lib", "rustlib", "*", "bin", "rust-lld")); len(m) > 0 {
		return true
	}
	_, err := exec.LookPath("rust-lld") // fails on a dangling symlink too
	return err == nil
}

// rustEnv drops variables that would redirect or change the build behind
// the driver's back: a RUSTC_WRAPPER such as sccache, user RUSTFLAGS, or
// CARGO_* settings (target, home, profile) from the caller's shell. The
// driver sets the ones it needs itself. RUSTUP_* stays: it chose the
// toolchain findRust inspected.
func rustEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CARGO_") || strings.HasPrefix(k, "RUSTC") ||
			k == "RUSTFLAGS" || k == "RUSTDOCFLAGS" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// copyCrate copies the crate's files to dst, skipping build output and VCS
// metadata at the top level. Symlinks are followed.
func copyCrate(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "target" || rel == ".git" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return nil // sockets, fifos, links to directories: not sources
		}
		return copyCrateFile(p, filepath.Join(dst, rel))
	})
}

func copyCrateFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// executableAt returns p when it is an executable file, "" otherwise.
func executableAt(p string) string {
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return ""
	}
	return p
}

func resolvedPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
