package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/runtime/engine"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

type runFlags struct {
	input, inputFile string
	timeout          time.Duration
	memoryMB         int
	maxInput         int
	maxOutput        int
	jsonOut          bool
	name             string
	allowHosts       []string
	deterministic    string
	seed             uint64
	statePath        string
	cacheDir         string
	noCache          bool
	engine           string
	logLevel         string
	quiet            bool
	job              string
}

func newRunCmd(e *env) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run MODULE.wasm | BUNDLE --job NAME",
		Short: "Run a job module once, in-process",
		Long: `Run a job module once in the in-process runtime and write its raw output to
stdout. The input comes from --input, --input-file or stdin. Guest logs go to
stderr. With --json, stdout gets one result object instead: output, duration,
memory used, and the error kind and message when the job fails.

The argument is a module file, or a bundle written by ferry build with --job
naming the job; the job's memory and timeout overrides and allowed hosts
from blueprint.toml then apply unless flags say otherwise.

Exit status: 0 ok, 1 the job failed, 2 usage, 3 module refused, 4 host error.`,
		Example: `  ferry run squaring.wasm --input 12345
  echo -n hello | ferry run echo.wasm
  ferry run fetcher.wasm --input https://api.example.com/x --allow-host api.example.com
  ferry run loop.wasm --timeout 100ms --json
  ferry run build/incredible-squaring.bundle --job square --input 12345`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runRun(cmd, e, f, args[0]) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.input, "input", "", "input as a string")
	fl.StringVar(&f.inputFile, "input-file", "", "read input from `FILE` (- for stdin)")
	fl.DurationVar(&f.timeout, "timeout", wasmrt.DefaultTimeout, "wall-clock limit; the guest is interrupted when it runs out")
	fl.IntVar(&f.memoryMB, "memory", wasmrt.DefaultMaxMemoryBytes>>20, "guest memory limit in `MB` (MiB)")
	fl.IntVar(&f.maxInput, "max-input", wasmrt.DefaultMaxInputBytes, "input size limit in bytes")
	fl.IntVar(&f.maxOutput, "max-output", wasmrt.DefaultMaxOutputBytes, "output size limit in bytes")
	fl.BoolVar(&f.jsonOut, "json", false, "print a JSON result object instead of the raw output")
	fl.StringVar(&f.name, "name", "", "job name for logs and state namespace (default: file name)")
	fl.StringSliceVar(&f.allowHosts, "allow-host", nil, "let the job's HTTP requests reach `HOST` (host, host:port or *.domain; repeatable)")
	fl.StringVar(&f.deterministic, "deterministic", "auto", "fix clocks and seed randomness: auto (on unless the job uses the network), true or false")
	fl.Uint64Var(&f.seed, "seed", 0, "random seed in deterministic mode")
	fl.StringVar(&f.statePath, "state", filepath.Join(defaultDir("data"), "state.db"), "state store: a bbolt `FILE`, or \"memory\"")
	fl.StringVar(&f.cacheDir, "cache-dir", filepath.Join(defaultDir("cache"), "compile"), "compilation cache `DIR`")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use the compilation cache")
	fl.StringVar(&f.engine, "engine", wasmrt.EngineWazero, "engine: "+strings.Join(engine.Names(), ", ")+" (wasmtime in a build with -tags wasmtime)")
	fl.StringVar(&f.logLevel, "log-level", "info", "guest log level shown on stderr: debug, info, warn, error")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress messages")
	fl.StringVar(&f.job, "job", "", "the job to run when the argument is a bundle")
	return cmd
}

func (f *runFlags) limits() (wasmrt.Limits, error) {
	if f.memoryMB <= 0 {
		return wasmrt.Limits{}, fmt.Errorf("--memory %d: must be positive", f.memoryMB)
	}
	if f.timeout <= 0 {
		return wasmrt.Limits{}, fmt.Errorf("--timeout %s: must be positive", f.timeout)
	}
	if f.maxInput <= 0 || f.maxOutput <= 0 {
		return wasmrt.Limits{}, errors.New("--max-input and --max-output must be positive")
	}
	l := wasmrt.Limits{
		MaxMemoryBytes: uint64(f.memoryMB) << 20,
		Timeout:        f.timeout,
		MaxInputBytes:  f.maxInput,
		MaxOutputBytes: f.maxOutput,
	}
	return l, l.Validate()
}

