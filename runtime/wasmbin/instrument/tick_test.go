package instrument

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ferryrun/ferry/runtime/wasmbin"
)

var tickOpts = Options{Tick: true}

// instrumentTickOK instruments bin with Tick, checks that the input was left
// alone and returns the output.
func instrumentTickOK(t *testing.T, bin []byte) []byte {
	t.Helper()
	orig := bytes.Clone(bin)
	out, err := InstrumentWith(bin, tickOpts)
	require.NoError(t, err)
	require.Equal(t, orig, bin, "InstrumentWith modified its input")
	return out
}

// tickCheckSeq is the check InstrumentWith inserts with Tick.
func tickCheckSeq(stop, typeIdx, tableIdx uint32) []byte {
	return appendTickCheck(nil, stop, typeIdx, tableIdx)
}

// requireTickExports checks, with wasmbin, that out exports what in does
// plus StopGlobal and TickTable, that it has exactly one more type, () ->
// (), and returns the index of the tick table.
func requireTickExports(t *testing.T, in, out []byte) uint32 {
	t.Helper()
	mi, mo := mustParse(t, in), mustParse(t, out)
	require.Len(t, mo.Exports, len(mi.Exports)+2)
	for i, e := range mi.Exports {
		assert.Equal(t, e.Name, mo.Exports[i].Name)
		assert.Equal(t, e.Kind, mo.Exports[i].Kind)
		assert.Equal(t, e.Index, mo.Exports[i].Index)
	}
	stop, tick := mo.Exports[len(mo.Exports)-2], mo.Exports[len(mo.Exports)-1]
	require.Equal(t, StopGlobal, stop.Name)
	require.Equal(t, wasmbin.KindGlobal, stop.Kind)
	require.Equal(t, TickTable, tick.Name)
	require.Equal(t, wasmbin.KindTable, tick.Kind)
	require.Len(t, mo.Types, len(mi.Types)+1)
	require.Equal(t, mi.Types, mo.Types[:len(mi.Types)], "existing types must stay")
	require.Equal(t, wasmbin.FuncType{}, mo.Types[len(mi.Types)], "the tick type is () -> ()")
	assert.Equal(t, mi.Customs, mo.Customs, "custom sections must be kept")
	require.True(t, bytes.Contains(out, tickCheckSeq(stop.Index, uint32(len(mi.Types)), tick.Index)),
		"the check calls through the tick table with the tick type")
	return tick.Index
}

// tickLinker is a module that puts the function it imports as tickModule.tick
// into slot 0 of the table guest exports as TickTable, with an active
// element segment. This is how a wazero test fills the slot: wazero's API
// cannot write a table from the host.
func tickLinker(tickModule, guest string) []byte {
	return module(
		sect(1, vec(funcType(nil, nil))),
		sect(2, vec(
			cat(name(tickModule), name("tick"), []byte{0x00, 0x00}),
			cat(name(guest), name(TickTable), []byte{0x01, 0x70, 0x00, 0x01}),
		)),
		sect(9, vec([]byte{0x00, 0x41, 0x00, 0x0b, 0x01, 0x00})), // table 0 at 0: func 0
	)
}

// linkTick makes tick the function in slot 0 of the TickTable of the module
// instantiated in r under the name guest.
func linkTick(t *testing.T, r wazero.Runtime, guest string, tick func(context.Context, api.Module)) {
	t.Helper()
	ctx := context.Background()
	host := "tick-host-" + guest
	_, err := r.NewHostModuleBuilder(host).
		NewFunctionBuilder().WithFunc(tick).Export("tick").
		Instantiate(ctx)
	require.NoError(t, err)
	_, err = r.InstantiateWithConfig(ctx, tickLinker(host, guest), wazero.NewModuleConfig().WithName(""))
	require.NoError(t, err)
}

// tickCounter returns a tick function that counts its calls and runs then
// (if not nil) with the call count.
func tickCounter(n *atomic.Int64, then func(calls int64)) func(context.Context, api.Module) {
	return func(context.Context, api.Module) {
		c := n.Add(1)
		if then != nil {
			then(c)
		}
	}
}

// errTimeUp is what the tests' tick functions panic with to stop a guest.
var errTimeUp = errors.New("time is up")

