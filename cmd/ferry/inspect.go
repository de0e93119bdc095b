package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/modstore"
)

// inspectResult is the --json output of ferry inspect.
type inspectResult struct {
	File   string `json:"file"`
	Digest string `json:"digest"`
	Size   int    `json:"size_bytes"`
	*abi.Info
	Pure                 bool `json:"pure"`
	DeterministicDefault bool `json:"deterministic_by_default"`
}

func newInspectCmd(e *env) *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "inspect MODULE.wasm",
		Short: "Show a module's ABI shape, exports, imports and capabilities",
		Long: `Read a module without running or compiling it and print its Ferry ABI shape
and version, its exports and imports, and the capabilities its imports grant
(state, network, filesystem, clock, random). A module the runtime would refuse
is reported with the reason, and the exit status is 3.`,
		Example: `  ferry inspect squaring.wasm
  ferry inspect squaring.wasm --json | jq .capabilities`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := readModule(args[0])
			if err != nil {
				return err
			}
			info, err := abi.Describe(wasm)
			if err != nil {
				return withCode(exitModule, fmt.Errorf("%s: %w", args[0], err))
			}
			res := inspectResult{File: filepath.Base(args[0]), Digest: modstore.Digest(wasm), Size: len(wasm), Info: info,
				Pure: info.Pure(), DeterministicDefault: !info.Has(abi.CapNetwork)}
			if jsonOut {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return withCode(exitHost, enc.Encode(res))
			}
			return withCode(exitHost, printInspect(e, res))
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	return cmd
}

func printInspect(e *env, r inspectResult) error {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	version := fmt.Sprintf("v%d", r.Version)
	if r.Version == 0 {
		version = "none (plain WASI command)"
	}
	capStr := joinCaps(r.Capabilities, ", ", "none (compute only)")
	mem := "none"
	if r.Memory != nil {
		mem = fmt.Sprintf("%d pages (%s) initial", r.Memory.Min, humanBytes(int(r.Memory.Min*65536)))
		if r.Memory.HasMax {
			mem += fmt.Sprintf(", %d max", r.Memory.Max)
		}
	}
	fmt.Fprintf(w, "file\t%s\n", r.File)
	fmt.Fprintf(w, "digest\t%s\n", r.Digest)
	fmt.Fprintf(w, "size\t%s\n", humanBytes(r.Size))
	fmt.Fprintf(w, "shape\t%s\n", r.Shape)
	fmt.Fprintf(w, "abi version\t%s\n", version)
	fmt.Fprintf(w, "memory\t%s\n", mem)
	fmt.Fprintf(w, "capabilities\t%s\n", capStr)
	fmt.Fprintf(w, "pure\t%t\n", r.Pure)
	fmt.Fprintf(w, "deterministic\t%t (by default)\n", r.DeterministicDefault)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nexports (%d):\n", len(r.Exports))
	w = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, x := range r.Exports {
		typ := ""
		if x.Type != nil {
			typ = x.Type.String()
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", x.Name, x.Kind, typ)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nimports (%d):\n", len(r.Imports))
	w = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, im := range r.Imports {
		typ := im.Kind.String()
		if im.Type != nil {
			typ = im.Type.String()
		}
		fmt.Fprintf(w, "  %s.%s\t%s\n", im.Module, im.Name, typ)
	}
	return w.Flush()
}

// joinCaps lists capabilities for a human, or says none.
func joinCaps(caps []abi.Capability, sep, none string) string {
	if len(caps) == 0 {
		return none
	}
	s := make([]string, len(caps))
	for i, c := range caps {
		s[i] = string(c)
	}
	return strings.Join(s, sep)
}
