package toolchain

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

func TestGoDriver_Shapes(t *testing.T) {
	if _, err := (&GoDriver{}).Fingerprint(context.Background()); err != nil {
		t.Skip(err)
	}
	dir := nativeBlueprintDir(t)
	for _, tc := range []struct {
		shape Shape
		want  abi.Shape
	}{{"", abi.Reactor}, {Reactor, abi.Reactor}, {Command, abi.Command}} {
		t.Run(string(tc.want)+"/"+string(tc.shape), func(t *testing.T) {
			wasm, err := (&GoDriver{}).Build(context.Background(), Request{Dir: dir, Source: "jobs/square-go", Shape: tc.shape, WorkDir: t.TempDir()})
			require.NoError(t, err)
			out := invokeBuilt(t, wasm, tc.want, wasmrt.ModuleConfig{PoolSize: -1}, "12345")
			assert.Equal(t, []string{"152399025"}, out)
		})
	}
}

func TestGoDriver_Errors(t *testing.T) {
	ctx := context.Background()
	if _, err := (&GoDriver{}).Fingerprint(ctx); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.26\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { nope }\n"), 0o644))
	_, err := (&GoDriver{}).Build(ctx, Request{Dir: dir, Source: ".", WorkDir: t.TempDir()})
	var be *BuildError
	require.ErrorAs(t, err, &be)
	assert.ErrorIs(t, err, ErrBuild)
	assert.Contains(t, be.Output, "main.go:3", "the compiler's output is kept")

	_, err = (&GoDriver{}).Build(ctx, Request{Dir: dir, Source: "missing", WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, "go source missing")

	t.Setenv("PATH", t.TempDir())
	_, err = (&GoDriver{}).Fingerprint(ctx)
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "golang-go", me.Package)
}

func TestWATDriver(t *testing.T) {
	ctx := context.Background()
	if _, err := (&WATDriver{}).Fingerprint(ctx); err != nil {
		t.Skip(err)
	}
	dir := nativeBlueprintDir(t)
	wasm, err := (&WATDriver{}).Build(ctx, Request{Dir: dir, Source: "jobs/echo.wat", WorkDir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, []string{"hi"}, invokeBuilt(t, wasm, abi.Reactor, wasmrt.ModuleConfig{PoolSize: -1}, "hi"))

	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, "bad.wat"), []byte("(module (func (export \"x\") (i32.add)))"), 0o644))
	_, err = (&WATDriver{}).Build(ctx, Request{Dir: bad, Source: "bad.wat", WorkDir: t.TempDir()})
	var be *BuildError
	require.ErrorAs(t, err, &be)
	assert.Contains(t, be.Output, "bad.wat")
	_, err = (&WATDriver{}).Build(ctx, Request{Dir: bad, Source: ".", WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, "want a .wat file")

	t.Setenv("PATH", t.TempDir())
	_, err = (&WATDriver{}).Build(ctx, Request{Dir: dir, Source: "jobs/echo.wat", WorkDir: t.TempDir()})
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "wabt", me.Package)
	assert.Contains(t, err.Error(), "apt-get install wabt")
}

func TestWasmDriver(t *testing.T) {
	dir := nativeBlueprintDir(t)
	wasm, err := (&WasmDriver{}).Build(context.Background(), Request{Dir: dir, Source: "jobs/echo-prebuilt.wasm"})
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(dir, "jobs", "echo-prebuilt.wasm"))
	require.NoError(t, err)
	assert.Equal(t, want, wasm, "prebuilt modules pass through unchanged")
	_, err = (&WasmDriver{}).Build(context.Background(), Request{Dir: dir, Source: "jobs"})
	assert.ErrorContains(t, err, "want a .wasm file")
}
