package wasmbin

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// examplesDir holds the committed example modules (.wat sources and the
// .wasm files built from them).
const examplesDir = "../../wasm-examples/wat"

// --- tiny module assembler ---------------------------------------------------

// uleb encodes v as unsigned LEB128.
func uleb(v uint64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, c|0x80)
			continue
		}
		return append(out, c)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// name encodes a length-prefixed name.
func name(s string) []byte { return cat(uleb(uint64(len(s))), []byte(s)) }

// vec encodes a vector: its length, then the items.
func vec(items ...[]byte) []byte { return cat(uleb(uint64(len(items))), cat(items...)) }

// sect encodes a section with a correct size.
func sect(id byte, body ...[]byte) []byte {
	b := cat(body...)
	return cat([]byte{id}, uleb(uint64(len(b))), b)
}

// module prepends the magic number and version to the sections.
func module(sections ...[]byte) []byte { return cat(Magic, Version, cat(sections...)) }

func vals(vs ...ValType) []byte {
	b := uleb(uint64(len(vs)))
	for _, v := range vs {
		b = append(b, byte(v))
	}
	return b
}

func functype(params []ValType, results ...ValType) []byte {
	return cat([]byte{0x60}, vals(params...), vals(results...))
}

func p(vs ...ValType) []ValType { return vs }

func export(n string, k ExternKind, idx uint32) []byte {
	return cat(name(n), []byte{byte(k)}, uleb(uint64(idx)))
}

func importDesc(mod, n string, k ExternKind, desc ...byte) []byte {
	return cat(name(mod), name(n), []byte{byte(k)}, desc)
}

// --- readable views of a parsed module ---------------------------------------

func typeStrings(m *Module) []string {
	var out []string
	for _, t := range m.Types {
		out = append(out, t.String())
	}
	return out
}

func importStrings(m *Module) []string {
	var out []string
	for _, im := range m.Imports {
		s := fmt.Sprintf("%s.%s %s", im.Module, im.Name, im.Kind)
		if im.Type != nil {
			s += " " + im.Type.String()
		}
		if im.Memory != nil {
			s += fmt.Sprintf(" %+v", *im.Memory)
		}
		out = append(out, s)
	}
	return out
}

func exportStrings(m *Module) []string {
	var out []string
	for _, e := range m.Exports {
		s := fmt.Sprintf("%s %s[%d]", e.Name, e.Kind, e.Index)
		if e.Type != nil {
			s += " " + e.Type.String()
		}
		out = append(out, s)
	}
	return out
}

// reactorExports is the export list every example reactor has, with its
// marker name and the index of ferry_run.
func reactorExports(marker string, runIdx int) []string {
	return []string{
		"memory memory[0]",
		marker + " func[0] ()",
		"ferry_alloc func[1] (i32) -> i32",
		fmt.Sprintf("ferry_run func[%d] (i32, i32) -> i64", runIdx),
	}
}

var reactorTypes = []string{"()", "(i32) -> i32", "(i32, i32) -> i64"}

// --- tests --------------------------------------------------------------------

