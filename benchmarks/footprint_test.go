package benchmarks

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryrun/ferry/hosts/httphost"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// BenchmarkServeFootprint measures a real `ferry serve` process's resident
// memory (VmRSS) on the path to a t4g.nano (512 MB): idle after start, and
// at most while serving 1,000 calls/s of the trivial echo job through its
// HTTP API for 10 s (open loop, 32 callers), with the latency of those
// calls. Run it with -benchtime 1x.
func BenchmarkServeFootprint(b *testing.B) {
	if testing.Short() {
		b.Skip("builds binaries")
	}
	dir := b.TempDir()
	ferry := buildFerry(b, dir)
	bp := filepath.Join(dir, "bp")
	wasm, err := examples.WAT("echo")
	if err != nil {
		b.Fatal(err)
	}
	must(b, os.MkdirAll(bp, 0o755))
	must(b, os.WriteFile(filepath.Join(bp, "echo.wasm"), wasm, 0o644))
	must(b, os.WriteFile(filepath.Join(bp, "blueprint.toml"), []byte("[blueprint]\nname = \"footprint\"\n\n[blueprint.jobs.echo]\nsource = \"echo.wasm\"\ninline_samples = [\"hi\"]\n"), 0o644))
	if out, err := exec.Command(ferry, "build", bp, "-o", filepath.Join(dir, "bundle"), "--cache-dir", filepath.Join(dir, "cache")).CombinedOutput(); err != nil {
		b.Fatalf("ferry build: %v\n%s", err, out)
	}
	pol := filepath.Join(dir, "policy.json")
	must(b, os.WriteFile(pol, []byte("{}"), 0o644))

	for i := 0; i < b.N; i++ {
		srv, url := startFerry(b, nil, ferry, "serve", "--bundle", filepath.Join(dir, "bundle"), "--policy", pol, "--listen", "127.0.0.1:0",
			"--data-dir", filepath.Join(dir, "data"), "--cache-dir", filepath.Join(dir, "cache"))
		pid := srv.Process.Pid

		time.Sleep(2 * time.Second) // let start-up garbage be collected
		idle := rssMB(b, pid)

		client := &http.Client{Transport: httphost.NewTransport()}
		send := func() bool {
			resp, err := client.Post(url+"/v1/jobs/echo/invoke", "application/octet-stream", bytes.NewReader([]byte("footprint check!")))
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
		const rate, seconds, conc = 1000.0, 10, 32
		total := int64(rate * seconds)
		var peak atomic.Int64
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if v := int64(rssMB(b, pid) * 1000); v > peak.Load() {
						peak.Store(v)
					}
				}
			}
		}()
		var next atomic.Int64
		lat := make([][]time.Duration, conc)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					k := next.Add(1) - 1
					if k >= total {
						return
					}
					due := start.Add(time.Duration(float64(k) / rate * float64(time.Second)))
					time.Sleep(time.Until(due))
					if !send() {
						return
					}
					lat[w] = append(lat[w], time.Since(due))
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(stop)
		time.Sleep(2 * time.Second)
		after := rssMB(b, pid)
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()

		all := slices.Concat(lat...)
		slices.Sort(all)
		pct := func(p float64) float64 { return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) }
		b.ReportMetric(idle, "idle-MB")
		b.ReportMetric(float64(peak.Load())/1000, "peak-MB-at-1k/s")
		b.ReportMetric(after, "after-MB")
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
		b.ReportMetric(pct(0.5), "p50-µs")
		b.ReportMetric(pct(0.99), "p99-µs")
	}
}

// rssMB is a process's resident set size in MB (VmRSS).
func rssMB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1000
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
