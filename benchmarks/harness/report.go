package harness

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Machine describes where a run happened, for every table and raw file.
type Machine struct {
	Date     time.Time         `json:"date"`
	GOOS     string            `json:"goos"`
	GOARCH   string            `json:"goarch"`
	CPU      string            `json:"cpu"`
	Cores    int               `json:"cores"`
	MemoryGB float64           `json:"memory_gb"`
	Kernel   string            `json:"kernel"`
	Versions map[string]string `json:"versions"`
}

// Report is a run's results with where they come from.
type Report struct {
	Machine Machine       `json:"machine"`
	Options ReportOptions `json:"options"`
	Results []Result      `json:"results"`
}

// ReportOptions records how the run was tuned.
type ReportOptions struct {
	Warm        int     `json:"warm"`
	DurationSec float64 `json:"duration_sec"`
	Concurrency []int   `json:"concurrency"`
	Samples     int     `json:"samples"`
	Instances   int     `json:"instances"`
}

// NewReport wraps results with this machine's description. workerdBin,
// when set, is asked for its version.
func NewReport(results []Result, o Options, workerdBin string) Report {
	o.withDefaults()
	m := Machine{Date: time.Now().UTC(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Cores: runtime.NumCPU(),
		CPU: cpuModel(), MemoryGB: memoryGB(), Kernel: kernel(), Versions: map[string]string{"go": runtime.Version()}}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/tetratelabs/wazero", "github.com/bytecodealliance/wasmtime-go/v39",
				"github.com/aws/aws-sdk-go-v2/service/lambda", "github.com/aws/aws-lambda-go":
				m.Versions[d.Path[strings.LastIndex(strings.TrimSuffix(d.Path, "/v39"), "/")+1:]] = d.Version
			}
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				m.Versions["ferry"] = s.Value[:7]
			}
		}
	}
	if workerdBin != "" {
		if out, err := exec.Command(workerdBin, "--version").Output(); err == nil {
			m.Versions["workerd"] = strings.TrimSpace(string(out))
		}
	}
	return Report{Machine: m, Results: results, Options: ReportOptions{Warm: o.Warm, DurationSec: o.Duration.Seconds(),
		Concurrency: o.Concurrency, Samples: o.Samples, Instances: o.Instances}}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memoryGB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			_, _ = fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%f", &kb)
		}
	}
	return kb / (1 << 20)
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return runtime.GOOS + " " + strings.TrimSpace(string(b))
}

// WriteBenchstat writes rep in Go's benchmark format, one line per job
// and target, so that benchstat can compare two runs:
//
//	BenchmarkFerry/job=echo/target=wazero 1000 1.6 warm-p50-µs ...
func WriteBenchstat(w io.Writer, rep Report) error {
	m := rep.Machine
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/ferryrun/ferry/benchmarks/harness\ncpu: %s\n", m.GOOS, m.GOARCH, m.CPU)
	fmt.Fprintf(w, "date: %s\n", m.Date.Format(time.RFC3339))
	for _, k := range sortedKeys(m.Versions) {
		fmt.Fprintf(w, "version-%s: %s\n", k, m.Versions[k])
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "BenchmarkFerry/job=%s/target=%s-%d\t%d", r.Job, r.Target, m.Cores, rep.Options.Warm)
		metric := func(v float64, unit string) {
			if v != 0 {
				fmt.Fprintf(&b, "\t%.4g %s", v, unit)
			}
		}
		metric(r.CompileColdMs, "compile-cold-ms")
		metric(r.CompileCachedMs, "compile-cached-ms")
		metric(r.DeployMs, "deploy-ms")
		metric(r.InstantiateUs, "instantiate-µs")
		metric(r.ColdMs, "cold-ms")
		metric(r.WarmP50Us, "warm-p50-µs")
		metric(r.WarmP99Us, "warm-p99-µs")
		for _, l := range r.Load {
			metric(l.CallsPerSec, fmt.Sprintf("calls/s@%d", l.Concurrency))
			metric(l.P99Us, fmt.Sprintf("p99-µs@%d", l.Concurrency))
		}
		if f := r.Fresh; f != nil {
			metric(f.PoolP50Us, "fresh-pool-p50-µs@8")
			metric(f.NoPoolP50Us, "fresh-nopool-p50-µs@8")
			for _, pr := range f.Paced {
				metric(pr.P50Us, fmt.Sprintf("fresh-paced%.0f%%-p50-µs", pr.Load*100))
			}
		}
		metric(r.MemoryPerInstanceKB, "KB/instance")
		if _, err := fmt.Fprintln(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}