func runRun(cmd *cobra.Command, e *env, f *runFlags, path string) error {
	ctx := cmd.Context()
	lim, err := f.limits()
	if err != nil {
		return withCode(exitUsage, err)
	}
	var det *bool
	switch f.deterministic {
	case "auto":
	case "true", "false":
		v := f.deterministic == "true"
		det = &v
	default:
		return withCode(exitUsage, fmt.Errorf("--deterministic %q: want auto, true or false", f.deterministic))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return withCode(exitUsage, fmt.Errorf("--log-level %q: %w", f.logLevel, err))
	}
	if f.input != "" && f.inputFile != "" {
		return withCode(exitUsage, errors.New("--input and --input-file are mutually exclusive"))
	}
	wasm, name, err := loadRunTarget(cmd, f, path, &lim)
	if err != nil {
		return err
	}
	input, err := readInput(e, f, lim.MaxInputBytes)
	if err != nil {
		return err
	}

	var store state.Store
	if f.statePath == "memory" {
		store = state.NewMemory()
	} else {
		b, err := state.OpenBolt(f.statePath)
		if err != nil {
			return withCode(exitHost, err)
		}
		store = b
	}
	defer store.Close()

	cacheDir := f.cacheDir
	if f.noCache {
		cacheDir = ""
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	rt, err := wasmrt.New(ctx, wasmrt.Config{Engine: f.engine, CacheDir: cacheDir, Logger: logger, State: store})
	if err != nil {
		if strings.Contains(err.Error(), "unknown engine") {
			return withCode(exitUsage, err)
		}
		return withCode(exitHost, err)
	}
	defer rt.Close(ctx)

	if f.name != "" {
		name = f.name
	}
	done := startProgress(e.stderr, f.quiet || f.jsonOut, fmt.Sprintf("loading %s (%s, %s)", filepath.Base(path), humanBytes(len(wasm)), rt.EngineName()))
	mod, err := rt.Load(ctx, wasm, wasmrt.ModuleConfig{
		Name: name, Limits: lim, AllowHosts: f.allowHosts, Deterministic: det, Seed: f.seed,
		PoolSize: -1, // one invocation: nothing to pre-instantiate
	})
	done()
	if err != nil {
		return withCode(moduleErrCode(err), err)
	}

	res, runErr := mod.Invoke(ctx, input)
	if f.jsonOut {
		if err := writeJSONResult(e.stdout, mod, res, runErr); err != nil {
			return withCode(exitHost, err)
		}
		if runErr != nil {
			return withCode(exitCodeOf(runErr), errReported)
		}
		return nil
	}
	if runErr != nil {
		return withCode(exitCodeOf(runErr), runErr)
	}
	if _, err := e.stdout.Write(res.Output); err != nil {
		return withCode(exitHost, fmt.Errorf("write output: %w", err))
	}
	return nil
}

func exitCodeOf(err error) int {
	var je *wasmrt.JobError
	if errors.As(err, &je) {
		return exitJobError
	}
	return exitHost
}

func readInput(e *env, f *runFlags, max int) ([]byte, error) {
	var r io.Reader
	switch {
	case f.input != "":
		if len(f.input) > max {
			return nil, withCode(exitJobError, fmt.Errorf("input of %d bytes is over the input limit of %d bytes", len(f.input), max))
		}
		return []byte(f.input), nil
	case f.inputFile != "" && f.inputFile != "-":
		file, err := os.Open(f.inputFile)
		if err != nil {
			return nil, withCode(exitUsage, err)
		}
		defer file.Close()
		r = file
	default:
		if isTerminal(e.stdin) {
			return nil, nil // nothing piped in: empty input, do not hang
		}
		r = e.stdin
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, withCode(exitHost, fmt.Errorf("read input: %w", err))
	}
	if len(b) > max {
		return nil, withCode(exitJobError, fmt.Errorf("input is over the input limit of %d bytes", max))
	}
	return b, nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// runResult is the --json output of ferry run. docs/cli.md documents it.
type runResult struct {
	OK bool `json:"ok"`
	// Output is set when the output is valid UTF-8, OutputBase64 otherwise.
	Output          *string          `json:"output,omitempty"`
	OutputBase64    string           `json:"output_base64,omitempty"`
	OutputBytes     int              `json:"output_bytes"`
	DurationMS      float64          `json:"duration_ms"`
	InstantiateMS   float64          `json:"instantiate_ms"`
	MemoryUsedBytes uint64           `json:"memory_used_bytes"`
	InvocationID    string           `json:"invocation_id,omitempty"`
	Job             string           `json:"job"`
	Digest          string           `json:"digest"`
	Shape           string           `json:"shape"`
	Logs            []wasmrt.LogLine `json:"logs"`
	Error           *resultError     `json:"error,omitempty"`
}

type resultError struct {
	Kind     string  `json:"kind"`
	Message  string  `json:"message"`
	Trap     string  `json:"trap,omitempty"`
	ExitCode *uint32 `json:"exit_code,omitempty"`
}

func writeJSONResult(w io.Writer, mod *wasmrt.Module, res *wasmrt.Result, err error) error {
	out := runResult{OK: err == nil, Job: mod.Name(), Digest: mod.Digest(), Shape: string(mod.Info().Shape), Logs: []wasmrt.LogLine{}}
	if res != nil {
		if err != nil {
			// no output on failure
		} else if utf8.Valid(res.Output) {
			s := string(res.Output)
			out.Output = &s
		} else {
			out.OutputBase64 = base64.StdEncoding.EncodeToString(res.Output)
		}
		out.OutputBytes = len(res.Output)
		out.DurationMS = float64(res.Duration.Microseconds()) / 1000
		out.InstantiateMS = float64(res.Instantiate.Microseconds()) / 1000
		out.MemoryUsedBytes = res.PeakMemoryBytes
		out.InvocationID = res.InvocationID
		if res.Logs != nil {
			out.Logs = res.Logs
		}
	}
	if err != nil {
		re := &resultError{Kind: "host_error", Message: err.Error()}
		var je *wasmrt.JobError
		if errors.As(err, &je) {
			re.Kind, re.Trap = string(je.Kind), string(je.Trap)
			if je.Kind == wasmrt.KindExit {
				code := je.ExitCode
				re.ExitCode = &code
			}
		}
		out.Error = re
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func humanBytes(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// startProgress prints msg to w if the operation outlasts a short grace
// period, and how long it took when it ends. Fast operations stay silent.
func startProgress(w io.Writer, quiet bool, msg string) (done func()) {
	if quiet {
		return func() {}
	}
	start := time.Now()
	shown := make(chan struct{})
	t := time.AfterFunc(250*time.Millisecond, func() {
		fmt.Fprintf(w, "ferry: %s…\n", msg)
		close(shown)
	})
	return func() {
		if t.Stop() {
			return
		}
		<-shown
		fmt.Fprintf(w, "ferry: %s: done in %s\n", msg, time.Since(start).Round(time.Millisecond))
	}
}

// loadRunTarget reads the module to run: a file, or a job of a bundle. For a
// bundle job, its blueprint overrides and grants fill in whatever the user
// did not set by flag.
func loadRunTarget(cmd *cobra.Command, f *runFlags, path string, lim *wasmrt.Limits) ([]byte, string, error) {
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		if f.job != "" {
			return nil, "", withCode(exitUsage, fmt.Errorf("--job needs a bundle directory, %s is not one", path))
		}
		wasm, err := readModule(path)
		return wasm, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), err
	}
	b, err := bundle.Open(path)
	if err != nil {
		return nil, "", withCode(exitModule, err)
	}
	if f.job == "" {
		names := make([]string, len(b.Manifest.Jobs))
		for i, j := range b.Manifest.Jobs {
			names[i] = j.Name
		}
		return nil, "", withCode(exitUsage, fmt.Errorf("%s is a bundle: say which job with --job (one of %s)", path, strings.Join(names, ", ")))
	}
	job, ok := b.Manifest.Job(f.job)
	if !ok {
		_, err := b.Module(f.job) // for its message listing the jobs
		return nil, "", withCode(exitUsage, err)
	}
	wasm, err := b.Module(f.job)
	if err != nil {
		return nil, "", withCode(exitModule, err)
	}
	if job.Overrides.MemoryMB != nil && !cmd.Flags().Changed("memory") {
		lim.MaxMemoryBytes = uint64(*job.Overrides.MemoryMB) << 20
	}
	if job.Overrides.TimeoutSecs != nil && !cmd.Flags().Changed("timeout") {
		lim.Timeout = time.Duration(*job.Overrides.TimeoutSecs) * time.Second
	}
	if len(f.allowHosts) == 0 {
		f.allowHosts = job.NetworkCalls
	}
	return wasm, b.Manifest.Blueprint + "." + job.Name, nil
}
