// Package toolchain turns job sources into WebAssembly modules: one Driver
// per language (Go, Rust, C, WAT, prebuilt .wasm). Drivers run the real
// compilers as subprocesses; a missing compiler is a *MissingError naming
// the Debian package that provides it.
//
// Drivers do not cache; compiler/build keys its cache on the sources and the
// driver's Fingerprint.
package toolchain

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Language names a source language, as in blueprint.toml.
type Language string

// Languages.
const (
	Go   Language = "go"
	Rust Language = "rust"
	C    Language = "c"
	WAT  Language = "wat"
	Wasm Language = "wasm"
)

// Shape is the module shape to build (docs/abi.md).
type Shape string

// Shapes.
const (
	Reactor Shape = "reactor"
	Command Shape = "command"
)

// Request is one job to build.
type Request struct {
	// Dir is the blueprint directory (absolute); Source is relative to it:
	// a file or a directory, depending on the language.
	Dir    string
	Source string
	// Shape is the requested shape; empty lets the driver choose (Go:
	// reactor; others: whatever the source exports).
	Shape Shape
	// WorkDir is a private scratch directory for this build.
	WorkDir string
}

// Driver builds one language.
type Driver interface {
	Language() Language
	// Build compiles the request. On a compiler failure the error is a
	// *BuildError holding the compiler's output.
	Build(ctx context.Context, req Request) ([]byte, error)
	// Fingerprint identifies the toolchain (name and version), for cache
	// keys: a new compiler version must rebuild.
	Fingerprint(ctx context.Context) (string, error)
}

// ErrMissing is wrapped by *MissingError.
var ErrMissing = errors.New("toolchain not installed")

// MissingError reports a compiler or library that is not installed.
type MissingError struct {
	Language Language
	Tool     string
	// Package is the Debian package that installs it.
	Package string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s toolchain: %s not found (install the Debian package %s: apt-get install %s)", e.Language, e.Tool, e.Package, e.Package)
}

// Unwrap returns ErrMissing.
func (e *MissingError) Unwrap() error { return ErrMissing }

// ErrBuild is wrapped by *BuildError.
var ErrBuild = errors.New("build failed")

// BuildError is a compiler that ran and failed.
type BuildError struct {
	Language Language
	Command  string
	Output   string // the compiler's combined output, trimmed
	Err      error
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("%s build failed: %s: %v\n%s", e.Language, e.Command, e.Err, e.Output)
}

// Unwrap returns ErrBuild and the cause.
func (e *BuildError) Unwrap() []error { return []error{ErrBuild, e.Err} }

// Drivers returns a driver for every language.
func Drivers() map[Language]Driver {
	ds := map[Language]Driver{}
	for _, d := range []Driver{&GoDriver{}, &WATDriver{}, &WasmDriver{}, &CDriver{}, &RustDriver{}} {
		ds[d.Language()] = d
	}
	return ds
}

// run runs a command in dir and turns failures into *BuildError.
func run(ctx context.Context, lang Language, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &BuildError{Language: lang, Command: name + " " + strings.Join(args, " "), Output: strings.TrimSpace(string(out)), Err: err}
	}
	return nil
}

// lookPath finds tool or returns a *MissingError.
func lookPath(lang Language, tool, pkg string) (string, error) {
	p, err := exec.LookPath(tool)
	if err != nil {
		return "", &MissingError{Language: lang, Tool: tool, Package: pkg}
	}
	return p, nil
}

// version runs `tool args` and returns its first output line.
func version(ctx context.Context, tool string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", tool, strings.Join(args, " "), err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}