// runExample runs an example module the way its kind is meant to be run (a
// WASI command's _start, or a reactor's ferry_alloc and ferry_run with the
// given input) and describes what happened: output, error, exit code. It
// instantiates bin as "guest", then calls link (if not nil) before running
// anything.
func runExample(t *testing.T, cfg wazero.RuntimeConfig, bin, input []byte, link func(r wazero.Runtime)) string {
	t.Helper()
	ctx := context.Background()
	r, log := newHostRuntime(t, cfg)
	var stdout, stderr bytes.Buffer
	mcfg := wazero.NewModuleConfig().WithName("guest").WithStartFunctions().
		WithStdin(bytes.NewReader(input)).WithStdout(&stdout).WithStderr(&stderr)
	mod, err := r.InstantiateWithConfig(ctx, bin, mcfg)
	if err != nil {
		return "instantiate: " + err.Error()
	}
	if link != nil {
		link(r)
	}
	var res string
	if start := mod.ExportedFunction("_start"); start != nil {
		_, err := start.Call(ctx)
		var exit *sys.ExitError
		switch {
		case errors.As(err, &exit):
			res = fmt.Sprintf("exit %d", exit.ExitCode())
		case err != nil:
			res = "error: " + err.Error()
		default:
			res = "ok"
		}
	} else if mod.ExportedFunction("ferry_alloc") == nil {
		res2, err := mod.ExportedFunction("ferry_run").Call(ctx, 0, 0)
		res = fmt.Sprintf("ferry_run: %v %v", res2, err)
	} else {
		res = reactorRunDescribe(ctx, mod, input)
	}
	return fmt.Sprintf("%s; stdout %q; stderr %q; log %q", res, stdout.Bytes(), stderr.Bytes(), log.String())
}

// reactorRunDescribe is reactorRun for modules that may misbehave: it
// describes what happened rather than failing the test.
func reactorRunDescribe(ctx context.Context, mod api.Module, in []byte) string {
	res, err := mod.ExportedFunction("ferry_alloc").Call(ctx, uint64(len(in)))
	if err != nil {
		return "ferry_alloc: " + err.Error()
	}
	ptr := uint32(res[0])
	if !mod.Memory().Write(ptr, in) {
		return fmt.Sprintf("ferry_alloc returned %d: out of bounds", ptr)
	}
	res, err = mod.ExportedFunction("ferry_run").Call(ctx, uint64(ptr), uint64(len(in)))
	if err != nil {
		return "ferry_run: " + err.Error()
	}
	outPtr, outLen := uint32(res[0]>>32), uint32(res[0])
	out, ok := mod.Memory().Read(outPtr, outLen)
	if !ok {
		return fmt.Sprintf("output [%d, +%d) out of bounds", outPtr, outLen)
	}
	if len(out) > 256 {
		return fmt.Sprintf("output of %d bytes, SHA-256 %s", len(out), sha256Hex(out))
	}
	return fmt.Sprintf("output %q", out)
}

// exampleInputs gives the input each example runs with; the others get
// "hello". spin's is its iteration count: enough for several ticks.
var exampleInputs = map[string][]byte{
	"spin.wasm": {0x88, 0x13, 0x00, 0x00}, // 5000
}

