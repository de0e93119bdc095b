package toolchain

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// CDriver builds C with clang for wasm32-wasi against wasi-libc. The source
// is one .c file or a directory whose *.c files are compiled together.
//
// The default shape is a command: a normal main becomes `_start`, and stdin,
// stdout and exit status are the job's input, output and result. Shape
// reactor links with -mexec-model=reactor (crt1-reactor.o, which exports
// `_initialize` instead of `_start`); the source then exports the ABI
// functions itself with __attribute__((export_name("..."))).
type CDriver struct{}

// cTarget is clang's triple for WASI preview 1. clang 14 (Debian 12) knows
// only this spelling; wasm32-wasip1 arrived later.
const cTarget = "wasm32-wasi"

// cSysroots are where wasi-libc may be installed, in order. Debian's
// wasi-libc package uses the multiarch layout under /usr
// (/usr/lib/wasm32-wasi/libc.a, /usr/include/wasm32-wasi), not the
// /usr/share/wasi-sysroot of wasi-sdk; the others cover wasi-sdk installs.
// A variable so tests can point it at a missing directory.
var cSysroots = []string{"/usr", "/usr/share/wasi-sysroot", "/opt/wasi-sdk/share/wasi-sysroot"}

// cToolchain is a resolved, complete C toolchain.
type cToolchain struct {
	clang    string // path to clang
	version  string // first line of clang --version
	sysroot  string // wasi-libc sysroot passed as --sysroot
	builtins string // libclang_rt.builtins-wasm32.a
}

// Language returns C.
func (*CDriver) Language() Language { return C }

// Fingerprint is clang's version, the sysroot and builtins it links against,
// and wasm-opt's version: clang runs wasm-opt on its output at -O2 whenever
// one is on PATH, so installing binaryen changes the module bytes.
func (*CDriver) Fingerprint(ctx context.Context) (string, error) {
	tc, err := findC(ctx)
	if err != nil {
		return "", err
	}
	wasmOpt := "none"
	if p, err := exec.LookPath("wasm-opt"); err == nil {
		if v, err := version(ctx, p, "--version"); err == nil {
			wasmOpt = v
		}
	}
	return fmt.Sprintf("%s; target %s; sysroot %s; builtins %s; wasm-opt %s", tc.version, cTarget, tc.sysroot, tc.builtins, wasmOpt), nil
}

// Build compiles req into one module.
func (*CDriver) Build(ctx context.Context, req Request) ([]byte, error) {
	var execModel []string
	switch req.Shape {
	case "", Command:
	case Reactor:
		execModel = []string{"-mexec-model=reactor"}
	default:
		return nil, fmt.Errorf("c: unknown shape %q (want %s or %s)", req.Shape, Reactor, Command)
	}
	dir, files, err := cSources(req)
	if err != nil {
		return nil, err
	}
	tc, err := findC(ctx)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(req.WorkDir, "module.wasm")
	args := []string{
		"--target=" + cTarget,
		"--sysroot=" + tc.sysroot,
		"-O2",
		// wasi-libc ships with DWARF; a job module has no use for it, and it
		// makes the module four to five times larger.
		"-Wl,--strip-debug",
		"-o", out,
	}
	args = append(args, execModel...)
	args = append(args, files...)
	// Running in the source directory with relative file names makes the
	// compiler's diagnostics read "checksum.c:12:3: error: ...", which is
	// what the user needs to see, and keeps WorkDir paths out of them.
	if err := run(ctx, C, dir, nil, tc.clang, args...); err != nil {
		return nil, err
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("c: read compiled module: %w", err)
	}
	return wasm, nil
}

// cSources returns the directory to compile in and the .c files in it
// (relative names, sorted so the link order and the module are stable).
func cSources(req Request) (string, []string, error) {
	src := filepath.Join(req.Dir, req.Source)
	st, err := os.Stat(src)
	if err != nil {
		return "", nil, fmt.Errorf("c source %s: %w", req.Source, err)
	}
	if !st.IsDir() {
		if filepath.Ext(src) != ".c" {
			return "", nil, fmt.Errorf("c source %s: want a .c file or a directory of .c files", req.Source)
		}
		return filepath.Dir(src), []string{filepath.Base(src)}, nil
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return "", nil, fmt.Errorf("c source %s: %w", req.Source, err)
	}
	var files []string
	for _, e := range ents {
		if !e.IsDir() && filepath.Ext(e.Name()) == ".c" {
			files = append(files, e.Name())
		}
	}
	if len(files) == 0 {
		return "", nil, fmt.Errorf("c source %s: no .c files in the directory", req.Source)
	}
	sort.Strings(files)
	return src, files, nil
}

// findC resolves clang, its wasm linker, the wasi-libc sysroot and the
// compiler-rt builtins, or returns a *MissingError for the first piece that
// is absent. Each is checked up front because clang's own errors for them
// ("unable to execute command: Executable "wasm-ld" doesn't exist",
// "cannot open crt1-command.o") do not say which package to install.
func findC(ctx context.Context) (*cToolchain, error) {
	clang, err := lookPath(C, "clang", "clang")
	if err != nil {
		return nil, err
	}
	v, err := version(ctx, clang, "--version")
	if err != nil {
		return nil, fmt.Errorf("c toolchain: %w", err)
	}
	tc := &cToolchain{clang: clang, version: v}

	// clang runs the wasm-ld next to its real binary
	// (/usr/lib/llvm-14/bin/wasm-ld) and falls back to PATH. Checking both
	// here saves a `clang -print-prog-name` subprocess on every build.
	if !isRegularFile(filepath.Join(filepath.Dir(resolvedPath(clang)), "wasm-ld")) {
		if _, err := lookPath(C, "wasm-ld", "lld"); err != nil {
			return nil, err
		}
	}

	for _, root := range cSysroots {
		if isRegularFile(filepath.Join(root, "lib", cTarget, "libc.a")) {
			tc.sysroot = root
			break
		}
	}
	if tc.sysroot == "" {
		return nil, &MissingError{Language: C, Tool: "wasi-libc sysroot (lib/" + cTarget + "/libc.a under " + strings.Join(cSysroots, ", ") + ")", Package: "wasi-libc"}
	}

	// compiler-rt's builtins (64-bit multiply, float conversions…) are
	// linked into every module; clang names the file it will use.
	tc.builtins, err = clangPrint(ctx, clang, "-print-libgcc-file-name")
	if err != nil {
		return nil, err
	}
	if !isRegularFile(tc.builtins) {
		return nil, &MissingError{Language: C, Tool: "compiler-rt builtins for wasm32 (" + tc.builtins + ")", Package: builtinsPackage(v)}
	}
	return tc, nil
}

// clangPrint runs one of clang's -print-* queries for the wasm target.
func clangPrint(ctx context.Context, clang, flag string) (string, error) {
	out, err := exec.CommandContext(ctx, clang, "--target="+cTarget, flag).Output()
	if err != nil {
		return "", fmt.Errorf("c toolchain: %s %s: %w", clang, flag, err)
	}
	return strings.TrimSpace(string(out)), nil
}

var clangMajor = regexp.MustCompile(`clang version (\d+)\.`)

// builtinsPackage names the Debian package with the wasm32 builtins for this
// clang: the package carries clang's major version.
func builtinsPackage(clangVersion string) string {
	major := "14"
	if m := clangMajor.FindStringSubmatch(clangVersion); m != nil {
		major = m[1]
	}
	return "libclang-rt-" + major + "-dev-wasm32"
}

func isRegularFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
