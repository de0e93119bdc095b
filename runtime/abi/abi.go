// Package abi is Ferry's guest ABI, version 1, as code: the export and import
// names, their signatures, the status codes host functions return, and
// Describe, which reads a module's shape, version and capabilities from its
// binary without compiling it. docs/abi.md is the prose version; the two
// change together.
//
// This package does no I/O and runs no guest code. Executing modules lives in
// runtime/wasmrt.
package abi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryrun/ferry/runtime/wasmbin"
)

// Version is the ABI version this build of Ferry implements.
const Version = 1

// Names of exports and imports.
const (
	// MarkerPrefix starts the export that declares the ABI version:
	// "ferry_abi_v1" declares version 1. Its kind and signature do not matter.
	MarkerPrefix = "ferry_abi_v"
	// Namespace is the import module of every Ferry host function.
	Namespace = "ferry"
	// WASI is the import module of WASI preview 1.
	WASI = "wasi_snapshot_preview1"

	ExportMemory     = "memory"
	ExportAlloc      = "ferry_alloc"
	ExportRun        = "ferry_run"
	ExportInitialize = "_initialize"
	ExportStart      = "_start"
)

// Marker is the export name that declares this host's ABI version.
var Marker = MarkerPrefix + strconv.Itoa(Version)

// Shape is how a module is driven.
type Shape string

const (
	// Reactor modules export an allocator and a run function; the host copies
	// the input in and the output out in bulk. The fast path.
	Reactor Shape = "reactor"
	// Command modules export _start; stdin is the input, stdout the output,
	// stderr the log and a non-zero exit status a job error. Any WASI program
	// is a command.
	Command Shape = "command"
)

// Status codes returned (as negative i32) by host functions.
const (
	CodeNotFound    int32 = -1
	CodeDenied      int32 = -2
	CodeTooLarge    int32 = -3
	CodeFailed      int32 = -4
	CodeInvalid     int32 = -5
	CodeRateLimited int32 = -6
)

// Log levels passed to ferry.log.
const (
	LogDebug int32 = 0
	LogInfo  int32 = 1
	LogWarn  int32 = 2
	LogError int32 = 3
)

// Capability is something a module can do beyond computing, derived from its
// imports. A module's imports are its capabilities.
type Capability string

const (
	CapLog        Capability = "log"
	CapState      Capability = "state"
	CapNetwork    Capability = "network"
	CapFilesystem Capability = "filesystem"
	CapClock      Capability = "clock"
	CapRandom     Capability = "random"
	CapEnv        Capability = "env"
)

var (
	i32 = wasmbin.I32
	i64 = wasmbin.I64
)

func sig(params []wasmbin.ValType, results ...wasmbin.ValType) wasmbin.FuncType {
	return wasmbin.FuncType{Params: params, Results: results}
}

// HostFunc describes one import of the ferry namespace.
type HostFunc struct {
	Name string
	Type wasmbin.FuncType
	Cap  Capability
}

// HostFuncs are the imports ABI v1 defines, in the ferry namespace.
var HostFuncs = []HostFunc{
	{"log", sig([]wasmbin.ValType{i32, i32, i32}), CapLog},
	{"error", sig([]wasmbin.ValType{i32, i32}), CapLog},
	{"take", sig([]wasmbin.ValType{i32, i32}, i32), ""},
	{"state_get", sig([]wasmbin.ValType{i32, i32}, i32), CapState},
	{"state_set", sig([]wasmbin.ValType{i32, i32, i32, i32}, i32), CapState},
	{"state_delete", sig([]wasmbin.ValType{i32, i32}, i32), CapState},
	{"http_request", sig([]wasmbin.ValType{i32, i32}, i32), CapNetwork},
}

// LookupHostFunc returns the definition of ferry.name.
func LookupHostFunc(name string) (HostFunc, bool) {
	for _, f := range HostFuncs {
		if f.Name == name {
			return f, true
		}
	}
	return HostFunc{}, false
}

var (
	allocType = sig([]wasmbin.ValType{i32}, i32)
	runType   = sig([]wasmbin.ValType{i32, i32}, i64)
)

// wasiCaps maps WASI preview 1 imports to capabilities. Imports not listed
// (fd_write, proc_exit, args_sizes_get…) need none.
var wasiCaps = map[string]Capability{
	"clock_time_get":    CapClock,
	"clock_res_get":     CapClock,
	"poll_oneoff":       CapClock,
	"random_get":        CapRandom,
	"environ_get":       CapEnv,
	"environ_sizes_get": CapEnv,
	"sock_accept":       CapNetwork,
	"sock_recv":         CapNetwork,
	"sock_send":         CapNetwork,
	"sock_shutdown":     CapNetwork,
}

// Info is what Describe reads from a module.
type Info struct {
	Shape Shape `json:"shape"`
	// Version is the declared ABI version, 0 for a plain WASI command with
	// no Ferry marker.
	Version       int              `json:"abi_version"`
	HasInitialize bool             `json:"has_initialize"`
	Exports       []wasmbin.Export `json:"exports"`
	Imports       []wasmbin.Import `json:"imports"`
	Capabilities  []Capability     `json:"capabilities"`
	Memory        *wasmbin.Limits  `json:"memory,omitempty"`
	Customs       []string         `json:"custom_sections,omitempty"`
}