// TestTickExamples instruments the example modules with Tick and runs them
// with both engines, the uninstrumented module beside: everything they
// print, return or fail with must be the same. Examples that run long
// enough must call the tick function. loop.wasm never returns: see
// TestTickStopsLoop. membomb.wasm grows its memory until it runs out, so
// both versions run capped at 32 pages (see CapMemory).
func TestTickExamples(t *testing.T) {
	mods := exampleModules(t)
	mustTick := map[string]bool{"spin.wasm": true, "stackoverflow.wasm": true}
	// One cache for the many runtimes: the compiler is slow under the race
	// detector, and the host modules are the same in each.
	cache := wazero.NewCompilationCache()
	defer cache.Close(context.Background())
	for _, name := range sortedKeys(mods) {
		in := mods[name]
		t.Run(name, func(t *testing.T) {
			if name == "membomb.wasm" {
				var err error
				in, err = CapMemory(in, 32)
				require.NoError(t, err)
			}
			out := instrumentTickOK(t, in)
			require.NoError(t, compileErr(wazero.NewRuntimeConfigCompiler(), out))
			require.Equal(t, uint32(0), requireTickExports(t, in, out), "the examples have no table")
			if name == "loop.wasm" {
				return
			}
			input, ok := exampleInputs[name]
			if !ok {
				input = []byte("hello")
			}
			for cname, cfg := range configs() {
				cfg = cfg.WithCompilationCache(cache)
				t.Run(cname, func(t *testing.T) {
					want := runExample(t, cfg, in, input, nil)
					var ticks atomic.Int64
					got := runExample(t, cfg, out, input, func(r wazero.Runtime) {
						linkTick(t, r, "guest", tickCounter(&ticks, nil))
					})
					require.Equal(t, want, got)
					if mustTick[name] {
						require.NotZero(t, ticks.Load(), "the tick function was never called")
					}
					t.Logf("%s: %d ticks; %.100s", name, ticks.Load(), got)
				})
			}
		})
	}
}

// TestTickGoGuests instruments the Go guests with Tick. Each has a table of
// its own, so the tick table is table 1. Their runtime initialisation runs
// through the tick function, and sha256 computes the same hashes.
func TestTickGoGuests(t *testing.T) {
	guests := goGuests(t)
	ctx := context.Background()
	for _, name := range sortedKeys(guests) {
		in := guests[name]
		t.Run(name, func(t *testing.T) {
			out := instrumentTickOK(t, in)
			require.Equal(t, uint32(1), requireTickExports(t, in, out), "Go modules have one table")
			r, log := newHostRuntime(t, guestConfig())
			mod, err := r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("guest").WithStartFunctions())
			require.NoError(t, err)
			var ticks atomic.Int64
			linkTick(t, r, "guest", tickCounter(&ticks, nil))
			_, err = mod.ExportedFunction("_initialize").Call(ctx)
			require.NoError(t, err, "guest log: %s", log)
			require.NotZero(t, ticks.Load(), "the Go runtime's initialisation never called the tick function")
			if name != "sha256" {
				return
			}
			for _, input := range [][]byte{{}, []byte("abc"), bytes.Repeat([]byte{7}, 1<<16)} {
				before := ticks.Load()
				got, err := reactorRun(t, mod, input)
				require.NoError(t, err, "guest log: %s", log)
				sum := sha256Hex(input)
				require.Equal(t, sum, string(got))
				t.Logf("sha256 of %d bytes: %d ticks", len(input), ticks.Load()-before)
			}
		})
	}
}

// TestTickStopsLoop is the point of Tick: a guest spinning in an empty loop
// calls the tick function every 1024 iterations, and the tick function can
// stop it, either by panicking (what a JavaScript host does by throwing) or
// by setting StopGlobal, after which the guest traps at its next check and
// the tick function is not called again. A call through the empty slot
// traps. The context is only a safety net: should the tick never stop the
// guest, the test fails on the deadline instead of hanging.
func TestTickStopsLoop(t *testing.T) {
	out := instrumentTickOK(t, exampleModules(t)["loop.wasm"])
	const stopAt = 5
	for cname, cfg := range configs() {
		t.Run(cname, func(t *testing.T) {
			cases := []struct {
				name string
				tick func(mod *api.Module, calls int64)
				want string
			}{
				{"tick panics", func(_ *api.Module, calls int64) {
					if calls == stopAt {
						panic(errTimeUp)
					}
				}, errTimeUp.Error()},
				{"tick sets the stop global", func(mod *api.Module, calls int64) {
					if calls == stopAt {
						(*mod).ExportedGlobal(StopGlobal).(api.MutableGlobal).Set(1)
					}
				}, "unreachable"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					r := wazero.NewRuntimeWithConfig(ctx, cfg.WithCloseOnContextDone(true))
					defer r.Close(ctx)
					mod, err := r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("guest"))
					require.NoError(t, err)
					var ticks atomic.Int64
					linkTick(t, r, "guest", tickCounter(&ticks, func(calls int64) { c.tick(&mod, calls) }))
					_, err = mod.ExportedFunction("ferry_run").Call(ctx, 0, 0)
					require.ErrorContains(t, err, c.want)
					if c.want == errTimeUp.Error() {
						require.ErrorIs(t, err, errTimeUp)
					}
					require.Equal(t, int64(stopAt), ticks.Load())
				})
			}
			t.Run("empty slot", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				r := wazero.NewRuntimeWithConfig(ctx, cfg.WithCloseOnContextDone(true))
				defer r.Close(ctx)
				mod, err := r.Instantiate(ctx, out)
				require.NoError(t, err)
				_, err = mod.ExportedFunction("ferry_run").Call(ctx, 0, 0)
				require.Error(t, err)
				require.NotErrorIs(t, err, context.DeadlineExceeded)
				t.Logf("call through the empty slot: %v", err)
			})
		})
	}
}

