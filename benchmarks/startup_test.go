package benchmarks

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	examples "github.com/ferryrun/ferry/wasm-examples"
)

// BenchmarkProcessStart runs `ferry run` as a new process on the Go
// incredible-squaring job: once with no compilation cache (every process
// compiles) and once with a warm cache directory (what a second process
// start costs).
func BenchmarkProcessStart(b *testing.B) {
	if testing.Short() {
		b.Skip("builds binaries")
	}
	ctx := context.Background()
	dir := b.TempDir()
	ferry := buildFerry(b, dir)
	wasm, err := examples.BuildGo(ctx, "incredible-squaring", examples.Reactor)
	if err != nil {
		b.Fatal(err)
	}
	mod := filepath.Join(dir, "squaring.wasm")
	if err := os.WriteFile(mod, wasm, 0o644); err != nil {
		b.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	run := func(b *testing.B, extra ...string) {
		args := append([]string{"run", mod, "--input", "3", "--state", "memory", "-q"}, extra...)
		out, err := exec.CommandContext(ctx, ferry, args...).CombinedOutput()
		if err != nil || string(out) != "9" {
			b.Fatalf("ferry run: %v: %s", err, out)
		}
	}
	run(b, "--cache-dir", cache) // warm the cache
	b.Run("no-cache", func(b *testing.B) {
		for b.Loop() {
			run(b, "--no-cache")
		}
	})
	b.Run("cache", func(b *testing.B) {
		for b.Loop() {
			run(b, "--cache-dir", cache)
		}
	})
}

// buildFerry builds cmd/ferry into dir and returns the binary's path.
func buildFerry(b *testing.B, dir string) string {
	b.Helper()
	ferry := filepath.Join(dir, "ferry")
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", ferry, "./cmd/ferry")
	build.Dir = filepath.Join(filepath.Dir(file), "..")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build ferry: %v\n%s", err, out)
	}
	return ferry
}
