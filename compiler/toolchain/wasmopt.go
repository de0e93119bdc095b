package toolchain

import (
	"context"
	"os"
	"path/filepath"
)

// wasmOptFeatures are the proposals wazero implements (its CoreFeaturesV2).
// Binaryen must be told: without them it refuses Go's modules (sign
// extension, saturating conversions, bulk memory) as invalid, and with more
// it could emit instructions the engines here do not run.
var wasmOptFeatures = []string{
	"--enable-mutable-globals", "--enable-sign-ext", "--enable-nontrapping-float-to-int",
	"--enable-bulk-memory", "--enable-multivalue", "--enable-reference-types", "--enable-simd",
}

// OptimizerFingerprint identifies wasm-opt, for build cache keys.
func OptimizerFingerprint(ctx context.Context) (string, error) {
	tool, err := lookPath(Wasm, "wasm-opt", "binaryen")
	if err != nil {
		return "", err
	}
	return version(ctx, tool, "--version")
}

// Optimize runs binaryen's wasm-opt -O2 over a module. It is opt-in (ferry
// build --wasm-opt): it shrinks and speeds up C and Rust modules, but takes
// ~10 s on a 2.8 MB Go module for a 2% size gain.
func Optimize(ctx context.Context, wasm []byte, workDir string) ([]byte, error) {
	tool, err := lookPath(Wasm, "wasm-opt", "binaryen")
	if err != nil {
		return nil, err
	}
	in, out := filepath.Join(workDir, "opt-in.wasm"), filepath.Join(workDir, "opt-out.wasm")
	if err := os.WriteFile(in, wasm, 0o644); err != nil {
		return nil, err
	}
	args := append([]string{"-O2"}, wasmOptFeatures...)
	args = append(args, in, "-o", out)
	if err := run(ctx, Wasm, workDir, nil, tool, args...); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}