// spinModule is a module whose function "spin" (param i32) loops that many
// times. With a table 0 (imported or defined: withTable), it also exports
// "get", which returns what the function in slot 0 of table 0 returns. The
// module has no memory, which Tick does not need.
func spinModule(imports, table, elem []byte, withTable bool) []byte {
	secs := [][]byte{sect(1, vec(funcType([]byte{0x7f}, nil), funcType(nil, []byte{0x7f})))}
	if imports != nil {
		secs = append(secs, imports)
	}
	funcs := [][]byte{{0x00}, {0x01}}
	exports := [][]byte{cat(name("spin"), []byte{0x00, 0x00})}
	bodies := [][]byte{spinBody, fn([]byte{0x00}, 0x41, 42, 0x0b)} // f1 returns 42
	if withTable {
		funcs = append(funcs, []byte{0x01})
		exports = append(exports, cat(name("get"), []byte{0x00, 0x02}))
		bodies = append(bodies, fn([]byte{0x00}, 0x41, 0x00, 0x11, 0x01, 0x00, 0x0b)) // call_indirect (type 1) (table 0)
	}
	secs = append(secs, sect(3, vec(funcs...)))
	if table != nil {
		secs = append(secs, table)
	}
	secs = append(secs, sect(7, vec(exports...)))
	if elem != nil {
		secs = append(secs, elem)
	}
	secs = append(secs, sect(10, vec(bodies...)))
	return module(secs...)
}

// TestTickTables checks the tick table's index with no table, a defined
// table and an imported one, and that the existing table 0 still works. The
// modules have no memory.
func TestTickTables(t *testing.T) {
	table := sect(4, vec([]byte{0x70, 0x00, 0x01}))
	elem := sect(9, vec([]byte{0x00, 0x41, 0x00, 0x0b, 0x01, 0x01})) // table 0[0] = f1
	tableImport := sect(2, vec(cat(name("env"), name("table"), []byte{0x01, 0x70, 0x00, 0x01})))
	// The provider of the imported table, with a function () -> i32 that
	// returns 43 in slot 0.
	env := module(
		sect(1, vec(funcType(nil, []byte{0x7f}))),
		sect(3, vec([]byte{0x00})),
		table,
		sect(7, vec(cat(name("table"), []byte{0x01, 0x00}))),
		sect(9, vec([]byte{0x00, 0x41, 0x00, 0x0b, 0x01, 0x00})),
		sect(10, vec(fn([]byte{0x00}, 0x41, 43, 0x0b))),
	)
	cases := []struct {
		name      string
		in        []byte
		wantTable uint32
		wantGet   uint64 // what "get" returns; 0: no table 0
	}{
		{"no table", spinModule(nil, nil, nil, false), 0, 0},
		{"defined table", spinModule(nil, table, elem, true), 1, 42},
		{"imported table", spinModule(tableImport, nil, nil, true), 1, 43},
		{"imported and defined tables", spinModule(tableImport, table, nil, true), 2, 43},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, compileErr(wazero.NewRuntimeConfigInterpreter(), c.in), "test module must be valid")
			_, err := Instrument(c.in)
			require.ErrorIs(t, err, ErrUnsupported, "without Tick, a module without memory is refused")
			out := instrumentTickOK(t, c.in)
			require.Equal(t, c.wantTable, requireTickExports(t, c.in, out))
			for cname, cfg := range configs() {
				t.Run(cname, func(t *testing.T) {
					ctx := context.Background()
					r := wazero.NewRuntimeWithConfig(ctx, cfg)
					defer r.Close(ctx)
					_, err := r.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env"))
					require.NoError(t, err)
					mod, err := r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("guest"))
					require.NoError(t, err)
					var ticks atomic.Int64
					linkTick(t, r, "guest", tickCounter(&ticks, nil))
					_, err = mod.ExportedFunction("spin").Call(ctx, 10_000)
					require.NoError(t, err)
					require.Equal(t, int64(10_001/1024), ticks.Load(), "one tick per 1024 checks")
					if c.wantGet != 0 {
						res, err := mod.ExportedFunction("get").Call(ctx)
						require.NoError(t, err)
						require.Equal(t, c.wantGet, res[0], "table 0 must keep its function")
					}
				})
			}
		})
	}
}

