package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/compiler/build"
	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

func newBuildCmd(e *env) *cobra.Command {
	var (
		out, cacheDir string
		noCache, js   bool
		wasmOpt       bool
		runs, jobs    int
	)
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build a blueprint's jobs to WebAssembly, analyse and profile them, and write a bundle",
		Long: `Build every job of the blueprint in DIR (default: the current directory) to
WebAssembly, in parallel, through a build cache keyed by the sources and the
toolchain. Each module is analysed (shape, capabilities, purity) and its
sample inputs are profiled in the runtime. The bundle (manifest.json and the
modules by sha256) is written atomically to DIR/build/NAME.bundle unless --out
says otherwise. If a job fails, every job is still reported, the compiler's
output is shown, and no bundle is written.`,
		Example: `  ferry build wasm-examples/blueprint
  ferry build . --out /tmp/svc.bundle --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			ctx := cmd.Context()
			compileCache := filepath.Join(defaultDir("cache"), "compile")
			buildCache := filepath.Join(defaultDir("cache"), "build")
			if cacheDir != "" {
				compileCache, buildCache = filepath.Join(cacheDir, "compile"), filepath.Join(cacheDir, "build")
			}
			if noCache {
				buildCache = ""
			}
			// Profiling must not touch real job state.
			rt, err := wasmrt.New(ctx, wasmrt.Config{CacheDir: compileCache, State: state.NewMemory()})
			if err != nil {
				return withCode(exitHost, err)
			}
			defer rt.Close(ctx)
			progress := e.stderr
			if js {
				progress = nil
			}
			res, err := build.Build(ctx, dir, build.Options{
				Out: out, CacheDir: buildCache, Runs: runs, Parallel: jobs,
				Progress: progress, Runtime: rt, Ferry: version, WasmOpt: wasmOpt,
			})
			if js && res != nil {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return withCode(exitHost, err)
				}
			}
			if err != nil {
				if res != nil && !js {
					for _, j := range res.Jobs {
						if j.Err != nil {
							fmt.Fprintf(e.stderr, "\n%s\n", j.Err)
						}
					}
				}
				// A failed job and an unreadable blueprint.toml are both
				// the build failing on its input.
				return withCode(exitJobError, err)
			}
			if !js {
				fmt.Fprintf(e.stdout, "built %s: %d jobs in %s -> %s\n", res.Blueprint, len(res.Jobs), res.Total.Round(time.Millisecond), res.Bundle)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "out", "o", "", "bundle `DIR` (default DIR/build/NAME.bundle)")
	fl.StringVar(&cacheDir, "cache-dir", "", "cache `DIR` for built and compiled modules (default $XDG_CACHE_HOME/ferry)")
	fl.BoolVar(&noCache, "no-cache", false, "rebuild every job")
	fl.IntVar(&runs, "runs", 5, "profiling runs per sample (at least 2)")
	fl.IntVarP(&jobs, "jobs", "j", 0, "jobs built in parallel (default: number of CPUs)")
	fl.BoolVar(&js, "json", false, "print the build result as JSON")
	fl.BoolVar(&wasmOpt, "wasm-opt", false, "optimise every module with binaryen's wasm-opt -O2 (slow for Go modules)")
	return cmd
}

func newAnalyzeCmd(e *env) *cobra.Command {
	var js bool
	cmd := &cobra.Command{
		Use:   "analyze BUNDLE",
		Short: "Show each job of a bundle: capabilities, profile and routing flags",
		Long: `Read a bundle written by ferry build and print one row per job: language,
shape, capabilities, whether it is pure, deterministic, stateful or uses the
network, and its profile (p50/p95/max duration, peak memory). A job without
samples is shown as unprofiled.`,
		Example: `  ferry analyze wasm-examples/blueprint/build/incredible-squaring.bundle
  ferry analyze svc.bundle --json | jq '.jobs[] | select(.is_pure)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := bundle.Open(args[0])
			if err != nil {
				return withCode(exitModule, err)
			}
			if js {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return withCode(exitHost, enc.Encode(b.Manifest))
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "JOB\tLANG\tSHAPE\tCAPABILITIES\tPURE\tDETERMINISTIC\tSTATE\tNETWORK\tP50 ms\tP95 ms\tMAX ms\tPEAK MEM\n")
			for _, j := range b.Manifest.Jobs {
				capStr := joinCaps(j.Capabilities, ",", "-")
				net := "-"
				if len(j.NetworkCalls) > 0 {
					net = strings.Join(j.NetworkCalls, ",")
				}
				prof := "unprofiled\t\t\t"
				if p := j.Profile; p != nil {
					prof = fmt.Sprintf("%.3f\t%.3f\t%.3f\t%s", ms(p.DurationP50), ms(p.DurationP95), ms(p.DurationMax), humanBytes(int(p.PeakMemoryBytes)))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, j.Language, j.Shape, capStr,
					yes(j.IsPure), yes(j.IsDeterministic), yes(j.RequiresState), net, prof)
			}
			return withCode(exitHost, w.Flush())
		},
	}
	cmd.Flags().BoolVar(&js, "json", false, "print the manifest as JSON")
	return cmd
}

func ms[T ~int64](d T) float64 { return float64(d) / float64(time.Millisecond) }

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
