package toolchain

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/abi"
)

func TestOptimize(t *testing.T) {
	ctx := context.Background()
	if _, err := OptimizerFingerprint(ctx); err != nil {
		t.Skipf("%v", err)
	}
	wasm, err := os.ReadFile("../../wasm-examples/wat/echo.wasm")
	require.NoError(t, err)
	out, err := Optimize(ctx, wasm, t.TempDir())
	require.NoError(t, err)
	info, err := abi.Describe(out)
	require.NoError(t, err, "the optimised module still follows the ABI")
	assert.Equal(t, abi.Reactor, info.Shape)

	_, err = Optimize(ctx, []byte("not wasm"), t.TempDir())
	assert.ErrorIs(t, err, ErrBuild)

	t.Setenv("PATH", t.TempDir())
	_, err = Optimize(ctx, wasm, t.TempDir())
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "binaryen", me.Package)
}