// TestTickExported checks that a module exporting TickTable is refused with
// Tick (whatever the export's kind), and instrumented without it.
func TestTickExported(t *testing.T) {
	for _, kind := range []byte{0x00, 0x01, 0x02, 0x03} {
		t.Run(fmt.Sprintf("kind %d", kind), func(t *testing.T) {
			in := module(
				sect(1, vec(funcType(nil, nil))),
				sect(3, vec([]byte{0x00})),
				sect(4, vec([]byte{0x70, 0x00, 0x01})),
				memSect(),
				sect(6, vec([]byte{0x7f, 0x00, 0x41, 0x00, 0x0b})),
				sect(7, vec(cat(name("run"), []byte{0x00, 0x00}), cat(name(TickTable), []byte{kind, 0x00}))),
				sect(10, vec(fn([]byte{0x00}, 0x0b))),
			)
			require.NoError(t, compileErr(wazero.NewRuntimeConfigInterpreter(), in), "test module must be valid")
			orig := bytes.Clone(in)
			out, err := InstrumentWith(in, tickOpts)
			require.ErrorIs(t, err, ErrTickExported)
			require.NotErrorIs(t, err, ErrMalformed)
			require.NotErrorIs(t, err, ErrUnsupported)
			require.Nil(t, out)
			require.Equal(t, orig, in, "InstrumentWith modified its input")
			instrumentOK(t, in)
		})
	}
	// The stop global's export is refused with Tick too.
	in := module(memSect(), sect(7, vec(cat(name(StopGlobal), []byte{0x02, 0x00}))))
	_, err := InstrumentWith(in, tickOpts)
	require.ErrorIs(t, err, ErrStopExported)
}