func TestParse_Examples(t *testing.T) {
	onePage := []Limits{{Min: 1}}
	wasiIO := "(i32, i32, i32, i32) -> i32"
	cases := []struct {
		name    string
		types   []string
		imports []string
		exports []string
	}{
		{name: "abiv99", types: reactorTypes, exports: reactorExports("ferry_abi_v99", 2)},
		{
			name:    "badimport",
			types:   []string{"() -> i32", "()"},
			imports: []string{"env.host_secret func () -> i32"},
			exports: []string{"memory memory[0]", "_start func[1] ()"},
		},
		{name: "badoutput", types: reactorTypes, exports: reactorExports("ferry_abi_v1", 2)},
		{name: "bigoutput", types: reactorTypes, exports: reactorExports("ferry_abi_v1", 2)},
		{name: "calls", types: reactorTypes, exports: reactorExports("ferry_abi_v1", 2)},
		{name: "spin", types: reactorTypes, exports: reactorExports("ferry_abi_v1", 2)},
		{
			name:  "cat",
			types: []string{wasiIO, "()"},
			imports: []string{
				"wasi_snapshot_preview1.fd_read func " + wasiIO,
				"wasi_snapshot_preview1.fd_write func " + wasiIO,
			},
			exports: []string{"memory memory[0]", "_start func[2] ()"},
		},
		{name: "echo", types: reactorTypes, exports: reactorExports("ferry_abi_v1", 2)},
		{
			name:  "entropy",
			types: []string{"(i32, i32) -> i32", "(i32, i64, i32) -> i32", wasiIO, "()"},
			imports: []string{
				"wasi_snapshot_preview1.random_get func (i32, i32) -> i32",
				"wasi_snapshot_preview1.clock_time_get func (i32, i64, i32) -> i32",
				"wasi_snapshot_preview1.fd_write func " + wasiIO,
			},
			exports: []string{"memory memory[0]", "_start func[3] ()"},
		},
		{
			name:  "exit3",
			types: []string{wasiIO, "(i32)", "()"},
			imports: []string{
				"wasi_snapshot_preview1.fd_write func " + wasiIO,
				"wasi_snapshot_preview1.proc_exit func (i32)",
			},
			exports: []string{"memory memory[0]", "_start func[2] ()"},
		},
		{
			name:  "guesterror",
			types: []string{"(i32, i32, i32)", "(i32, i32)", "()", "(i32) -> i32", "(i32, i32) -> i64"},
			imports: []string{
				"ferry.log func (i32, i32, i32)",
				"ferry.error func (i32, i32)",
			},
			exports: []string{
				"memory memory[0]",
				"ferry_abi_v1 func[2] ()",
				"ferry_alloc func[3] (i32) -> i32",
				"ferry_run func[4] (i32, i32) -> i64",
			},
		},
		{name: "loop", types: reactorTypes, exports: reactorExports("ferry_abi_v1", 2)},
		{name: "membomb", types: reactorTypes, exports: reactorExports("ferry_abi_v1", 2)},
		{
			name:    "noalloc",
			types:   []string{"()", "(i32, i32) -> i64"},
			exports: []string{"memory memory[0]", "ferry_abi_v1 func[0] ()", "ferry_run func[1] (i32, i32) -> i64"},
		},
		// stackoverflow has an unexported helper at index 2.
		{name: "stackoverflow", types: reactorTypes, exports: reactorExports("ferry_abi_v1", 3)},
		{name: "trap", types: reactorTypes, exports: reactorExports("ferry_abi_v1", 2)},
	}

	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(examplesDir, tc.name+".wasm"))
			require.NoError(t, err)
			m, err := Parse(b)
			require.NoError(t, err)
			assert.Equal(t, tc.types, typeStrings(m), "types")
			assert.Equal(t, tc.imports, importStrings(m), "imports")
			assert.Equal(t, tc.exports, exportStrings(m), "exports")
			assert.Equal(t, onePage, m.Memories, "memories")
			assert.Empty(t, m.Customs, "wat2wasm writes no custom sections by default")
			assert.False(t, m.HasStart)
		})
	}

	// Every committed example must have a case, so a new one is not
	// silently left untested.
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.wasm"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		n := strings.TrimSuffix(filepath.Base(f), ".wasm")
		assert.True(t, covered[n], "example %s.wasm has no case in TestParse_Examples", n)
	}
}

