package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/engine"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// Exit codes. Scripts branch on them; docs/cli.md lists them.
const (
	exitOK       = 0
	exitJobError = 1 // the job ran and failed (trap, timeout, limit, guest error)
	exitUsage    = 2 // bad flags or arguments
	exitModule   = 3 // the module was refused (not wasm, ABI mismatch, …)
	exitHost     = 4 // Ferry itself failed (I/O, state store, …)
)

// env is what commands need from the process, injected for tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func doMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !errors.Is(ee.err, errReported) {
			fmt.Fprintln(stderr, "ferry:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: unknown command or flag, wrong argument count.
	fmt.Fprintln(stderr, "ferry:", err)
	return exitUsage
}

// errReported marks an error whose message a command already printed.
var errReported = errors.New("reported")

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Run WebAssembly jobs wherever they run best",
		Long: `Ferry compiles each job of a blueprint once to WebAssembly and runs that
same module in-process, on AWS Lambda, on Cloudflare Workers or on any host
that speaks the custom FaaS protocol.`,
		Example: `  ferry run job.wasm --input 12345
  ferry inspect job.wasm --json`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(e), newInspectCmd(e), newBuildCmd(e), newAnalyzeCmd(e), newPlanCmd(e), newCloudCmd(e), newHostCmd(e), newServeCmd(e), newDeployCmd(e), newInvokeCmd(e), newJobsCmd(e), newBenchCmd(e), newVersionCmd(e))
	return root
}

// moduleErrCode maps a Load error to an exit code.
func moduleErrCode(err error) int {
	for _, s := range []error{abi.ErrNotWasm, abi.ErrMalformed, abi.ErrABIVersion, abi.ErrMissingExport,
		abi.ErrBadSignature, abi.ErrUnsupportedImport, engine.ErrCompile, wasmrt.ErrReuseNotPure, wasmrt.ErrInvalidLimits} {
		if errors.Is(err, s) {
			return exitModule
		}
	}
	return exitHost
}

// defaultDir returns the XDG directory for kind ("cache" or "data").
func defaultDir(kind string) string {
	switch kind {
	case "cache":
		if d, err := os.UserCacheDir(); err == nil {
			return filepath.Join(d, "ferry")
		}
	case "data":
		if d := os.Getenv("XDG_DATA_HOME"); d != "" {
			return filepath.Join(d, "ferry")
		}
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, ".local", "share", "ferry")
		}
	}
	return filepath.Join(os.TempDir(), "ferry")
}

// readModule reads a module file with a size limit.
func readModule(path string) ([]byte, error) {
	const maxModule = 256 << 20
	f, err := os.Open(path)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxModule+1))
	if err != nil {
		return nil, withCode(exitHost, fmt.Errorf("read %s: %w", path, err))
	}
	if len(b) > maxModule {
		return nil, withCode(exitModule, fmt.Errorf("%s: over the 256 MiB module limit", path))
	}
	return b, nil
}
