package redistest

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStart_AnswersOnLoopbackAndStops(t *testing.T) {
	var addr string
	t.Run("server", func(t *testing.T) {
		raw := Start(t)
		u, err := url.Parse(raw)
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1", u.Hostname())
		assert.NotEqual(t, "6379", u.Port())
		addr = u.Host
		require.NoError(t, ping(addr))
	})
	if addr == "" {
		t.Skip("no server was started")
	}
	assert.Error(t, ping(addr), "the server must be stopped when its test ends")
}
