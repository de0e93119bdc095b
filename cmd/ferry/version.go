package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/runtime/abi"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newVersionCmd(e *env) *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print Ferry's version, ABI version and engine versions",
		Example: "  ferry version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := map[string]string{
				"ferry":    version,
				"abi":      fmt.Sprintf("v%d", abi.Version),
				"go":       runtime.Version(),
				"platform": runtime.GOOS + "/" + runtime.GOARCH,
				"wazero":   depVersion("github.com/tetratelabs/wazero"),
			}
			if jsonOut {
				return json.NewEncoder(e.stdout).Encode(v)
			}
			for _, k := range []string{"ferry", "abi", "wazero", "go", "platform"} {
				fmt.Fprintf(e.stdout, "%-9s %s\n", k, v[k])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	return cmd
}

func depVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return "unknown"
}
