// Command bench is `make bench`'s harness run: it measures Ferry's example
// jobs on every engine and host next to their plain-Go versions
// (benchmarks/native), and writes, from one run,
//
//   - benchmarks/results/harness.json: the full report;
//   - benchmarks/results/harness.txt: benchstat-readable lines;
//   - benchmarks/plots/*.svg and *.png: the plots;
//   - the generated section of benchmarks/RESULTS.md (between its
//     "harness:begin" and "harness:end" markers).
//
// -report rebuilds the files from an existing harness.json without
// measuring again. Run from the repository root:
//
//	go run ./benchmarks/cmd/bench -ferry bin/ferry
//	go run -tags wasmtime ./benchmarks/cmd/bench -ferry bin/ferry   # with wasmtime
//	go run ./benchmarks/cmd/bench -report benchmarks/results/harness.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ferryrun/ferry/benchmarks/harness"
	"github.com/ferryrun/ferry/benchmarks/native"
	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/hosts/workers/workerd"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		ferry     = flag.String("ferry", "bin/ferry", "ferry `BINARY` (the http target, and building the blueprint's C and Rust jobs)")
		bootstrap = flag.String("lambda-bootstrap", "bin/ferry-lambda-linux-"+runtime.GOARCH, "ferry-lambda `BINARY` for the lambda target (empty: skip it)")
		out       = flag.String("out", "benchmarks", "`DIR` holding RESULTS.md, results/ and plots/")
		report    = flag.String("report", "", "rebuild RESULTS.md and the plots from this harness.json `FILE`; measure nothing")
		quick     = flag.Bool("quick", false, "a fast, rough run")
		warm      = flag.Int("warm", 0, "warm calls one after another (0: the harness's default)")
		duration  = flag.Duration("duration", 0, "each throughput run (0: the harness's default)")
		samples   = flag.Int("samples", 0, "cold samples (0: the harness's default)")
		targets   = flag.String("targets", "", "comma-separated targets (default: all this machine can run)")
	)
	flag.Parse()
	if *report != "" {
		b, err := os.ReadFile(*report)
		if err != nil {
			return err
		}
		var rep harness.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: %w", *report, err)
		}
		return write(*out, rep, false)
	}

	ctx := context.Background()
	jobs, err := exampleJobs(ctx, *ferry)
	if err != nil {
		return err
	}
	o := harness.Options{FerryBinary: *ferry, Progress: func(s string) { fmt.Fprintln(os.Stderr, "bench:", s) }}
	o.Warm, o.Duration, o.Samples = *warm, *duration, *samples
	if *quick {
		o.Warm, o.Duration, o.Samples = 200, 300*time.Millisecond, 1
	}
	if *bootstrap != "" {
		if b, err := os.ReadFile(*bootstrap); err == nil {
			o.LambdaBootstrap = b
		} else {
			fmt.Fprintf(os.Stderr, "bench: no lambda target: %v (make lambda builds it)\n", err)
		}
	}
	if bin, err := workerd.Find(); err == nil {
		o.WorkerdBinary = bin
	} else {
		fmt.Fprintf(os.Stderr, "bench: no workerd target: %v\n", err)
	}
	if *targets != "" {
		o.Targets = splitComma(*targets)
	}
	results, err := harness.Run(ctx, jobs, o)
	if err != nil {
		return err
	}
	return write(*out, harness.NewReport(results, o, o.WorkerdBinary), true)
}

// exampleJobs are the Go examples and the trivial WAT job, with their
// native versions, and the blueprint's C and Rust jobs when their
// toolchains are installed.
func exampleJobs(ctx context.Context, ferry string) ([]harness.Job, error) {
	var jobs []harness.Job
	add := func(name string, wasm []byte) {
		j := harness.Job{Name: name, Module: wasm}
		if n, ok := native.Lookup(name); ok {
			j.Native, j.Input = n.Run, n.Input
		}
		jobs = append(jobs, j)
	}
	echo, err := examples.WAT("echo")
	if err != nil {
		return nil, err
	}
	add("echo", echo)
	for _, name := range []string{"incredible-squaring", "sha256", "jsontransform", "nbody"} {
		fmt.Fprintf(os.Stderr, "bench: building %s\n", name)
		wasm, err := examples.BuildGo(ctx, name, examples.Reactor)
		if err != nil {
			return nil, err
		}
		add(name, wasm)
	}
	dir, err := os.MkdirTemp("", "ferry-bench-blueprint-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintln(os.Stderr, "bench: building the blueprint's C and Rust jobs")
	cmd := exec.CommandContext(ctx, ferry, "build", filepath.Join(examples.Dir(), "blueprint"), "--out", filepath.Join(dir, "b.bundle"))
	if msg, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: skipping the C and Rust jobs: ferry build: %v\n%s", err, msg)
		return jobs, nil
	}
	b, err := bundle.Open(filepath.Join(dir, "b.bundle"))
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"checksum", "wordcount", "reverse"} {
		wasm, err := b.Module(name)
		if err != nil {
			return nil, err
		}
		add(name, wasm)
	}
	return jobs, nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var errNoMarkers = errors.New("RESULTS.md lacks the <!-- harness:begin --> and <!-- harness:end --> markers")
