package instrument

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// capMemoryOK caps bin's memory, checks that the input was left alone and
// that the output does not share its storage, and returns the output.
func capMemoryOK(t *testing.T, bin []byte, maxPages uint32) []byte {
	t.Helper()
	orig := bytes.Clone(bin)
	out, err := CapMemory(bin, maxPages)
	require.NoError(t, err)
	require.Equal(t, orig, bin, "CapMemory modified its input")
	if len(out) > 0 && len(bin) > 0 {
		require.NotSame(t, &bin[0], &out[0], "the output must be a copy")
	}
	return out
}

// requireMemoryMax instantiates bin with both engines and checks through
// wazero that memory 0 has the maximum want: growing to it works (when it
// is small enough to try) and growing past it fails.
func requireMemoryMax(t *testing.T, bin []byte, want uint32) {
	t.Helper()
	for cname, cfg := range configs() {
		t.Run(cname, func(t *testing.T) {
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, cfg.WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesThreads))
			defer r.Close(ctx)
			mod, err := r.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithStartFunctions())
			require.NoError(t, err)
			mem := mod.Memory()
			require.NotNil(t, mem)
			max, ok := mem.Definition().Max()
			require.True(t, ok, "wazero sees no maximum")
			require.Equal(t, want, max)
			size, ok := mem.Grow(0)
			require.True(t, ok)
			if want <= 64 {
				_, ok = mem.Grow(want - size)
				require.True(t, ok, "growing to the maximum must work")
				size = want
			}
			_, ok = mem.Grow(want - size + 1)
			require.False(t, ok, "growing past the maximum must fail")
		})
	}
}

func TestCapMemory(t *testing.T) {
	types := sect(1, vec(funcType(nil, nil)))
	code := sect(10, vec(fn([]byte{0x00}, 0x0b)))
	funcs := sect(3, vec([]byte{0x00}))
	custom := sect(0, name("after"), []byte{1, 2, 3})
	// mod is a module around a memory section: everything but the memory
	// section must come out as it went in.
	mod := func(memories ...[]byte) []byte {
		return module(types, funcs, sect(5, vec(memories...)),
			sect(7, vec(cat(name("memory"), []byte{0x02, 0x00}))), custom, code)
	}
	cases := []struct {
		name     string
		mem      []byte // memory 0's limits in the input
		maxPages uint32
		want     []byte // memory 0's limits in the output; nil: unchanged
		wantMax  uint32 // what wazero must see
	}{
		{"no maximum", []byte{0x00, 0x01}, 16, []byte{0x01, 0x01, 0x10}, 16},
		{"larger maximum", []byte{0x01, 0x01, 0x80, 0x02}, 16, []byte{0x01, 0x01, 0x10}, 16},
		{"smaller maximum", []byte{0x01, 0x01, 0x08}, 16, nil, 8},
		{"equal maximum", []byte{0x01, 0x01, 0x10}, 16, nil, 16},
		{"minimum at the cap", []byte{0x00, 0x10}, 16, []byte{0x01, 0x10, 0x10}, 16},
		{"zero", []byte{0x00, 0x00}, 0, []byte{0x01, 0x00, 0x00}, 0},
		{"shared", []byte{0x03, 0x01, 0x80, 0x02}, 16, []byte{0x03, 0x01, 0x10}, 16},
		{"non-canonical minimum kept", []byte{0x00, 0x81, 0x80, 0x00}, 200, []byte{0x01, 0x81, 0x80, 0x00, 0xc8, 0x01}, 200},
		{"non-canonical maximum within the cap", []byte{0x01, 0x01, 0x84, 0x00}, 16, nil, 4},
		{"cap above 4 GiB", []byte{0x00, 0x01}, 70_000, []byte{0x01, 0x01, 0x80, 0x80, 0x04}, 65536},
		{"largest cap", []byte{0x01, 0x01, 0xff, 0xff, 0x03}, 1<<32 - 1, nil, 65535},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := mod(c.mem)
			out := capMemoryOK(t, in, c.maxPages)
			if c.want == nil {
				require.Equal(t, in, out)
			} else {
				require.Equal(t, mod(c.want), out)
			}
			requireMemoryMax(t, out, c.wantMax)
		})
	}

	t.Run("second memory kept", func(t *testing.T) {
		in := mod([]byte{0x00, 0x01}, []byte{0x01, 0x02, 0x03})
		require.Equal(t, mod([]byte{0x01, 0x01, 0x05}, []byte{0x01, 0x02, 0x03}), capMemoryOK(t, in, 5))
	})
	t.Run("section size grows", func(t *testing.T) {
		// 30 memories of 4 bytes, then 5 more bytes for the maximum of the
		// first: the section size needs a second byte.
		mems := [][]byte{{0x00, 0x01}}
		for range 30 {
			mems = append(mems, []byte{0x01, 0x01, 0x81, 0x00})
		}
		in := mod(mems...)
		mems[0] = []byte{0x01, 0x01, 0x80, 0x80, 0x04}
		require.Equal(t, mod(mems...), capMemoryOK(t, in, 1<<16))
	})
	for _, in := range [][]byte{
		module(),
		module(types, funcs, code),
		module(types, funcs, sect(5, vec()), code),
		module(sect(4, vec([]byte{0x70, 0x00, 0x01}))),
	} {
		t.Run("no memory", func(t *testing.T) {
			require.Equal(t, in, capMemoryOK(t, in, 1))
		})
	}
}

