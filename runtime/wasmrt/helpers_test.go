package wasmrt

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/state"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

func wat(t testing.TB, name string) []byte {
	t.Helper()
	b, err := examples.WAT(name)
	require.NoError(t, err)
	return b
}

func goJob(t testing.TB, name string, shape examples.Shape) []byte {
	t.Helper()
	b, err := examples.BuildGo(context.Background(), name, shape)
	require.NoError(t, err)
	return b
}

// newRuntime starts a runtime for a test. Unless the test chose an engine,
// it runs on the one named by FERRY_TEST_ENGINE (default wazero), so the
// suite can be run against every engine:
//
//	FERRY_TEST_ENGINE=wasmtime go test -tags wasmtime ./runtime/wasmrt
func newRuntime(t testing.TB, cfg Config) *Runtime {
	t.Helper()
	if cfg.Engine == "" {
		cfg.Engine = testEngine()
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = testCacheDir(t)
	}
	if cfg.State == nil {
		cfg.State = state.NewMemory()
	}
	r, err := New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close(context.Background())) })
	return r
}

func load(t testing.TB, r *Runtime, wasm []byte, cfg ModuleConfig) *Module {
	t.Helper()
	m, err := r.Load(context.Background(), wasm, cfg)
	require.NoError(t, err)
	return m
}

// testEngine is the engine FERRY_TEST_ENGINE names, or "" for the default.
func testEngine() string { return os.Getenv("FERRY_TEST_ENGINE") }

// testCacheDir is shared by every test runtime, across runs: compiling the Go
// examples takes seconds under the race detector, reading them back does not.
func testCacheDir(t testing.TB) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "ferry", "test-compile-cache")
}
