package httphost_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/ferryrun/ferry/hosts/httphost"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// BenchmarkServer_Invoke is the HTTP host in process, over loopback TCP
// with keep-alive, with 32 concurrent callers (b.SetParallelism(16) on 2
// CPUs): the server's cost per warm invocation of the trivial echo job,
// the client's included. benchmarks/httphost_test.go measures the same
// against a separate `ferry host serve` process, with percentiles.
func BenchmarkServer_Invoke(b *testing.B) {
	s := newTestServer(b, httphost.ServerConfig{Token: "bench"})
	wasm, err := examples.WAT("echo")
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: httphost.NewTransport()}
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/api/functions/echo", bytes.NewReader(wasm))
	req.Header.Set("Authorization", "Bearer bench")
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 {
		b.Fatalf("deploy: %v %v", err, resp)
	}
	body := []byte(`{"job_id":0,"args":[102,101,114,114,121,32,108,111,111,112,98,97,99,107,33,33]}`)
	url := s.URL + "/api/functions/echo/invoke"
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer bench")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
