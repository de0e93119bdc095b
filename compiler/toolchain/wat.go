package toolchain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// WATDriver assembles WebAssembly text with wabt's wat2wasm.
type WATDriver struct{}

// Language implements Driver.
func (*WATDriver) Language() Language { return WAT }

// Fingerprint implements Driver.
func (*WATDriver) Fingerprint(ctx context.Context) (string, error) {
	tool, err := lookPath(WAT, "wat2wasm", "wabt")
	if err != nil {
		return "", err
	}
	v, err := version(ctx, tool, "--version")
	return "wat2wasm " + v, err
}

// Build implements Driver.
func (*WATDriver) Build(ctx context.Context, req Request) ([]byte, error) {
	tool, err := lookPath(WAT, "wat2wasm", "wabt")
	if err != nil {
		return nil, err
	}
	src := filepath.Join(req.Dir, req.Source)
	if st, err := os.Stat(src); err != nil || st.IsDir() {
		return nil, fmt.Errorf("wat source %s: want a .wat file", req.Source)
	}
	out := filepath.Join(req.WorkDir, "job.wasm")
	if err := run(ctx, WAT, req.Dir, nil, tool, src, "-o", out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// WasmDriver accepts a prebuilt module as is.
type WasmDriver struct{}

// Language implements Driver.
func (*WasmDriver) Language() Language { return Wasm }

// Fingerprint implements Driver.
func (*WasmDriver) Fingerprint(context.Context) (string, error) { return "prebuilt", nil }

// maxModule bounds what Ferry reads as a module.
const maxModule = 256 << 20

// Build implements Driver.
func (*WasmDriver) Build(_ context.Context, req Request) ([]byte, error) {
	src := filepath.Join(req.Dir, req.Source)
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("wasm source %s: %w", req.Source, err)
	}
	if st.IsDir() || st.Size() > maxModule {
		return nil, fmt.Errorf("wasm source %s: want a .wasm file of at most 256 MiB", req.Source)
	}
	return os.ReadFile(src)
}