// TestTickExactOutput pins the whole output for small modules: the type
// and table sections get one more entry each (the type index counts the
// members of a rec group), the export section both exports, and the yield
// is call_indirect with the new type and table.
func TestTickExactOutput(t *testing.T) {
	types := sect(1, vec(funcType(nil, nil)))
	imports := sect(2, vec(
		cat(name("e"), name("t"), []byte{0x01, 0x70, 0x00, 0x01}), // table 0
		cat(name("e"), name("g"), []byte{0x03, 0x7f, 0x00}),       // global 0
	))
	funcs := sect(3, vec([]byte{0x00}))
	table := []byte{0x6f, 0x01, 0x00, 0x05} // externref, 0..5: table 1
	custom := sect(0, name("note"), []byte("kept as is"))
	exports := sect(7, vec(cat(name("run"), []byte{0x00, 0x00})))
	body := []byte{0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b} // loop br 0 end
	in := module(types, imports, funcs, sect(4, vec(table)), custom, exports, sect(10, vec(fn(body[:1], body[1:]...))))

	check := tickCheckSeq(1, 1, 2)
	require.Equal(t, []byte{
		0x23, 0x01, 0x04, 0x40, 0x00, 0x0b, // global.get $stop; if; unreachable; end
		0x23, 0x02, 0x41, 0x01, 0x6b, 0x24, 0x02, // $budget = $budget - 1
		0x23, 0x02, 0x45, 0x04, 0x40, // if $budget == 0
		0x41, 0x00, 0x11, 0x01, 0x02, // call_indirect (type 1) (table 2) (i32.const 0)
		0x41, 0x80, 0x08, 0x24, 0x02, // $budget = 1024
		0x0b, // end
	}, check)
	newBody := cat(body[:1], check, body[1:3], check, body[3:])
	want := module(
		sect(1, vec(funcType(nil, nil), []byte{0x60, 0x00, 0x00})),
		imports, funcs,
		sect(4, vec(table, []byte{0x70, 0x00, 0x01})),
		custom,
		sect(6, vec(wantStopEntry, wantBudgetEntry)),
		sect(7, vec(
			cat(name("run"), []byte{0x00, 0x00}),
			cat(name(StopGlobal), []byte{0x03, 0x01}),
			cat(name(TickTable), []byte{0x01, 0x02}),
		)),
		sect(10, vec(cat(uleb(uint64(len(newBody))), newBody))),
	)
	out := instrumentTickOK(t, in)
	require.Equal(t, want, out)
	require.NoError(t, compileErr(wazero.NewRuntimeConfigInterpreter(), out))

	// No type, table, global or export section: all four are added, each
	// before the first section that must follow it, custom sections staying
	// where they are.
	lead := sect(0, name("dylink.0"), []byte{0x01})
	trail := sect(0, name("trailer"))
	in = module(lead, sect(5, vec([]byte{0x00, 0x01})), trail, sect(11, vec()))
	want = module(lead,
		sect(1, vec([]byte{0x60, 0x00, 0x00})),
		sect(4, vec([]byte{0x70, 0x00, 0x01})),
		sect(5, vec([]byte{0x00, 0x01})), trail,
		sect(6, vec(wantStopEntry, wantBudgetEntry)),
		sect(7, vec(cat(name(StopGlobal), []byte{0x03, 0x00}), cat(name(TickTable), []byte{0x01, 0x00}))),
		sect(11, vec()))
	require.Equal(t, want, instrumentTickOK(t, in))

	// The empty module gets all four at the end.
	want = module(
		sect(1, vec([]byte{0x60, 0x00, 0x00})),
		sect(4, vec([]byte{0x70, 0x00, 0x01})),
		sect(6, vec(wantStopEntry, wantBudgetEntry)),
		sect(7, vec(cat(name(StopGlobal), []byte{0x03, 0x00}), cat(name(TickTable), []byte{0x01, 0x00}))))
	out = instrumentTickOK(t, module())
	require.Equal(t, want, out)
	require.NoError(t, compileErr(wazero.NewRuntimeConfigInterpreter(), out))
}

// TestTickTypeIndex checks that the tick type's index counts every type:
// the members of rec groups, and types with reference-typed parameters
// whose heap type takes several bytes.
func TestTickTypeIndex(t *testing.T) {
	recGroup := func(members ...[]byte) []byte { return cat([]byte{0x4e}, vec(members...)) }
	ref := []byte{0x60, 0x01, 0x63, 0x81, 0x00, 0x01, 0x64, 0x70} // (ref null 1) -> (ref func)
	cases := []struct {
		name    string
		types   [][]byte
		typeIdx uint32
	}{
		{"empty type section", nil, 0},
		{"one type", [][]byte{funcType(nil, nil)}, 1},
		{"reference types", [][]byte{funcType(nil, nil), ref}, 2},
		{"rec groups", [][]byte{funcType(nil, nil), recGroup(funcType(nil, nil), ref, funcType(nil, nil)), recGroup(), funcType([]byte{0x7f}, nil)}, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := module(sect(1, vec(c.types...)))
			out := instrumentTickOK(t, in)
			require.Equal(t, module(sect(1, vec(append(c.types, tickType)...)),
				sect(4, vec(tickTable)),
				sect(6, vec(wantStopEntry, wantBudgetEntry)),
				sect(7, vec(cat(name(StopGlobal), []byte{0x03, 0x00}), cat(name(TickTable), []byte{0x01, 0x00})))), out)
			// The same types in a module with code: the check names the
			// tick type by its index.
			in = module(sect(1, vec(append(c.types, funcType(nil, nil))...)), sect(3, vec(uleb(uint64(c.typeIdx)))),
				sect(10, vec(fn([]byte{0x00}, 0x0b))))
			out = instrumentTickOK(t, in)
			require.True(t, bytes.Contains(out, tickCheckSeq(0, c.typeIdx+1, 0)), "%x", out)
		})
	}
	t.Run("overlong heap type", func(t *testing.T) {
		// wazero reads a five-byte heap type whose last byte has its
		// continuation bit set, and accepts the module: it must not be
		// called malformed.
		in := module(sect(1, vec(funcType(nil, nil), []byte{0x60, 0x01, 0x63, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})))
		require.NoError(t, compileErr(wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(allFeatures), in))
		_, err := InstrumentWith(in, tickOpts)
		require.ErrorIs(t, err, ErrUnsupported)
		require.NotErrorIs(t, err, ErrMalformed)
	})
	t.Run("unknown type form", func(t *testing.T) {
		_, err := InstrumentWith(module(sect(1, vec([]byte{0x5f, 0x00}))), tickOpts)
		require.ErrorIs(t, err, ErrUnsupported)
		require.NotErrorIs(t, err, ErrMalformed)
	})
}

