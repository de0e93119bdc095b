package wasmrt

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ferryrun/ferry/runtime/engine"
)

// wazero cannot meter fuel: a runtime asked for it on wazero refuses to start
// rather than run without the limit.
func TestRuntime_FuelRefusedByWazero(t *testing.T) {
	for _, name := range []string{"", EngineWazero, EngineWazeroInterpreter} {
		r, err := New(context.Background(), Config{Engine: name, Fuel: 1 << 20})
		if r != nil {
			_ = r.Close(context.Background())
		}
		assert.ErrorIs(t, err, engine.ErrUnsupported, "engine %q", name)
		assert.ErrorContains(t, err, "fuel", "engine %q", name)
	}
}
