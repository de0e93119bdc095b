package dynalitetest

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStart_AnswersOnLoopbackAndStops(t *testing.T) {
	var endpoint string
	t.Run("server", func(t *testing.T) {
		endpoint = Start(t)
		u, err := url.Parse(endpoint)
		require.NoError(t, err)
		assert.Equal(t, "http", u.Scheme)
		assert.Equal(t, "127.0.0.1", u.Hostname())
		assert.NotEqual(t, "4567", u.Port(), "never dynalite's default port")
		require.NoError(t, ping(endpoint))
	})
	if endpoint == "" {
		t.Skip("no server was started")
	}
	assert.Error(t, ping(endpoint), "the server must be stopped when its test ends")
}

func TestPath(t *testing.T) {
	t.Run("FERRY_DYNALITE names a missing file", func(t *testing.T) {
		t.Setenv("FERRY_DYNALITE", filepath.Join(t.TempDir(), "cli.js"))
		_, err := Path()
		assert.ErrorContains(t, err, "FERRY_DYNALITE")
	})
	t.Run("FERRY_DYNALITE names a file", func(t *testing.T) {
		cli := filepath.Join(t.TempDir(), "cli.js")
		require.NoError(t, os.WriteFile(cli, nil, 0o600))
		t.Setenv("FERRY_DYNALITE", cli)
		p, err := Path()
		require.NoError(t, err)
		assert.Equal(t, cli, p)
	})
	t.Run("repository root", func(t *testing.T) {
		root, err := repoRoot()
		require.NoError(t, err)
		assert.FileExists(t, filepath.Join(root, "runtime", "state", "dynalitetest", "dynalitetest.go"),
			"the root is this repository's, not a nested module's")
	})
}
