package benchmarks

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryrun/ferry/hosts/httphost"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// BenchmarkHTTPHost drives a real `ferry host serve` process on loopback
// with the trivial echo job (a 16-byte input), at concurrency 1 and 32,
// over keep-alive connections: the load generator and the server share
// the machine's cores, as they would on one small VM. It reports the
// warm latency percentiles and the throughput.
func BenchmarkHTTPHost(b *testing.B) {
	if testing.Short() {
		b.Skip("builds binaries")
	}
	dir := b.TempDir()
	ferry := buildFerry(b, dir)
	// Info level logs startup and deployments only, nothing per call.
	srv, url := startFerry(b, []string{"FERRY_HOST_TOKEN=bench"}, ferry, "host", "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()

	wasm, err := examples.WAT("echo")
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: httphost.NewTransport()}
	do := func(method, u string, body []byte, ct string) (int, []byte) {
		req, _ := http.NewRequest(method, u, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer bench")
		req.Header.Set("Content-Type", ct)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	if st, out := do(http.MethodPut, url+"/api/functions/echo", wasm, "application/wasm"); st != 200 {
		b.Fatalf("deploy: %d %s", st, out)
	}
	body := []byte(`{"job_id":0,"args":[102,101,114,114,121,32,108,111,111,112,98,97,99,107,33,33]}`)
	invoke := url + "/api/functions/echo/invoke"
	for range 200 { // warm: connections, pool, server goroutines
		if st, out := do(http.MethodPost, invoke, body, "application/json"); st != 200 {
			b.Fatalf("invoke: %d %s", st, out)
		}
	}

	send := func(b *testing.B) bool {
		req, _ := http.NewRequest(http.MethodPost, invoke, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer bench")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Errorf("status %d", resp.StatusCode)
			return false
		}
		return true
	}
	// rate 0: closed loop, each caller sends as soon as its last call
	// returns (the most the server can do). rate > 0: open loop at that
	// many calls per second in total, latency measured from when each
	// call was due, so a stall counts against every call it delays.
	for _, tc := range []struct {
		name string
		conc int
		rate float64
	}{{"c1", 1, 0}, {"c32", 32, 0}, {"c32-at-10k", 32, 10000}} {
		b.Run(tc.name, func(b *testing.B) {
			conc := tc.conc
			var next atomic.Int64
			lat := make([][]time.Duration, conc)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mine := make([]time.Duration, 0, b.N/conc+1)
					for {
						k := next.Add(1) - 1
						if k >= int64(b.N) {
							break
						}
						due := time.Now()
						if tc.rate > 0 {
							due = start.Add(time.Duration(float64(k) / tc.rate * float64(time.Second)))
							if d := time.Until(due); d > 0 {
								time.Sleep(d)
							}
						}
						if !send(b) {
							return
						}
						mine = append(mine, time.Since(due))
					}
					lat[w] = mine
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) == 0 {
				return
			}
			pct := func(p float64) float64 {
				return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds())
			}
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
			b.ReportMetric(pct(0.999), "p99.9-µs")
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
		})
	}
}

// startFerry starts a ferry server (args), waits for its "url=" log line,
// and returns the process and the URL; the caller stops it.
func startFerry(b *testing.B, env []string, ferry string, args ...string) (*exec.Cmd, string) {
	b.Helper()
	srv := exec.Command(ferry, args...)
	srv.Env = append(os.Environ(), env...)
	stderr, err := srv.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	url := ""
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`listening" url=(http://\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		b.Fatalf("ferry %s did not start", args[0])
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	return srv, url
}