func TestCapMemoryErrors(t *testing.T) {
	mem := func(limits ...byte) []byte { return module(sect(5, vec(limits))) }
	memImport := sect(2, vec(cat(name("env"), name("memory"), []byte{0x02, 0x00, 0x01})))
	cases := []struct {
		name     string
		in       []byte
		maxPages uint32
		want     error
		msg      string
	}{
		{"minimum above the cap", mem(0x00, 0x11), 16, ErrMemoryTooSmall,
			"starts at 17 pages (1.0625 MiB), above the cap of 16 pages (1 MiB)"},
		{"minimum above a cap of 0", mem(0x01, 0x01, 0x02), 0, ErrMemoryTooSmall,
			"starts at 1 pages (0.0625 MiB), above the cap of 0 pages (0 MiB)"},
		{"minimum above 4 GiB", mem(0x00, 0x81, 0x80, 0x04), 1 << 20, ErrMemoryTooSmall,
			"starts at 65537 pages (4096.0625 MiB), above the cap of 65536 pages (4096 MiB)"},
		{"imported memory", module(memImport), 16, ErrUnsupported, "imported"},
		{"imported and defined memories", module(memImport, sect(5, vec([]byte{0x00, 0x01}))), 16, ErrUnsupported, "imported"},
		{"memory64", mem(0x04, 0x01), 16, ErrUnsupported, "64-bit"},
		{"memory64 with maximum", mem(0x05, 0x01, 0x02), 16, ErrUnsupported, "64-bit"},
		{"custom page size flag", mem(0x08, 0x01, 0x10), 16, ErrUnsupported, "flags"},
		{"empty", nil, 16, ErrMalformed, ""},
		{"not wasm", []byte("\x7fELF\x02\x01\x01\x00"), 16, ErrMalformed, ""},
		{"bad version", []byte{0x00, 'a', 's', 'm', 0x02, 0x00, 0x00, 0x00}, 16, ErrMalformed, ""},
		{"section past end", module([]byte{0x05, 0x10, 0x01}), 16, ErrMalformed, ""},
		{"sections out of order", module(sect(5, vec()), sect(4, vec())), 16, ErrMalformed, ""},
		{"no memory count", module(sect(5)), 16, ErrMalformed, ""},
		{"no limits", module(sect(5, []byte{0x01})), 16, ErrMalformed, ""},
		{"no minimum", mem(0x00), 16, ErrMalformed, ""},
		{"truncated minimum", mem(0x00, 0x80), 16, ErrMalformed, ""},
		{"no maximum", mem(0x01, 0x01), 16, ErrMalformed, ""},
		{"overlong maximum", mem(0x01, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), 16, ErrMalformed, ""},
		{"trailing bytes", module(sect(5, vec([]byte{0x00, 0x01}), []byte{0x00})), 16, ErrMalformed, ""},
		{"trailing bytes without memory", module(sect(5, vec(), []byte{0x00})), 16, ErrMalformed, ""},
		{"bad second memory", module(sect(5, []byte{0x02, 0x00, 0x01, 0x09, 0x01})), 16, ErrMalformed, ""},
		{"truncated import", module(sect(2, vec(cat(name("m"), name("g"), []byte{0x03})))), 16, ErrMalformed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := bytes.Clone(c.in)
			out, err := CapMemory(c.in, c.maxPages)
			require.ErrorIs(t, err, c.want)
			require.ErrorContains(t, err, c.msg)
			require.Nil(t, out)
			require.Equal(t, orig, c.in, "CapMemory modified its input")
			for _, other := range []error{ErrMalformed, ErrUnsupported, ErrMemoryTooSmall} {
				if other != c.want {
					require.NotErrorIs(t, err, other)
				}
			}
		})
	}
}

// TestCapMemoryExamples caps the examples and the Go guests: wazero
// accepts the output, sees the maximum, and the cap commutes with the
// instrumentation (they re-encode different sections).
func TestCapMemoryExamples(t *testing.T) {
	mods := exampleModules(t)
	for name, bin := range goGuests(t) {
		mods["go/"+name] = bin
	}
	for _, name := range sortedKeys(mods) {
		in := mods[name]
		t.Run(name, func(t *testing.T) {
			const capPages = 1024 // 64 MiB
			out := capMemoryOK(t, in, capPages)
			mo := mustParse(t, out)
			require.Len(t, mo.Memories, 1)
			require.True(t, mo.Memories[0].HasMax)
			require.Equal(t, uint64(capPages), mo.Memories[0].Max)
			require.Equal(t, mustParse(t, in).Memories[0].Min, mo.Memories[0].Min)
			for _, opts := range []Options{{}, {Tick: true}} {
				a, err := InstrumentWith(out, opts)
				require.NoError(t, err)
				i, err := InstrumentWith(in, opts)
				require.NoError(t, err)
				b := capMemoryOK(t, i, capPages)
				require.Equal(t, a, b, "capping and instrumenting must commute (%+v)", opts)
			}
			require.NoError(t, compileErr(wazero.NewRuntimeConfigInterpreter(), out))
		})
	}
}

// TestCapMemoryMembomb runs membomb.wasm, which grows its memory 16 pages
// at a time until memory.grow fails and then traps, capped at 64 pages: it
// stops there.
func TestCapMemoryMembomb(t *testing.T) {
	out := capMemoryOK(t, exampleModules(t)["membomb.wasm"], 64)
	for cname, cfg := range configs() {
		t.Run(cname, func(t *testing.T) {
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, cfg)
			defer r.Close(ctx)
			mod, err := r.Instantiate(ctx, out)
			require.NoError(t, err)
			_, err = mod.ExportedFunction("ferry_run").Call(ctx, 0, 0)
			require.ErrorContains(t, err, "unreachable")
			require.Equal(t, uint32(49*65536), mod.Memory().Size(), "1 page, then 16 at a time up to 64")
		})
	}
}