func TestParse_HandBuilt(t *testing.T) {
	type check func(t *testing.T, m *Module)
	cases := []struct {
		name  string
		input []byte
		check check
	}{
		{
			name:  "empty module",
			input: module(),
			check: func(t *testing.T, m *Module) {
				assert.Equal(t, &Module{}, m)
			},
		},
		{
			name: "custom sections in order",
			input: module(
				sect(0, name("name"), []byte{1, 2, 3}),
				sect(1, vec(functype(nil))),
				sect(0, name("producers")),
				sect(0, name("")),
			),
			check: func(t *testing.T, m *Module) {
				assert.Equal(t, []string{"name", "producers", ""}, m.Customs)
			},
		},
		{
			name: "start section",
			input: module(
				sect(1, vec(functype(nil))),
				sect(3, vec(uleb(0))),
				sect(8, uleb(0)),
			),
			check: func(t *testing.T, m *Module) {
				assert.True(t, m.HasStart)
			},
		},
		{
			name: "memory limits",
			input: module(sect(5, vec(
				[]byte{0x00, 0x02},             // min 2
				[]byte{0x01, 0x01, 0x10},       // min 1 max 16
				[]byte{0x03, 0x01, 0x02},       // shared, min 1 max 2
				cat([]byte{0x04}, uleb(1<<40)), // memory64, min 2^40
				cat([]byte{0x05}, uleb(0), uleb(math.MaxUint64)),
			))),
			check: func(t *testing.T, m *Module) {
				assert.Equal(t, []Limits{
					{Min: 2},
					{Min: 1, Max: 16, HasMax: true},
					{Min: 1, Max: 2, HasMax: true, Shared: true},
					{Min: 1 << 40, Is64: true},
					{Min: 0, Max: math.MaxUint64, HasMax: true, Is64: true},
				}, m.Memories)
			},
		},
		{
			name: "u32 limit at the maximum",
			input: module(sect(5, vec(
				cat([]byte{0x01}, uleb(0), uleb(math.MaxUint32)),
			))),
			check: func(t *testing.T, m *Module) {
				assert.Equal(t, []Limits{{Max: math.MaxUint32, HasMax: true}}, m.Memories)
			},
		},
		{
			name: "padded LEB128 within five bytes is accepted",
			input: module(sect(5, vec(
				[]byte{0x00, 0x82, 0x80, 0x80, 0x80, 0x00}, // min 2, padded
			))),
			check: func(t *testing.T, m *Module) {
				assert.Equal(t, []Limits{{Min: 2}}, m.Memories)
			},
		},
		{
			name: "every import kind",
			input: module(
				sect(1, vec(functype(p(I32, I64), F32, F64))),
				sect(2, vec(
					importDesc("m", "f", KindFunc, 0x00),
					importDesc("m", "t", KindTable, byte(FuncRef), 0x00, 0x01),
					importDesc("m", "mem", KindMemory, 0x01, 0x01, 0x04),
					importDesc("m", "g", KindGlobal, byte(I32), 0x01),
					importDesc("m", "e", KindTag, 0x00, 0x00),
				)),
			),
			check: func(t *testing.T, m *Module) {
				assert.Equal(t, []string{
					"m.f func (i32, i64) -> (f32, f64)",
					"m.t table",
					"m.mem memory {Min:1 Max:4 HasMax:true Shared:false Is64:false}",
					"m.g global",
					"m.e tag",
				}, importStrings(m))
			},
		},
		{
			name: "export kinds and unresolved types",
			input: module(
				sect(1, vec(functype(nil, I32))),
				sect(2, vec(importDesc("m", "f", KindFunc, 0x00))),
				// Function 1 uses type 0; function 2 claims type 7, which
				// does not exist. Parse leaves validation to the engine.
				sect(3, vec(uleb(0), uleb(7))),
				sect(7, vec(
					export("imported", KindFunc, 0),
					export("defined", KindFunc, 1),
					export("badtype", KindFunc, 2),
					export("outofrange", KindFunc, 99),
					export("tbl", KindTable, 0),
					export("mem", KindMemory, 0),
					export("glob", KindGlobal, 3),
					export("tag", KindTag, 0),
				)),
			),
			check: func(t *testing.T, m *Module) {
				assert.Equal(t, []string{
					"imported func[0] () -> i32",
					"defined func[1] () -> i32",
					"badtype func[2]",
					"outofrange func[99]",
					"tbl table[0]",
					"mem memory[0]",
					"glob global[3]",
					"tag tag[0]",
				}, exportStrings(m))
				e, ok := m.Export("defined")
				require.True(t, ok)
				assert.Equal(t, uint32(1), e.Index)
				_, ok = m.Export("nope")
				assert.False(t, ok)
			},
		},
		{
			name: "skipped sections",
			input: module(
				sect(4, []byte{0xff, 0xff}),
				sect(13),
				sect(6, []byte{0xff}),
				sect(9), sect(12, []byte{0}), sect(10, []byte{1, 2, 3}), sect(11),
			),
			check: func(t *testing.T, m *Module) {
				assert.Equal(t, &Module{}, m)
			},
		},
		{
			name:  "name at the length limit",
			input: module(sect(7, vec(export(strings.Repeat("x", maxName), KindFunc, 0)))),
			check: func(t *testing.T, m *Module) {
				require.Len(t, m.Exports, 1)
				assert.Len(t, m.Exports[0].Name, maxName)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.input)
			require.NoError(t, err)
			tc.check(t, m)
		})
	}
}