// TestTickCheckBytes pins the tick check for type and table indices whose
// LEB128 encoding takes several bytes.
func TestTickCheckBytes(t *testing.T) {
	for _, c := range []struct {
		typeIdx, tableIdx uint32
		yield             []byte
	}{
		{0, 0, []byte{0x41, 0x00, 0x11, 0x00, 0x00}},
		{127, 1, []byte{0x41, 0x00, 0x11, 0x7f, 0x01}},
		{128, 200, []byte{0x41, 0x00, 0x11, 0x80, 0x01, 0xc8, 0x01}},
		{999_999, 99_999, []byte{0x41, 0x00, 0x11, 0xbf, 0x84, 0x3d, 0x9f, 0x8d, 0x06}},
	} {
		want := bytes.Replace(checkSeq(5), []byte{0x41, 0x00, 0x40, 0x00, 0x1a}, c.yield, 1)
		assert.Equal(t, want, tickCheckSeq(5, c.typeIdx, c.tableIdx), "type %d table %d", c.typeIdx, c.tableIdx)
	}
}

// TestTickTruncations instruments every prefix of the examples with Tick:
// none may panic, the prefixes ending on a section boundary are complete
// modules and are instrumented (Tick needs no memory), and the others are
// malformed.
func TestTickTruncations(t *testing.T) {
	mods := exampleModules(t)
	mods["features.wasm"] = testdataModule(t, "features.wasm")
	mods["extended"] = extendedModule()
	for _, name := range sortedKeys(mods) {
		bin := mods[name]
		secs, err := splitSections(bin)
		require.NoError(t, err)
		boundaries := map[int]bool{8: true}
		for _, s := range secs {
			boundaries[s.end] = true
		}
		for n := 0; n < len(bin); n++ {
			_, err := InstrumentWith(bin[:n], tickOpts)
			if boundaries[n] {
				require.NoError(t, err, "%s[:%d]", name, n)
			} else {
				require.ErrorIs(t, err, ErrMalformed, "%s[:%d]", name, n)
			}
		}
	}
}

// TestTickFeatures runs the extended module instrumented with Tick (its
// functions must still compute what they did), and testdata/features.wasm,
// whose self-checking start function shows the limit of Tick: a start
// function runs at instantiation, before anyone can put a function in the
// tick table, so one that makes 1024 checks traps on the empty slot.
func TestTickFeatures(t *testing.T) {
	env := module(
		sect(6, vec(
			[]byte{0x7f, 0x01, 0x41, 0x01, 0x0b},
			[]byte{0x7e, 0x00, 0x42, 42, 0x0b},
		)),
		sect(7, vec(cat(name("g0"), []byte{0x03, 0x00}), cat(name("g1"), []byte{0x03, 0x01}))),
	)
	features := instrumentTickOK(t, testdataModule(t, "features.wasm"))
	extended := instrumentTickOK(t, extendedModule())
	want := map[string]uint64{"a": 7, "b": 19, "c": 1234, "d": 1234, "e": 1239, "f": 7, "g": 7}
	for cname, cfg := range configs() {
		t.Run(cname, func(t *testing.T) {
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, cfg.WithCoreFeatures(allFeatures))
			defer r.Close(ctx)
			_, err := r.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env"))
			require.NoError(t, err)
			_, err = r.InstantiateWithConfig(ctx, features, wazero.NewModuleConfig().WithName("features"))
			require.ErrorContains(t, err, "invalid table access", "the start function must reach the empty slot")

			mod, err := r.InstantiateWithConfig(ctx, extended, wazero.NewModuleConfig().WithName("extended"))
			require.NoError(t, err)
			var ticks atomic.Int64
			linkTick(t, r, "extended", tickCounter(&ticks, nil))
			for fname, w := range want {
				arg := uint64(1234)
				if fname == "a" {
					arg = 100_000 // deep tail recursion: a check at every entry
				}
				res, err := mod.ExportedFunction(fname).Call(ctx, arg)
				require.NoError(t, err, fname)
				assert.Equal(t, w, res[0], fname)
			}
			require.GreaterOrEqual(t, ticks.Load(), int64(100_000/1024))
		})
	}
}

