package httphost_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/hosttest"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// testServer is a Server on an httptest listener with its own runtime
// and data directory.
type testServer struct {
	*httphost.Server
	URL     string
	DataDir string
	rt      *wasmrt.Runtime
	ts      *httptest.Server
}

func newTestServer(t testing.TB, cfg httphost.ServerConfig) *testServer {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Runtime = rt
	if cfg.PoolSize == 0 {
		cfg.PoolSize = 2
	}
	s, err := httphost.NewServer(ctx, cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		assert.NoError(t, s.Close(ctx))
		assert.NoError(t, rt.Close(ctx))
	})
	return &testServer{Server: s, URL: ts.URL, DataDir: cfg.DataDir, rt: rt, ts: ts}
}

func newClient(t testing.TB, url, token string) *httphost.Client {
	t.Helper()
	c, err := httphost.NewClient(httphost.ClientConfig{BaseURL: url, Token: token, Region: "loopback"})
	require.NoError(t, err)
	return c
}

// The conformance suite against the client talking to an in-process
// server (the same suite runs against a real `ferry host serve` process in
// cmd/ferry).
func TestConformance_InProcess(t *testing.T) {
	hosttest.Run(t, func(t *testing.T) host.Host {
		s := newTestServer(t, httphost.ServerConfig{Token: "s3cret"})
		return newClient(t, s.URL, "s3cret")
	}, hosttest.Options{})
}