func TestParse_Errors(t *testing.T) {
	echo, err := os.ReadFile(filepath.Join(examplesDir, "echo.wasm"))
	require.NoError(t, err)
	withVersion := func(v ...byte) []byte { return cat(Magic, v) }
	huge := sect(3, uleb(maxEntries+1), make([]byte, maxEntries+1))

	cases := []struct {
		name    string
		input   []byte
		wantErr error
		wantMsg string
	}{
		{name: "nil", input: nil, wantErr: ErrNotWasm},
		{name: "function section before imports", input: module(sect(1, []byte{0}), sect(3, []byte{0}), sect(2, []byte{0})), wantErr: ErrMalformed, wantMsg: "out of order"},
		{name: "repeated export section", input: module(sect(7, []byte{0}), sect(7, []byte{0})), wantErr: ErrMalformed, wantMsg: "out of order or repeated"},
		{name: "u32 LEB overflowing in its last byte", input: module(sect(3, []byte{1, 0xff, 0xff, 0xff, 0xff, 0x7f})), wantErr: ErrMalformed, wantMsg: "overflows"},
		{name: "empty", input: []byte{}, wantErr: ErrNotWasm},
		{name: "magic only", input: Magic, wantErr: ErrNotWasm},
		{name: "bad magic", input: cat([]byte("\x00ASM"), Version), wantErr: ErrNotWasm},
		{name: "text format", input: []byte("(module)"), wantErr: ErrNotWasm},
		{name: "wasm bytes shifted", input: echo[1:], wantErr: ErrNotWasm},
		{name: "version 2", input: withVersion(2, 0, 0, 0), wantErr: ErrMalformed, wantMsg: "unsupported binary version 02000000"},
		{name: "component", input: withVersion(0x0d, 0, 1, 0), wantErr: ErrMalformed, wantMsg: "components are not"},
		{name: "version 0", input: withVersion(0, 0, 0, 0), wantErr: ErrMalformed, wantMsg: "version"},
		{
			name:    "section size beyond end",
			input:   module([]byte{1, 10, 0}),
			wantErr: ErrMalformed, wantMsg: "claims 10 bytes, only 1 remain",
		},
		{
			name:    "section size beyond end (large)",
			input:   module(cat([]byte{7}, uleb(math.MaxUint32))),
			wantErr: ErrMalformed, wantMsg: "claims 4294967295 bytes",
		},
		{name: "section size missing", input: module([]byte{1}), wantErr: ErrMalformed, wantMsg: "unexpected end"},
		{
			name:    "section size unterminated LEB128",
			input:   module([]byte{1, 0x80, 0x80}),
			wantErr: ErrMalformed, wantMsg: "unexpected end",
		},
		{
			name:    "overlong LEB128 section size",
			input:   module([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}),
			wantErr: ErrMalformed, wantMsg: "LEB128 integer too long",
		},
		{
			name:    "LEB128 u32 overflow",
			input:   module([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x7f}),
			wantErr: ErrMalformed, wantMsg: "overflows 32 bits",
		},
		{
			name:    "overlong LEB128 in vector count",
			input:   module(sect(1, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})),
			wantErr: ErrMalformed, wantMsg: "LEB128 integer too long",
		},
		{
			name:    "overlong LEB128 memory64 limit",
			input:   module(sect(5, vec(cat([]byte{0x04}, bytes.Repeat([]byte{0x80}, 10), []byte{0x00})))),
			wantErr: ErrMalformed, wantMsg: "LEB128 integer too long",
		},
		{
			name:    "u32 memory limit overflow",
			input:   module(sect(5, vec(cat([]byte{0x00}, uleb(math.MaxUint32+1))))),
			wantErr: ErrMalformed, wantMsg: "overflows 32 bits",
		},
		{
			name:    "huge vector count",
			input:   module(sect(1, uleb(math.MaxUint32))),
			wantErr: ErrMalformed, wantMsg: "vector of 4294967295 entries",
		},
		{
			name:    "vector count larger than section",
			input:   module(sect(3, uleb(3), uleb(0), uleb(0))),
			wantErr: ErrMalformed, wantMsg: "vector of 3 entries",
		},
		{
			name:    "vector count above maxEntries",
			input:   module(huge),
			wantErr: ErrMalformed, wantMsg: fmt.Sprintf("vector of %d entries", maxEntries+1),
		},
		{
			name:    "huge param count",
			input:   module(sect(1, vec(cat([]byte{0x60}, uleb(1<<30))))),
			wantErr: ErrMalformed, wantMsg: "vector of 1073741824 entries",
		},
		{name: "unknown section id", input: module(sect(14)), wantErr: ErrMalformed, wantMsg: "unknown section id 14"},
		{name: "section id 0xff", input: module(sect(0xff, []byte{1})), wantErr: ErrMalformed, wantMsg: "unknown section id 255"},
		{name: "empty custom section", input: module(sect(0)), wantErr: ErrMalformed, wantMsg: "unexpected end"},
		{
			name:    "custom name longer than section",
			input:   module(sect(0, uleb(5), []byte("abc"))),
			wantErr: ErrMalformed, wantMsg: "name of 5 bytes",
		},
		{
			name:    "name too long",
			input:   module(sect(7, vec(export(strings.Repeat("x", maxName+1), KindFunc, 0)))),
			wantErr: ErrMalformed, wantMsg: fmt.Sprintf("name of %d bytes", maxName+1),
		},
		{
			name:    "import module name too long",
			input:   module(sect(2, vec(importDesc(strings.Repeat("m", maxName+1), "f", KindFunc, 0)))),
			wantErr: ErrMalformed, wantMsg: fmt.Sprintf("name of %d bytes", maxName+1),
		},
		{
			name:    "bad type form",
			input:   module(sect(1, vec([]byte{0x5f, 0, 0}))),
			wantErr: ErrMalformed, wantMsg: "unsupported type form 0x5f",
		},
		{
			name:    "truncated function type",
			input:   module(sect(1, uleb(1), []byte{0x60, 0x02, byte(I32)})),
			wantErr: ErrMalformed, wantMsg: "vector of 2 entries",
		},
		{
			name:    "import of unknown type",
			input:   module(sect(1, vec(functype(nil))), sect(2, vec(importDesc("m", "f", KindFunc, 0x01)))),
			wantErr: ErrMalformed, wantMsg: "import m.f uses type 1 of 1",
		},
		{
			name:    "import before any type",
			input:   module(sect(2, vec(importDesc("m", "f", KindFunc, 0x00)))),
			wantErr: ErrMalformed, wantMsg: "uses type 0 of 0",
		},
		{
			name:    "import of unknown kind",
			input:   module(sect(2, vec(importDesc("m", "x", 5, 0x00)))),
			wantErr: ErrMalformed, wantMsg: "import m.x has unknown kind 5",
		},
		{
			name:    "truncated memory import",
			input:   module(sect(2, vec(importDesc("m", "mem", KindMemory, 0x01, 0x01)))),
			wantErr: ErrMalformed, wantMsg: "unexpected end",
		},
		{
			name:    "bad limits flags",
			input:   module(sect(5, vec([]byte{0x08, 0x01}))),
			wantErr: ErrMalformed, wantMsg: "bad limits flags 0x8",
		},
		{
			name:    "export of unknown kind",
			input:   module(sect(7, vec(export("x", 5, 0)))),
			wantErr: ErrMalformed, wantMsg: `export "x" has unknown kind 5`,
		},
		{
			name:    "export index missing",
			input:   module(sect(7, uleb(1), name("x"), []byte{0})),
			wantErr: ErrMalformed, wantMsg: "unexpected end",
		},
		{
			name:    "error names the section and offset",
			input:   module(sect(1, vec(functype(nil))), sect(7, uleb(1), name("x"), []byte{9, 0})),
			wantErr: ErrMalformed, wantMsg: "section 7 at offset 14: malformed WebAssembly module: export \"x\" has unknown kind 9",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.input)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.ErrorIs(t, err, tc.wantErr)
			if tc.wantErr == ErrNotWasm {
				assert.NotErrorIs(t, err, ErrMalformed)
			} else {
				assert.NotErrorIs(t, err, ErrNotWasm)
			}
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

// sectionEnds returns the offsets at which echo.wasm's sections end; a prefix
// of exactly that length is itself a well-formed module. It walks the
// sections independently of Parse.
func sectionEnds(t *testing.T, b []byte) map[int]bool {
	t.Helper()
	ends := map[int]bool{8: true}
	off := 8
	for off < len(b) {
		off++ // id
		var size, shift uint
		for {
			c := b[off]
			off++
			size |= uint(c&0x7f) << shift
			shift += 7
			if c&0x80 == 0 {
				break
			}
		}
		off += int(size)
		ends[off] = true
	}
	require.Equal(t, len(b), off)
	return ends
}

func TestParse_TruncatedEveryOffset(t *testing.T) {
	for _, example := range []string{"echo", "guesterror"} {
		t.Run(example, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(examplesDir, example+".wasm"))
			require.NoError(t, err)
			full, err := Parse(b)
			require.NoError(t, err)
			ends := sectionEnds(t, b)
			for n := range len(b) {
				prefix := b[:n:n] // no spare capacity: reading past n must fail, not peek
				var m *Module
				require.NotPanics(t, func() { m, err = Parse(prefix) }, "prefix of %d bytes", n)
				if ends[n] {
					// Cut exactly between sections: a smaller valid module.
					require.NoError(t, err, "prefix of %d bytes", n)
					assert.LessOrEqual(t, len(m.Exports), len(full.Exports))
					continue
				}
				require.Error(t, err, "prefix of %d bytes", n)
				if n < 8 {
					assert.ErrorIs(t, err, ErrNotWasm, "prefix of %d bytes", n)
				} else {
					assert.ErrorIs(t, err, ErrMalformed, "prefix of %d bytes", n)
				}
			}
		})
	}
}