// TestTickV8 runs Tick output in V8 through Node.js, when it is installed:
// V8 must accept the call_indirect with a non-zero table index, the tick
// function (a JavaScript function wrapped by a helper module, since a
// funcref table only takes wasm functions) must be called, and setting
// StopGlobal from it or throwing from it must stop a spinning guest.
func TestTickV8(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found")
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	loop := write("loop.wasm", instrumentTickOK(t, exampleModules(t)["loop.wasm"]))
	table := sect(4, vec([]byte{0x70, 0x00, 0x01}))
	elem := sect(9, vec([]byte{0x00, 0x41, 0x00, 0x0b, 0x01, 0x01}))
	spinIn := spinModule(nil, table, elem, true)
	spinOut := instrumentTickOK(t, spinIn)
	require.Equal(t, uint32(1), requireTickExports(t, spinIn, spinOut))
	spin := write("spin.wasm", spinOut)
	// The helper that turns a JavaScript function into a wasm function.
	wrap := write("wrap.wasm", module(
		sect(1, vec(funcType(nil, nil))),
		sect(2, vec(cat(name("js"), name("tick"), []byte{0x00, 0x00}))),
		sect(7, vec(cat(name("tick"), []byte{0x00, 0x00}))),
	))
	script := write("tick.js", []byte(`
const fs = require("fs");
const [loopPath, spinPath, wrapPath] = process.argv.slice(2);
const load = (p, imports) => new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(p)), imports).exports;
function link(guest, tick) {
  guest.`+TickTable+`.set(0, load(wrapPath, { js: { tick } }).tick);
}
const results = {};
try {
  load(spinPath, {}).`+TickTable+`.set(0, () => {});
  results.plainFunction = "accepted";
} catch (e) {
  results.plainFunction = e.constructor.name;
}
{
  const g = load(spinPath, {});
  let ticks = 0;
  link(g, () => { ticks++; });
  g.spin(10000);
  results.spinTicks = ticks;
  results.get = g.get();
}
{
  const g = load(loopPath, {});
  let ticks = 0;
  link(g, () => { if (++ticks === 5) g.`+StopGlobal+`.value = 1; });
  try { g.ferry_run(0, 0); results.stopGlobal = "returned"; }
  catch (e) { results.stopGlobal = e.constructor.name + ": " + e.message + " after " + ticks; }
}
{
  const g = load(loopPath, {});
  let ticks = 0;
  link(g, () => { if (++ticks === 5) throw new Error("time is up"); });
  try { g.ferry_run(0, 0); results.thrown = "returned"; }
  catch (e) { results.thrown = e.message + " after " + ticks; }
}
{
  const g = load(loopPath, {});
  try { g.ferry_run(0, 0); results.emptySlot = "returned"; }
  catch (e) { results.emptySlot = e.constructor.name; }
}
console.log(JSON.stringify(results));
`))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, script, loop, spin, wrap).CombinedOutput()
	require.NoError(t, err, "%s", out)
	got := strings.TrimSpace(string(out))
	t.Log(got)
	require.JSONEq(t, `{
		"plainFunction": "TypeError",
		"spinTicks": 9,
		"get": 42,
		"stopGlobal": "RuntimeError: unreachable after 5",
		"thrown": "time is up after 5",
		"emptySlot": "RuntimeError"
	}`, got)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
