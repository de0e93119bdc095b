package locallambda

import (
	"context"
	"net"
	"net/http"
	"time"
)

// TB is the part of testing.TB that Start uses, so this package does not
// import testing.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// Start serves a new Server on a free loopback port and returns it with
// its base URL (for BaseEndpoint or AWS_ENDPOINT_URL_LAMBDA). The server
// and its environments are closed when the test ends. A zero cfg.Dir is
// a directory of the test's own.
func Start(t TB, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Dir == "" {
		if td, ok := t.(interface{ TempDir() string }); ok {
			cfg.Dir = td.TempDir()
		}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("locallambda: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("locallambda: listen: %v", err)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(ctx)
		_ = hs.Shutdown(ctx)
		<-done
	})
	return s, "http://" + ln.Addr().String()
}