func TestFuncType_String(t *testing.T) {
	cases := []struct {
		name string
		ft   FuncType
		want string
	}{
		{name: "empty", ft: FuncType{}, want: "()"},
		{name: "one param", ft: FuncType{Params: p(I32)}, want: "(i32)"},
		{name: "one result", ft: FuncType{Results: p(I64)}, want: "() -> i64"},
		{name: "alloc", ft: FuncType{Params: p(I32), Results: p(I32)}, want: "(i32) -> i32"},
		{name: "many", ft: FuncType{Params: p(I32, I64, F32), Results: p(F64, V128)}, want: "(i32, i64, f32) -> (f64, v128)"},
		{name: "refs", ft: FuncType{Params: p(FuncRef, ExternRef)}, want: "(funcref, externref)"},
		{name: "unknown", ft: FuncType{Params: p(0x40)}, want: "(type(0x40))"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.ft.String())
		})
	}
}

func TestFuncType_Equal(t *testing.T) {
	run := FuncType{Params: p(I32, I32), Results: p(I64)}
	cases := []struct {
		name string
		a, b FuncType
		want bool
	}{
		{name: "identical", a: run, b: FuncType{Params: p(I32, I32), Results: p(I64)}, want: true},
		{name: "self", a: run, b: run, want: true},
		{name: "nil and empty", a: FuncType{}, b: FuncType{Params: []ValType{}, Results: []ValType{}}, want: true},
		{name: "different param", a: run, b: FuncType{Params: p(I32, I64), Results: p(I64)}},
		{name: "different result", a: run, b: FuncType{Params: p(I32, I32), Results: p(I32)}},
		{name: "fewer params", a: run, b: FuncType{Params: p(I32), Results: p(I64)}},
		{name: "no results", a: run, b: FuncType{Params: p(I32, I32)}},
		{name: "param moved to result", a: FuncType{Params: p(I32)}, b: FuncType{Results: p(I32)}},
		{name: "order matters", a: FuncType{Params: p(I32, I64)}, b: FuncType{Params: p(I64, I32)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.a.Equal(tc.b))
			assert.Equal(t, tc.want, tc.b.Equal(tc.a), "Equal must be symmetric")
		})
	}
}