// Has reports whether the module has capability c.
func (i *Info) Has(c Capability) bool { return slices.Contains(i.Capabilities, c) }

// Pure reports whether the module can only compute: no state, network or
// filesystem. Clock and randomness do not count, because the sandbox can make
// them deterministic.
func (i *Info) Pure() bool {
	return !i.Has(CapState) && !i.Has(CapNetwork) && !i.Has(CapFilesystem)
}

// MinMemoryBytes is the memory the module needs at instantiation.
func (i *Info) MinMemoryBytes() uint64 {
	if i.Memory == nil {
		return 0
	}
	return i.Memory.Min * 65536
}

// Describe reads a module's ABI shape, version and capabilities. It checks
// everything that can be checked without compiling: a Ferry marker with an
// unknown version, missing or mistyped exports, and imports the host cannot
// provide each give an error wrapping the matching sentinel in errors.go.
func Describe(wasm []byte) (*Info, error) {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		if err == wasmbin.ErrNotWasm {
			return nil, ErrNotWasm
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return DescribeModule(m)
}

// DescribeModule is Describe for an already parsed module.
func DescribeModule(m *wasmbin.Module) (*Info, error) {
	info := &Info{Exports: m.Exports, Imports: m.Imports, Customs: m.Customs}
	if len(m.Memories) > 0 {
		info.Memory = &m.Memories[0]
	}
	caps := map[Capability]bool{}
	for _, im := range m.Imports {
		switch im.Module {
		case Namespace:
			f, ok := LookupHostFunc(im.Name)
			if !ok {
				return nil, fmt.Errorf("%w: %s.%s is not a Ferry ABI v%d host function", ErrUnsupportedImport, im.Module, im.Name, Version)
			}
			if im.Kind != wasmbin.KindFunc || im.Type == nil || !im.Type.Equal(f.Type) {
				return nil, fmt.Errorf("%w: %s.%s must be a function %s", ErrBadSignature, im.Module, im.Name, f.Type)
			}
			if f.Cap != "" {
				caps[f.Cap] = true
			}
		case WASI:
			if c, ok := wasiCaps[im.Name]; ok {
				caps[c] = true
			} else if strings.HasPrefix(im.Name, "path_") || im.Name == "fd_readdir" {
				caps[CapFilesystem] = true
			}
		default:
			return nil, fmt.Errorf("%w: %s.%s (Ferry provides only the %q and %q namespaces)", ErrUnsupportedImport, im.Module, im.Name, Namespace, WASI)
		}
	}
	for c := range caps {
		info.Capabilities = append(info.Capabilities, c)
	}
	slices.Sort(info.Capabilities)

	for _, e := range m.Exports {
		rest, ok := strings.CutPrefix(e.Name, MarkerPrefix)
		if !ok {
			continue
		}
		v, err := strconv.Atoi(rest)
		if err != nil || v <= 0 || strconv.Itoa(v) != rest { // digits only, no sign or leading zero
			return nil, fmt.Errorf("%w: export %q is not a valid version marker (want %s)", ErrABIVersion, e.Name, Marker)
		}
		if info.Version != 0 {
			return nil, fmt.Errorf("%w: module declares both v%d and v%d", ErrABIVersion, info.Version, v)
		}
		info.Version = v
	}
	if info.Version != 0 && info.Version != Version {
		return nil, fmt.Errorf("%w: module declares Ferry ABI v%d, this host implements v%d", ErrABIVersion, info.Version, Version)
	}
	_, info.HasInitialize = m.Export(ExportInitialize)

	if start, ok := m.Export(ExportStart); ok {
		if start.Kind != wasmbin.KindFunc || (start.Type != nil && (len(start.Type.Params) != 0 || len(start.Type.Results) != 0)) {
			return nil, fmt.Errorf("%w: %s must be a function () with no results", ErrBadSignature, ExportStart)
		}
		info.Shape = Command
		return info, nil
	}
	if info.Version == 0 {
		return nil, fmt.Errorf("%w: module exports neither %s (a WASI command) nor %s (a Ferry reactor)", ErrMissingExport, ExportStart, Marker)
	}
	info.Shape = Reactor
	if mem, ok := m.Export(ExportMemory); !ok || mem.Kind != wasmbin.KindMemory {
		return nil, fmt.Errorf("%w: reactor must export its memory as %q", ErrMissingExport, ExportMemory)
	}
	for _, want := range []struct {
		name string
		typ  wasmbin.FuncType
	}{{ExportAlloc, allocType}, {ExportRun, runType}} {
		e, ok := m.Export(want.name)
		if !ok {
			return nil, fmt.Errorf("%w: reactor must export %s %s", ErrMissingExport, want.name, want.typ)
		}
		if e.Kind != wasmbin.KindFunc || e.Type == nil || !e.Type.Equal(want.typ) {
			got := e.Kind.String()
			if e.Type != nil {
				got = e.Type.String()
			}
			return nil, fmt.Errorf("%w: %s must be %s, is %s", ErrBadSignature, want.name, want.typ, got)
		}
	}
	return info, nil
}
