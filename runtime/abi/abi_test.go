package abi_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/wasmbin"
)

const examplesDir = "../../wasm-examples/wat"

var sentinels = []error{
	abi.ErrNotWasm, abi.ErrMalformed, abi.ErrABIVersion,
	abi.ErrMissingExport, abi.ErrBadSignature, abi.ErrUnsupportedImport,
}

// matchingSentinels returns the sentinels err wraps.
func matchingSentinels(err error) []error {
	var out []error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			out = append(out, s)
		}
	}
	return out
}

func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, name+".wasm"))
	require.NoError(t, err)
	return b
}

// --- tiny module assembler ---------------------------------------------------
//
// wasmbin does not read function bodies, so the modules built here have no
// code section: enough for Describe, not for an engine.

const (
	i32 = wasmbin.I32
	i64 = wasmbin.I64
)

func v(vs ...wasmbin.ValType) []wasmbin.ValType { return vs }

func uleb(x uint64) []byte {
	var out []byte
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if x != 0 {
			out = append(out, c|0x80)
			continue
		}
		return append(out, c)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func name(s string) []byte { return cat(uleb(uint64(len(s))), []byte(s)) }

func vec(items [][]byte) []byte { return cat(uleb(uint64(len(items))), cat(items...)) }

func sect(id byte, items [][]byte) []byte {
	if len(items) == 0 {
		return nil
	}
	body := vec(items)
	return cat([]byte{id}, uleb(uint64(len(body))), body)
}

type export struct {
	name string
	kind wasmbin.ExternKind
	idx  uint32
	def  bool // idx counts defined functions only; imports are added at build
}

type builder struct {
	types    []wasmbin.FuncType
	imports  [][]byte
	funcImps uint32
	funcs    [][]byte
	memories [][]byte
	exports  []export
}

func newModule() *builder { return &builder{} }

func (b *builder) typeIdx(params []wasmbin.ValType, results []wasmbin.ValType) []byte {
	ft := wasmbin.FuncType{Params: params, Results: results}
	for i, t := range b.types {
		if t.Equal(ft) {
			return uleb(uint64(i))
		}
	}
	b.types = append(b.types, ft)
	return uleb(uint64(len(b.types) - 1))
}

// importFunc adds a function import.
func (b *builder) importFunc(mod, n string, params []wasmbin.ValType, results ...wasmbin.ValType) *builder {
	b.imports = append(b.imports, cat(name(mod), name(n), []byte{0}, b.typeIdx(params, results)))
	b.funcImps++
	return b
}

// importMemory adds a memory import with the given minimum pages.
func (b *builder) importMemory(mod, n string, minPages uint64) *builder {
	b.imports = append(b.imports, cat(name(mod), name(n), []byte{byte(wasmbin.KindMemory), 0}, uleb(minPages)))
	return b
}

// fn defines a function and exports it as n.
func (b *builder) fn(n string, params []wasmbin.ValType, results ...wasmbin.ValType) *builder {
	b.funcs = append(b.funcs, b.typeIdx(params, results))
	b.exports = append(b.exports, export{name: n, kind: wasmbin.KindFunc, idx: uint32(len(b.funcs) - 1), def: true})
	return b
}

// memory defines a memory of minPages and exports it as n (if n != "").
func (b *builder) memory(n string, minPages uint64) *builder {
	b.memories = append(b.memories, cat([]byte{0}, uleb(minPages)))
	if n != "" {
		b.exports = append(b.exports, export{name: n, kind: wasmbin.KindMemory, idx: uint32(len(b.memories) - 1)})
	}
	return b
}

// exportRaw adds an export of any kind and absolute index.
func (b *builder) exportRaw(n string, k wasmbin.ExternKind, idx uint32) *builder {
	b.exports = append(b.exports, export{name: n, kind: k, idx: idx})
	return b
}

// drop removes the exports called n added so far (what they export stays
// defined).
func (b *builder) drop(n string) *builder {
	b.exports = slices.DeleteFunc(b.exports, func(e export) bool { return e.name == n })
	return b
}

func (b *builder) wasm() []byte {
	var types, exports [][]byte
	for _, t := range b.types {
		types = append(types, cat([]byte{0x60}, uleb(uint64(len(t.Params))), valBytes(t.Params), uleb(uint64(len(t.Results))), valBytes(t.Results)))
	}
	for _, e := range b.exports {
		idx := e.idx
		if e.def {
			idx += b.funcImps
		}
		exports = append(exports, cat(name(e.name), []byte{byte(e.kind)}, uleb(uint64(idx))))
	}
	return cat(wasmbin.Magic, wasmbin.Version,
		sect(1, types), sect(2, b.imports), sect(3, b.funcs), sect(5, b.memories), sect(7, exports))
}

func valBytes(vs []wasmbin.ValType) []byte {
	out := make([]byte, len(vs))
	for i, x := range vs {
		out[i] = byte(x)
	}
	return out
}

// reactor is a minimal well-formed ABI v1 reactor with one page of memory.
func reactor() *builder { return reactorPages(1) }

// reactorPages is reactor with a memory of the given minimum size.
func reactorPages(pages uint64) *builder {
	return newModule().
		memory("memory", pages).
		fn("ferry_abi_v1", nil).
		fn("ferry_alloc", v(i32), i32).
		fn("ferry_run", v(i32, i32), i64)
}

// command is a minimal WASI command.
func command() *builder {
	return newModule().memory("memory", 1).fn("_start", nil)
}

// --- Describe ------------------------------------------------------------------

func TestDescribe_Scenarios(t *testing.T) {
	cases := []struct {
		name string
		file string // committed example, or
		wasm []byte // a hand-built module

		// On success:
		shape    abi.Shape
		version  int
		caps     []abi.Capability
		pure     bool
		init     bool
		memBytes uint64

		// On failure:
		wantErr error
		wantMsg []string
	}{
		// Committed examples.
		{name: "echo", file: "echo", shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{name: "cat", file: "cat", shape: abi.Command, version: 0, pure: true, memBytes: 65536},
		{name: "exit3", file: "exit3", shape: abi.Command, version: 0, pure: true, memBytes: 65536},
		{
			name: "entropy", file: "entropy", shape: abi.Command, version: 0,
			caps: []abi.Capability{abi.CapClock, abi.CapRandom}, pure: true, memBytes: 65536,
		},
		{
			name: "guesterror", file: "guesterror", shape: abi.Reactor, version: 1,
			caps: []abi.Capability{abi.CapLog}, pure: true, memBytes: 65536,
		},
		{name: "badoutput", file: "badoutput", shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{name: "bigoutput", file: "bigoutput", shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{name: "calls", file: "calls", shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{name: "spin", file: "spin", shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{name: "loop", file: "loop", shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{name: "membomb", file: "membomb", shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{name: "stackoverflow", file: "stackoverflow", shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{name: "trap", file: "trap", shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{name: "abiv99", file: "abiv99", wantErr: abi.ErrABIVersion, wantMsg: []string{"v99", "implements v1"}},
		{name: "noalloc", file: "noalloc", wantErr: abi.ErrMissingExport, wantMsg: []string{"ferry_alloc", "(i32) -> i32"}},
		{name: "badimport", file: "badimport", wantErr: abi.ErrUnsupportedImport, wantMsg: []string{"env.host_secret"}},

		// Not wasm / malformed.
		{name: "empty", wasm: []byte{}, wantErr: abi.ErrNotWasm},
		{name: "text format", wasm: []byte("(module)"), wantErr: abi.ErrNotWasm},
		{name: "component", wasm: cat(wasmbin.Magic, []byte{0x0d, 0, 1, 0}), wantErr: abi.ErrMalformed, wantMsg: []string{"components"}},
		{name: "truncated", wasm: reactor().wasm()[:20], wantErr: abi.ErrMalformed, wantMsg: []string{"truncated module"}},

		// Hand-built reactors.
		{name: "minimal reactor", wasm: reactor().wasm(), shape: abi.Reactor, version: 1, pure: true, memBytes: 65536},
		{
			name:  "reactor with _initialize",
			wasm:  reactor().fn("_initialize", nil).wasm(),
			shape: abi.Reactor, version: 1, pure: true, init: true, memBytes: 65536,
		},
		{
			name:  "reactor with 17 pages",
			wasm:  reactorPages(17).wasm(),
			shape: abi.Reactor, version: 1, pure: true, memBytes: 17 * 65536,
		},
		{
			// Describe reports the first defined memory, exported or not.
			name:  "multi-memory: first defined memory is reported",
			wasm:  newModule().memory("", 3).memory("memory", 1).fn("ferry_abi_v1", nil).fn("ferry_alloc", v(i32), i32).fn("ferry_run", v(i32, i32), i64).wasm(),
			shape: abi.Reactor, version: 1, pure: true, memBytes: 3 * 65536,
		},
		{
			name:    "ferry_run with wrong signature",
			wasm:    reactor().drop("ferry_run").fn("ferry_run", v(i32, i32), i32).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"ferry_run must be (i32, i32) -> i64, is (i32, i32) -> i32"},
		},
		{
			name:    "ferry_alloc with wrong signature",
			wasm:    reactor().drop("ferry_alloc").fn("ferry_alloc", v(i64), i64).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"ferry_alloc must be (i32) -> i32, is (i64) -> i64"},
		},
		{
			name:    "ferry_alloc is a global",
			wasm:    reactor().drop("ferry_alloc").exportRaw("ferry_alloc", wasmbin.KindGlobal, 0).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"ferry_alloc must be (i32) -> i32, is global"},
		},
		{
			name:    "ferry_run with unresolvable type",
			wasm:    reactor().drop("ferry_run").exportRaw("ferry_run", wasmbin.KindFunc, 99).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"ferry_run", "is func"},
		},
		{
			name:    "two markers",
			wasm:    reactor().fn("ferry_abi_v2", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{"both v1 and v2"},
		},
		{
			name:    "same marker twice",
			wasm:    reactor().fn("ferry_abi_v1", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{"both v1 and v1"},
		},
		{
			name:    "non-numeric marker",
			wasm:    reactor().drop("ferry_abi_v1").fn("ferry_abi_vX", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{`"ferry_abi_vX" is not a valid version marker`, "ferry_abi_v1"},
		},
		{
			name:    "marker with a leading zero",
			wasm:    reactor().drop("ferry_abi_v1").fn("ferry_abi_v01", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{`"ferry_abi_v01" is not a valid version marker`},
		},
		{
			name:    "marker with a sign",
			wasm:    reactor().drop("ferry_abi_v1").fn("ferry_abi_v+1", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{`"ferry_abi_v+1" is not a valid version marker`},
		},
		{
			name:    "marker v0",
			wasm:    reactor().drop("ferry_abi_v1").fn("ferry_abi_v0", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{`"ferry_abi_v0"`},
		},
		{
			name:    "marker without a number",
			wasm:    reactor().drop("ferry_abi_v1").fn("ferry_abi_v", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{`"ferry_abi_v"`},
		},
		{
			name:    "negative marker",
			wasm:    reactor().drop("ferry_abi_v1").fn("ferry_abi_v-1", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{`"ferry_abi_v-1"`},
		},
		{
			name:    "marker v2",
			wasm:    reactor().drop("ferry_abi_v1").fn("ferry_abi_v2", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{"declares Ferry ABI v2"},
		},
		{
			name:    "future marker on a command",
			wasm:    command().fn("ferry_abi_v7", nil).wasm(),
			wantErr: abi.ErrABIVersion, wantMsg: []string{"v7"},
		},
		{
			name:    "reactor without memory export",
			wasm:    reactor().drop("memory").wasm(),
			wantErr: abi.ErrMissingExport, wantMsg: []string{`export its memory as "memory"`},
		},
		{
			name:    "reactor memory export is a function",
			wasm:    reactor().drop("memory").fn("memory", nil).wasm(),
			wantErr: abi.ErrMissingExport, wantMsg: []string{`"memory"`},
		},
		{
			name:    "reactor without ferry_run",
			wasm:    reactor().drop("ferry_run").wasm(),
			wantErr: abi.ErrMissingExport, wantMsg: []string{"ferry_run (i32, i32) -> i64"},
		},
		{
			name:    "neither _start nor marker",
			wasm:    reactor().drop("ferry_abi_v1").wasm(),
			wantErr: abi.ErrMissingExport, wantMsg: []string{"neither _start", "ferry_abi_v1"},
		},
		{
			name:    "empty module",
			wasm:    newModule().wasm(),
			wantErr: abi.ErrMissingExport, wantMsg: []string{"neither _start"},
		},

		// Commands.
		{name: "minimal command", wasm: command().wasm(), shape: abi.Command, pure: true, memBytes: 65536},
		{name: "command without memory", wasm: newModule().fn("_start", nil).wasm(), shape: abi.Command, pure: true},
		{
			name: "command with marker", wasm: command().fn("ferry_abi_v1", nil).wasm(),
			shape: abi.Command, version: 1, pure: true, memBytes: 65536,
		},
		{
			name: "command wins over reactor exports", wasm: reactor().fn("_start", nil).wasm(),
			shape: abi.Command, version: 1, pure: true, memBytes: 65536,
		},
		{
			name: "command with _initialize", wasm: command().fn("_initialize", nil).wasm(),
			shape: abi.Command, pure: true, init: true, memBytes: 65536,
		},
		{
			name:    "_start with params",
			wasm:    newModule().memory("memory", 1).fn("_start", v(i32)).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"_start must be a function ()"},
		},
		{
			name:    "_start with result",
			wasm:    newModule().memory("memory", 1).fn("_start", nil, i32).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"_start"},
		},
		{
			name:    "_start is a memory",
			wasm:    newModule().memory("_start", 1).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"_start"},
		},

		// Imports and capabilities.
		{
			name:    "unknown ferry import",
			wasm:    reactor().importFunc("ferry", "spawn", v(i32)).wasm(),
			wantErr: abi.ErrUnsupportedImport, wantMsg: []string{"ferry.spawn is not a Ferry ABI v1 host function"},
		},
		{
			name:    "ferry.log with wrong type",
			wasm:    reactor().importFunc("ferry", "log", v(i32, i32)).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"ferry.log must be a function (i32, i32, i32)"},
		},
		{
			name:    "ferry.state_get returning nothing",
			wasm:    reactor().importFunc("ferry", "state_get", v(i32, i32)).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"ferry.state_get must be a function (i32, i32) -> i32"},
		},
		{
			name:    "ferry.log imported as a memory",
			wasm:    reactor().importMemory("ferry", "log", 1).wasm(),
			wantErr: abi.ErrBadSignature, wantMsg: []string{"ferry.log"},
		},
		{
			name:    "memory imported from env",
			wasm:    reactor().importMemory("env", "memory", 1).wasm(),
			wantErr: abi.ErrUnsupportedImport, wantMsg: []string{"env.memory", `"ferry"`, `"wasi_snapshot_preview1"`},
		},
		{
			name: "state imports",
			wasm: reactor().
				importFunc("ferry", "state_get", v(i32, i32), i32).
				importFunc("ferry", "state_set", v(i32, i32, i32, i32), i32).
				importFunc("ferry", "state_delete", v(i32, i32), i32).
				wasm(),
			shape: abi.Reactor, version: 1, caps: []abi.Capability{abi.CapState}, pure: false, memBytes: 65536,
		},
		{
			name:  "http_request",
			wasm:  reactor().importFunc("ferry", "http_request", v(i32, i32), i32).wasm(),
			shape: abi.Reactor, version: 1, caps: []abi.Capability{abi.CapNetwork}, pure: false, memBytes: 65536,
		},
		{
			name:  "ferry.take needs no capability",
			wasm:  reactor().importFunc("ferry", "take", v(i32, i32), i32).wasm(),
			shape: abi.Reactor, version: 1, pure: true, memBytes: 65536,
		},
		{
			name: "every ferry host function, capabilities sorted",
			wasm: func() []byte {
				b := reactor()
				for _, f := range abi.HostFuncs {
					b.importFunc(abi.Namespace, f.Name, f.Type.Params, f.Type.Results...)
				}
				return b.wasm()
			}(),
			shape: abi.Reactor, version: 1,
			caps: []abi.Capability{abi.CapLog, abi.CapNetwork, abi.CapState}, pure: false, memBytes: 65536,
		},
		{
			name:  "wasi path_open",
			wasm:  command().importFunc(abi.WASI, "path_open", v(i32, i32, i32, i32, i32, i64, i64, i32, i32), i32).wasm(),
			shape: abi.Command, caps: []abi.Capability{abi.CapFilesystem}, pure: false, memBytes: 65536,
		},
		{
			name:  "wasi fd_readdir",
			wasm:  command().importFunc(abi.WASI, "fd_readdir", v(i32, i32, i32, i64, i32), i32).wasm(),
			shape: abi.Command, caps: []abi.Capability{abi.CapFilesystem}, pure: false, memBytes: 65536,
		},
		{
			name:  "wasi sockets",
			wasm:  command().importFunc(abi.WASI, "sock_send", v(i32, i32, i32, i32, i32), i32).wasm(),
			shape: abi.Command, caps: []abi.Capability{abi.CapNetwork}, pure: false, memBytes: 65536,
		},
		{
			name: "wasi env, clock, random and plain io",
			wasm: command().
				importFunc(abi.WASI, "environ_get", v(i32, i32), i32).
				importFunc(abi.WASI, "environ_sizes_get", v(i32, i32), i32).
				importFunc(abi.WASI, "poll_oneoff", v(i32, i32, i32, i32), i32).
				importFunc(abi.WASI, "random_get", v(i32, i32), i32).
				importFunc(abi.WASI, "fd_write", v(i32, i32, i32, i32), i32).
				importFunc(abi.WASI, "proc_exit", v(i32)).
				importFunc(abi.WASI, "args_sizes_get", v(i32, i32), i32).
				wasm(),
			shape: abi.Command,
			caps:  []abi.Capability{abi.CapClock, abi.CapEnv, abi.CapRandom}, pure: true, memBytes: 65536,
		},
		{
			name:    "ferry import on a command is still checked",
			wasm:    command().importFunc("ferry", "nope", nil).wasm(),
			wantErr: abi.ErrUnsupportedImport, wantMsg: []string{"ferry.nope"},
		},
	}

	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.file] = true
		t.Run(tc.name, func(t *testing.T) {
			wasm := tc.wasm
			if tc.file != "" {
				wasm = example(t, tc.file)
			}
			info, err := abi.Describe(wasm)
			if tc.wantErr != nil {
				require.Error(t, err)
				assert.Nil(t, info)
				assert.ErrorIs(t, err, tc.wantErr)
				assert.Equal(t, []error{tc.wantErr}, matchingSentinels(err), "must wrap exactly one sentinel: %v", err)
				for _, s := range tc.wantMsg {
					assert.Contains(t, err.Error(), s)
				}
				return
			}
			require.NoError(t, err)
			require.NotNil(t, info)
			assert.Equal(t, tc.shape, info.Shape, "shape")
			assert.Equal(t, tc.version, info.Version, "version")
			assert.Equal(t, tc.caps, info.Capabilities, "capabilities")
			assert.Equal(t, tc.pure, info.Pure(), "pure")
			assert.Equal(t, tc.init, info.HasInitialize, "has _initialize")
			assert.Equal(t, tc.memBytes, info.MinMemoryBytes(), "min memory")
			for _, c := range tc.caps {
				assert.True(t, info.Has(c), "Has(%s)", c)
			}
			assert.False(t, info.Has("teleport"))
		})
	}

	files, err := filepath.Glob(filepath.Join(examplesDir, "*.wasm"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		n := strings.TrimSuffix(filepath.Base(f), ".wasm")
		assert.True(t, covered[n], "example %s.wasm has no case in TestDescribe_Scenarios", n)
	}
}

func TestDescribe_ExposesModuleContents(t *testing.T) {
	info, err := abi.Describe(example(t, "guesterror"))
	require.NoError(t, err)
	var imports, exports []string
	for _, im := range info.Imports {
		imports = append(imports, im.Module+"."+im.Name)
	}
	for _, e := range info.Exports {
		exports = append(exports, e.Name)
	}
	assert.Equal(t, []string{"ferry.log", "ferry.error"}, imports)
	assert.Equal(t, []string{"memory", "ferry_abi_v1", "ferry_alloc", "ferry_run"}, exports)
	require.NotNil(t, info.Memory)
	assert.Equal(t, wasmbin.Limits{Min: 1}, *info.Memory)
	assert.Empty(t, info.Customs)
}

func TestDescribe_MalformedWrapsParserError(t *testing.T) {
	_, err := abi.Describe(example(t, "echo")[:30])
	require.Error(t, err)
	assert.ErrorIs(t, err, abi.ErrMalformed)
	assert.ErrorIs(t, err, wasmbin.ErrMalformed)

	_, err = abi.Describe([]byte("not wasm at all"))
	assert.ErrorIs(t, err, abi.ErrNotWasm)
	assert.NotErrorIs(t, err, wasmbin.ErrNotWasm, "Describe returns its own sentinel")
}

func TestInfo_Pure(t *testing.T) {
	cases := []struct {
		name string
		caps []abi.Capability
		want bool
	}{
		{name: "no capabilities", want: true},
		{name: "log", caps: []abi.Capability{abi.CapLog}, want: true},
		{name: "clock, random, env", caps: []abi.Capability{abi.CapClock, abi.CapEnv, abi.CapRandom}, want: true},
		{name: "state", caps: []abi.Capability{abi.CapState}, want: false},
		{name: "network", caps: []abi.Capability{abi.CapNetwork}, want: false},
		{name: "filesystem", caps: []abi.Capability{abi.CapFilesystem}, want: false},
		{name: "log and state", caps: []abi.Capability{abi.CapLog, abi.CapState}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info := &abi.Info{Capabilities: tc.caps}
			assert.Equal(t, tc.want, info.Pure())
		})
	}
}

func TestInfo_Has(t *testing.T) {
	info := &abi.Info{Capabilities: []abi.Capability{abi.CapClock, abi.CapLog}}
	cases := []struct {
		name string
		c    abi.Capability
		want bool
	}{
		{name: "first", c: abi.CapClock, want: true},
		{name: "last", c: abi.CapLog, want: true},
		{name: "absent", c: abi.CapState},
		{name: "empty", c: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, info.Has(tc.c))
		})
	}
	assert.False(t, (&abi.Info{}).Has(abi.CapLog))
}

func TestInfo_MinMemoryBytes(t *testing.T) {
	cases := []struct {
		name string
		mem  *wasmbin.Limits
		want uint64
	}{
		{name: "no memory", mem: nil, want: 0},
		{name: "zero pages", mem: &wasmbin.Limits{}, want: 0},
		{name: "one page", mem: &wasmbin.Limits{Min: 1}, want: 65536},
		{name: "max ignored", mem: &wasmbin.Limits{Min: 2, Max: 100, HasMax: true}, want: 2 * 65536},
		{name: "4 GiB", mem: &wasmbin.Limits{Min: 65536}, want: 1 << 32},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info := &abi.Info{Memory: tc.mem}
			assert.Equal(t, tc.want, info.MinMemoryBytes())
		})
	}
}

func TestLookupHostFunc(t *testing.T) {
	for _, f := range abi.HostFuncs {
		got, ok := abi.LookupHostFunc(f.Name)
		require.True(t, ok, f.Name)
		assert.Equal(t, f, got)
	}
	_, ok := abi.LookupHostFunc("nope")
	assert.False(t, ok)
	assert.Equal(t, "ferry_abi_v1", abi.Marker)
}

// --- fuzzing ------------------------------------------------------------------

func FuzzDescribe(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.wasm"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no example modules in %s: %v", examplesDir, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(reactor().importFunc("ferry", "state_get", v(i32, i32), i32).wasm())
	f.Add(command().importFunc(abi.WASI, "path_open", v(i32)).wasm())

	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := abi.Describe(b)
		if err != nil {
			if info != nil {
				t.Fatalf("Describe returned info and an error: %v", err)
			}
			if got := matchingSentinels(err); len(got) != 1 {
				t.Fatalf("error wraps %d sentinels, want exactly 1: %v", len(got), err)
			}
			return
		}
		if info == nil {
			t.Fatal("Describe returned neither info nor an error")
		}
		switch info.Shape {
		case abi.Reactor:
			if info.Version != abi.Version {
				t.Fatalf("reactor with version %d", info.Version)
			}
		case abi.Command:
			if info.Version != 0 && info.Version != abi.Version {
				t.Fatalf("command with version %d", info.Version)
			}
		default:
			t.Fatalf("unknown shape %q", info.Shape)
		}
		if !slices.IsSorted(info.Capabilities) || len(slices.Compact(slices.Clone(info.Capabilities))) != len(info.Capabilities) {
			t.Fatalf("capabilities not sorted and unique: %v", info.Capabilities)
		}
		for _, c := range info.Capabilities {
			if !info.Has(c) {
				t.Fatalf("Has(%s) is false", c)
			}
		}
		_ = info.Pure()
		_ = info.MinMemoryBytes()
	})
}