func TestExternKind_String(t *testing.T) {
	cases := []struct {
		name string
		k    ExternKind
		want string
	}{
		{name: "func", k: KindFunc, want: "func"},
		{name: "table", k: KindTable, want: "table"},
		{name: "memory", k: KindMemory, want: "memory"},
		{name: "global", k: KindGlobal, want: "global"},
		{name: "tag", k: KindTag, want: "tag"},
		{name: "unknown", k: 5, want: "kind(5)"},
		{name: "max", k: 255, want: "kind(255)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.k.String())
		})
	}
}

func TestValType_String(t *testing.T) {
	cases := []struct {
		name string
		v    ValType
		want string
	}{
		{name: "i32", v: I32, want: "i32"},
		{name: "i64", v: I64, want: "i64"},
		{name: "f32", v: F32, want: "f32"},
		{name: "f64", v: F64, want: "f64"},
		{name: "v128", v: V128, want: "v128"},
		{name: "funcref", v: FuncRef, want: "funcref"},
		{name: "externref", v: ExternRef, want: "externref"},
		{name: "unknown", v: 0x40, want: "type(0x40)"},
		{name: "zero", v: 0, want: "type(0x0)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.v.String())
		})
	}
}

// --- fuzzing ------------------------------------------------------------------

func FuzzParse(f *testing.F) {
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
	f.Add([]byte{})
	f.Add(cat(Magic, Version))
	f.Add(cat(Magic, []byte{0x0d, 0, 1, 0}))
	f.Add(module(sect(0, name("name"), []byte{0, 1, 2})))
	f.Add(module(sect(1, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00})))
	f.Add(module(sect(5, vec([]byte{0x07, 0x00, 0x00}))))
	f.Add(module(
		sect(1, vec(functype(p(I32, I32), I64))),
		sect(2, vec(importDesc("ferry", "log", KindFunc, 0), importDesc("env", "mem", KindMemory, 0x00, 0x01))),
		sect(3, vec(uleb(0), uleb(3))),
		sect(7, vec(export("ferry_run", KindFunc, 1), export("x", KindFunc, 2), export("memory", KindMemory, 0))),
		sect(8, uleb(0)),
	))

	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if m != nil {
				t.Fatalf("Parse returned a module and an error: %v", err)
			}
			notWasm, malformed := errors.Is(err, ErrNotWasm), errors.Is(err, ErrMalformed)
			if notWasm == malformed {
				t.Fatalf("error must wrap exactly one of ErrNotWasm, ErrMalformed: %v", err)
			}
			return
		}
		if m == nil {
			t.Fatal("Parse returned neither a module nor an error")
		}
		for _, im := range m.Imports {
			switch im.Kind {
			case KindFunc:
				if im.Type == nil {
					t.Fatalf("function import %s.%s has no type", im.Module, im.Name)
				}
			case KindMemory:
				if im.Memory == nil {
					t.Fatalf("memory import %s.%s has no limits", im.Module, im.Name)
				}
			}
		}
		for _, e := range m.Exports {
			if e.Kind > KindTag {
				t.Fatalf("export %q has unknown kind %d", e.Name, e.Kind)
			}
			if e.Type == nil {
				continue
			}
			if e.Kind != KindFunc {
				t.Fatalf("non-function export %q (%s) has a type", e.Name, e.Kind)
			}
			if int(e.Index) >= len(m.funcTypeIdx) {
				t.Fatalf("export %q: function %d of %d has a type", e.Name, e.Index, len(m.funcTypeIdx))
			}
			ti := m.funcTypeIdx[e.Index]
			if int(ti) >= len(m.Types) {
				t.Fatalf("export %q: type index %d of %d", e.Name, ti, len(m.Types))
			}
			if !e.Type.Equal(m.Types[ti]) {
				t.Fatalf("export %q: type %s, want %s", e.Name, e.Type, m.Types[ti])
			}
		}
		for _, l := range append(importedLimits(m), m.Memories...) {
			if !l.Is64 && (l.Min > math.MaxUint32 || l.Max > math.MaxUint32) {
				t.Fatalf("32-bit limits out of range: %+v", l)
			}
			if !l.HasMax && l.Max != 0 {
				t.Fatalf("limits without max have Max set: %+v", l)
			}
		}
	})
}

func importedLimits(m *Module) []Limits {
	var out []Limits
	for _, im := range m.Imports {
		if im.Memory != nil {
			out = append(out, *im.Memory)
		}
	}
	return out
}
