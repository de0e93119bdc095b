package instrument

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ferryrun/ferry/runtime/wasmbin"
)

// instrumentOK instruments bin, checks that the input was left alone and
// returns the output.
func instrumentOK(t *testing.T, bin []byte) []byte {
	t.Helper()
	orig := bytes.Clone(bin)
	out, err := Instrument(bin)
	require.NoError(t, err)
	require.Equal(t, orig, bin, "Instrument modified its input")
	return out
}

// requireStopExport checks, with wasmbin, that out exports the same as in
// plus StopGlobal as a global.
func requireStopExport(t *testing.T, in, out []byte) {
	t.Helper()
	mi, err := wasmbin.Parse(in)
	require.NoError(t, err)
	mo, err := wasmbin.Parse(out)
	require.NoError(t, err)
	require.Len(t, mo.Exports, len(mi.Exports)+1)
	for i, e := range mi.Exports {
		assert.Equal(t, e.Name, mo.Exports[i].Name)
		assert.Equal(t, e.Kind, mo.Exports[i].Kind)
		assert.Equal(t, e.Index, mo.Exports[i].Index)
	}
	stop := mo.Exports[len(mo.Exports)-1]
	require.Equal(t, StopGlobal, stop.Name)
	require.Equal(t, wasmbin.KindGlobal, stop.Kind)
	for _, e := range mo.Exports {
		if e.Kind == wasmbin.KindGlobal {
			require.NotEqual(t, stop.Index+1, e.Index, "the budget global must stay private (export %q)", e.Name)
		}
	}
	assert.Equal(t, mi.Customs, mo.Customs, "custom sections must be kept")
}

// requireStopGlobal checks, through wazero, that mod exports StopGlobal as a
// mutable i32 global that is initially 0.
func requireStopGlobal(t *testing.T, mod api.Module) api.MutableGlobal {
	t.Helper()
	g := mod.ExportedGlobal(StopGlobal)
	require.NotNil(t, g, "no %s export", StopGlobal)
	require.Equal(t, api.ValueTypeI32, g.Type())
	mg, ok := g.(api.MutableGlobal)
	require.True(t, ok, "%s is not mutable", StopGlobal)
	require.Zero(t, mg.Get())
	return mg
}

func TestInstrumentExamples(t *testing.T) {
	mods := exampleModules(t)
	mods["testdata/features.wasm"] = testdataModule(t, "features.wasm")
	for _, name := range sortedKeys(mods) {
		in := mods[name]
		t.Run(name, func(t *testing.T) {
			out := instrumentOK(t, in)
			require.NoError(t, compileErr(wazero.NewRuntimeConfigCompiler(), out))
			requireStopExport(t, in, out)
			if name == "testdata/features.wasm" {
				return // needs imported globals: see TestFeatures
			}
			r, _ := newHostRuntime(t, wazero.NewRuntimeConfigCompiler())
			mod, err := r.InstantiateWithConfig(context.Background(), out,
				wazero.NewModuleConfig().WithStartFunctions())
			require.NoError(t, err)
			requireStopGlobal(t, mod)
		})
	}
}

func TestInstrumentGoGuests(t *testing.T) {
	guests := goGuests(t)
	for _, name := range sortedKeys(guests) {
		in := guests[name]
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			out := instrumentOK(t, in)
			t.Logf("%s: %d -> %d bytes (+%.2f%%) in %v", name, len(in), len(out),
				100*float64(len(out)-len(in))/float64(len(in)), time.Since(start))
			requireStopExport(t, in, out)
			r, _ := newHostRuntime(t, guestConfig())
			mod, err := r.InstantiateWithConfig(context.Background(), out,
				wazero.NewModuleConfig().WithStartFunctions())
			require.NoError(t, err)
			requireStopGlobal(t, mod)
		})
	}
}

// configs are the two wazero engines. The check must work with both.
func configs() map[string]wazero.RuntimeConfig {
	return map[string]wazero.RuntimeConfig{
		"compiler":    wazero.NewRuntimeConfigCompiler(),
		"interpreter": wazero.NewRuntimeConfigInterpreter(),
	}
}

// stopChildEnv names the engine TestStopChild runs with; it is set only in
// the child process that TestStopInterruptsLoop starts.
const stopChildEnv = "FERRY_INSTRUMENT_STOP_CHILD"

// TestStopInterruptsLoop is the point of the package: a guest spinning in an
// empty loop lets garbage collections through and stops when the host sets
// the global, with no help from the context (WithCloseOnContextDone is off).
// It would hang if the compiler hoisted the check out of the loop, or if the
// check stopped yielding to Go (see the package documentation).
//
// The guest runs in a child process (TestStopChild) because a guest that
// does not stop cannot be stopped any other way, and code compiled by
// wazero cannot be preempted: if the yield were lost, a collection would
// wait for the guest forever, and with it every goroutine of the process,
// watchdogs included. The child's deadline turns that into a failure.
func TestStopInterruptsLoop(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	for _, engine := range []string{"compiler", "interpreter"} {
		t.Run(engine, func(t *testing.T) {
			if engine == "interpreter" && raceEnabled {
				t.Skip("the interpreter reads globals from Go: setting one from another goroutine is a data race")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "-test.run=^TestStopChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), stopChildEnv+"="+engine)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "child process (killed after 20 s if a collection hung):\n%s", out)
			require.Contains(t, string(out), fmt.Sprintf("%d collections while spinning", childGCs), "child process:\n%s", out)
			require.Contains(t, string(out), "stopped by "+StopGlobal, "child process:\n%s", out)
		})
	}
}

// childGCs is how many collections TestStopChild forces while the guest
// spins.
const childGCs = 5

// TestStopChild is the child process of TestStopInterruptsLoop.
func TestStopChild(t *testing.T) {
	engine := os.Getenv(stopChildEnv)
	if engine == "" {
		t.Skip("run by TestStopInterruptsLoop in a child process")
	}
	cfg := configs()[engine]
	require.NotNil(t, cfg, "unknown engine %q", engine)
	out := instrumentOK(t, exampleModules(t)["loop.wasm"])
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	mod, err := r.Instantiate(ctx, out)
	require.NoError(t, err)
	stop := requireStopGlobal(t, mod)
	run := mod.ExportedFunction("ferry_run")

	done := make(chan error, 1)
	go func() {
		_, err := run.Call(ctx, 0, 0)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("ferry_run returned before the stop: %v", err)
	case <-time.After(50 * time.Millisecond):
	}

	// Collections from another goroutine while the guest spins: each one
	// stops the world, which waits for the guest to reach the yield in its
	// loop check. Without it they would never return (and the parent kills
	// this process).
	collected := make(chan struct{})
	go func() {
		for i := range childGCs {
			fmt.Printf("forcing collection %d of %d\n", i+1, childGCs)
			runtime.GC()
		}
		close(collected)
	}()
	select {
	case <-collected:
	case <-time.After(10 * time.Second):
		fmt.Printf("collections still running after 10s while the guest spins\n")
		os.Exit(1)
	}
	select {
	case err := <-done:
		t.Fatalf("ferry_run returned during the collections, before the stop: %v", err)
	default:
	}
	t.Logf("%s: %d collections while spinning", engine, childGCs)

	stop.Set(1)
	select {
	case err := <-done:
		require.ErrorContains(t, err, "unreachable")
		t.Logf("%s: stopped by %s", engine, StopGlobal)
	case <-time.After(2 * time.Second):
		// t.Fatal would leave the guest spinning; exit instead.
		fmt.Printf("guest still running 2s after %s was set\n", StopGlobal)
		os.Exit(1)
	}
}

// TestStopAtFunctionEntry checks the check at function entry, which is what
// stops loop-free code and recursion, and that clearing the global lets the
// same instance run again.
func TestStopAtFunctionEntry(t *testing.T) {
	out := instrumentOK(t, exampleModules(t)["echo.wasm"])
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, out)
	require.NoError(t, err)
	stop := requireStopGlobal(t, mod)

	stop.Set(1)
	_, err = mod.ExportedFunction("ferry_alloc").Call(ctx, 3)
	require.ErrorContains(t, err, "unreachable")

	stop.Set(0)
	got, err := reactorRun(t, mod, []byte("abc"))
	require.NoError(t, err)
	require.Equal(t, "abc", string(got))
}

func TestEquivalenceEcho(t *testing.T) {
	in := exampleModules(t)["echo.wasm"]
	out := instrumentOK(t, in)
	inputs := [][]byte{{}, []byte("hello"), bytes.Repeat([]byte{0xa5}, 200_000)}
	for cname, cfg := range configs() {
		t.Run(cname, func(t *testing.T) {
			ctx := context.Background()
			for _, bin := range [][]byte{in, out} {
				r := wazero.NewRuntimeWithConfig(ctx, cfg)
				mod, err := r.Instantiate(ctx, bin)
				require.NoError(t, err)
				for _, input := range inputs {
					got, err := reactorRun(t, mod, input)
					require.NoError(t, err)
					require.Equal(t, input, got)
				}
				r.Close(ctx)
			}
		})
	}
}

// guestConfig is the engine for tests that compile the 3 MB Go guests. The
// race detector makes wazero's compiler ten times slower (8 s per guest), so
// race runs use the interpreter: validation, what matters most here, is the
// same, and plain runs still cover the compiler.
func guestConfig() wazero.RuntimeConfig {
	if raceEnabled {
		return wazero.NewRuntimeConfigInterpreter()
	}
	return wazero.NewRuntimeConfigCompiler()
}

func TestEquivalenceGoSHA256(t *testing.T) {
	in := goGuests(t)["sha256"]
	out := instrumentOK(t, in)
	big := make([]byte, 1<<20)
	if raceEnabled {
		big = big[:1<<16] // interpreted
	}
	_, _ = rand.Read(big)
	inputs := [][]byte{{}, []byte("abc"), big}

	run := func(t *testing.T, bin []byte) []string {
		r, log := newHostRuntime(t, guestConfig())
		ctx := context.Background()
		mod, err := r.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName(""))
		require.NoError(t, err)
		_, err = mod.ExportedFunction("_initialize").Call(ctx)
		require.NoError(t, err)
		var res []string
		for _, input := range inputs {
			got, err := reactorRun(t, mod, input)
			require.NoError(t, err, "guest log: %s", log)
			res = append(res, string(got))
		}
		return res
	}
	want := make([]string, len(inputs))
	for i, input := range inputs {
		sum := sha256.Sum256(input)
		want[i] = hex.EncodeToString(sum[:])
	}
	require.Equal(t, want, run(t, in), "uninstrumented guest")
	require.Equal(t, want, run(t, out), "instrumented guest")
}

// TestFeatures instantiates the instrumented testdata/features.wasm. Its
// start function checks its own results across the instruction set and
// traps on a mismatch, and the imported global $g0 is 1, so a check reading
// global 0 instead of the stop global (index 2) would trap too.
func TestFeatures(t *testing.T) {
	in := testdataModule(t, "features.wasm")
	out := instrumentOK(t, in)
	ctx := context.Background()
	// The provider of the imported globals: (mut i32) = 1 and i64 = 42.
	env := module(
		sect(6, vec(
			[]byte{0x7f, 0x01, 0x41, 0x01, 0x0b},
			[]byte{0x7e, 0x00, 0x42, 42, 0x0b},
		)),
		sect(7, vec(cat(name("g0"), []byte{0x03, 0x00}), cat(name("g1"), []byte{0x03, 0x01}))),
	)
	for cname, cfg := range configs() {
		t.Run(cname, func(t *testing.T) {
			for _, bin := range [][]byte{in, out} {
				r := wazero.NewRuntimeWithConfig(ctx, cfg)
				_, err := r.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env"))
				require.NoError(t, err)
				mod, err := r.Instantiate(ctx, bin)
				require.NoError(t, err, "start function failed")
				if bytes.Equal(bin, out) {
					requireStopGlobal(t, mod)
					e, _ := mustParse(t, out).Export(StopGlobal)
					require.Equal(t, uint32(2), e.Index, "stop global must follow the 2 imported globals")
				}
				r.Close(ctx)
			}
		})
	}
}

func mustParse(t *testing.T, b []byte) *wasmbin.Module {
	t.Helper()
	m, err := wasmbin.Parse(b)
	require.NoError(t, err)
	return m
}

// extendedModule exercises what wabt cannot assemble and what needs
// experimental wazero features: threads, tail calls, exception handling
// (try_table, throw, throw_ref) and typed function references. It has no
// global section, and a tag section (id 13) between memory and export: the
// new global section must go after the tag section although its id is
// smaller.
//
// Every function has type (i32) -> i32 and is exported as "a", "b"...:
//
//	f0(n) = 7, tail-recursing n times (return_call)
//	f1(n) = 19 (call_ref, br_on_null, br_on_non_null, ref.as_non_null,
//	        (ref null 0) local and block types)
//	f2(n) = n (loop, throw, try_table catch)
//	f3(n) = n (catch_all_ref, throw_ref)
//	f4(n) = n+5 (atomics on a shared memory, fence, notify)
//	f5(n) = 7 (return_call_ref)
//	f6(n) = 7 (return_call_indirect)
func extendedModule() []byte {
	i32 := byte(0x7f)
	types := sect(1, vec(
		funcType([]byte{i32}, []byte{i32}), // 0
		funcType([]byte{i32}, nil),         // 1: the tag's
	))
	funcs := sect(3, vec(
		[]byte{0}, []byte{0}, []byte{0}, []byte{0}, []byte{0}, []byte{0}, []byte{0},
	))
	table := sect(4, vec([]byte{0x70, 0x00, 0x01}))
	memory := sect(5, vec([]byte{0x03, 0x01, 0x01})) // shared, 1..1 page
	tags := sect(13, vec([]byte{0x00, 0x01}))
	var exports [][]byte
	for i := range 7 {
		exports = append(exports, cat(name(string(rune('a'+i))), []byte{0x00, byte(i)}))
	}
	export := sect(7, vec(exports...))
	elem := sect(9, vec([]byte{0x00, 0x41, 0x00, 0x0b, 0x01, 0x00})) // table[0] = f0
	noLocals := []byte{0x00}
	code := sect(10, vec(
		// f0
		fn(noLocals,
			0x20, 0x00, 0x04, 0x40, // local.get 0; if
			0x20, 0x00, 0x41, 0x01, 0x6b, 0x12, 0x00, // return_call f0 (n-1)
			0x0b,
			0x41, 0x07, 0x0b),
		// f1
		fn([]byte{0x01, 0x01, 0x63, 0x00}, // one local (ref null 0)
			0xd2, 0x00, 0x21, 0x01, // local.set 1 (ref.func f0)
			0x02, 0x7f, // block (result i32)
			0x41, 0x05, 0xd0, 0x00, 0xd5, 0x00, // i32.const 5; ref.null 0; br_on_null 0
			0x1a, 0x1a, 0x41, 0x06,
			0x0b,
			0x20, 0x00, 0x20, 0x01, 0xd4, 0x14, 0x00, // call_ref 0 (local.get 0, ref.as_non_null local 1)
			0x6a,                                           // 5 + 7
			0x02, 0x63, 0x00, 0x20, 0x01, 0x0b, 0x21, 0x01, // local 1 through a block (result (ref null 0))
			0x20, 0x00, // argument of the next call_ref
			0x02, 0x64, 0x00, // block $b (result (ref 0))
			0x20, 0x01, // local.get 1
			0xd6, 0x00, 0x00, // br_on_non_null $b; unreachable
			0x0b,
			0x14, 0x00, 0x6a, // call_ref 0; 12 + 7
			0x0b),
		// f2
		fn(noLocals,
			0x02, 0x7f, // block $h (result i32)
			0x1f, 0x40, 0x01, 0x00, 0x00, 0x00, // try_table (catch tag0 $h)
			0x03, 0x40, 0x20, 0x00, 0x08, 0x00, 0x0b, // loop: throw tag0 (local.get 0)
			0x0b,
			0x00,
			0x0b,
			0x0b),
		// f3
		fn(noLocals,
			0x02, 0x7f, // block $h (result i32)
			0x1f, 0x40, 0x01, 0x00, 0x00, 0x00, // try_table (catch tag0 $h)
			0x02, 0x69, // block $x (result exnref)
			0x1f, 0x40, 0x01, 0x03, 0x00, // try_table (catch_all_ref $x)
			0x20, 0x00, 0x08, 0x00, // throw tag0 (local.get 0)
			0x0b,
			0x00,
			0x0b,
			0x0a, // throw_ref
			0x0b,
			0x00,
			0x0b,
			0x0b),
		// f4
		fn(noLocals,
			0x41, 0x00, 0x20, 0x00, 0xfe, 0x17, 0x02, 0x00, // i32.atomic.store
			0xfe, 0x03, 0x00, // atomic.fence
			0x41, 0x00, 0x41, 0x05, 0xfe, 0x1e, 0x02, 0x00, 0x1a, // i32.atomic.rmw.add; drop
			0x41, 0x00, 0xfe, 0x10, 0x02, 0x00, // i32.atomic.load
			0x41, 0x00, 0x41, 0x01, 0xfe, 0x00, 0x02, 0x00, // memory.atomic.notify = 0
			0x6a,
			0x0b),
		// f5
		fn(noLocals, 0x20, 0x00, 0xd2, 0x00, 0x15, 0x00, 0x0b), // return_call_ref 0
		// f6
		fn(noLocals, 0x20, 0x00, 0x41, 0x00, 0x13, 0x00, 0x00, 0x0b), // return_call_indirect 0 0
	))
	return module(types, funcs, table, memory, tags, export, elem, code)
}

func TestExtendedFeatures(t *testing.T) {
	in := extendedModule()
	out := instrumentOK(t, in)
	want := map[string]uint64{"a": 7, "b": 19, "c": 1234, "d": 1234, "e": 1239, "f": 7, "g": 7}
	for cname, cfg := range configs() {
		t.Run(cname, func(t *testing.T) {
			ctx := context.Background()
			for _, bin := range [][]byte{in, out} {
				r := wazero.NewRuntimeWithConfig(ctx, cfg.WithCoreFeatures(allFeatures))
				mod, err := r.Instantiate(ctx, bin)
				require.NoError(t, err)
				for fname, w := range want {
					arg := uint64(1234)
					if fname == "a" {
						arg = 100_000 // deep tail recursion: a check at every entry
					}
					res, err := mod.ExportedFunction(fname).Call(ctx, arg)
					require.NoError(t, err, fname)
					assert.Equal(t, w, res[0], fname)
				}
				if bytes.Equal(bin, out) {
					stop := requireStopGlobal(t, mod)
					e, _ := mustParse(t, out).Export(StopGlobal)
					require.Equal(t, uint32(0), e.Index)
					stop.Set(1)
					_, err := mod.ExportedFunction("c").Call(ctx, 1)
					require.ErrorContains(t, err, "unreachable")
				}
				r.Close(ctx)
			}
		})
	}
}

// TestExactOutput pins the whole output for a small module: the global
// section gets the stop and budget globals, the export section the stop
// global only, the checks land at function entry and after the loop header,
// and the indices account for imported globals. The memory the check needs
// is imported, between the imported globals.
func TestExactOutput(t *testing.T) {
	types := sect(1, vec(funcType(nil, nil)))
	imports := sect(2, vec(
		cat(name("e"), name("a"), []byte{0x03, 0x7f, 0x00}),
		cat(name("e"), name("f"), []byte{0x00, 0x00}),
		cat(name("e"), name("m"), []byte{0x02, 0x01, 0x01, 0x02}), // memory 1..2
		cat(name("e"), name("b"), []byte{0x03, 0x7e, 0x01}),
	))
	funcs := sect(3, vec([]byte{0x00}))
	global := []byte{0x7d, 0x00, 0x43, 0, 0, 0, 0, 0x0b}
	custom := sect(0, name("note"), []byte("kept as is"))
	body := []byte{0x01, 0x01, 0x7f, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b} // (local i32) loop br 0 end
	in := module(types, imports, funcs, sect(6, vec(global)), custom, sect(10, vec(fn(body[:3], body[3:]...))))

	check := checkSeq(3) // two imported globals, one defined
	require.Equal(t, []byte{
		0x23, 0x03, 0x04, 0x40, 0x00, 0x0b, // global.get $stop; if; unreachable; end
		0x23, 0x04, 0x41, 0x01, 0x6b, 0x24, 0x04, // $budget = $budget - 1
		0x23, 0x04, 0x45, 0x04, 0x40, // if $budget == 0
		0x41, 0x00, 0x40, 0x00, 0x1a, // memory.grow 0 (i32.const 0); drop
		0x41, 0x80, 0x08, 0x24, 0x04, // $budget = 1024
		0x0b, // end
	}, check)
	newBody := cat(body[:3], check, body[3:5], check, body[5:])
	want := module(types, imports, funcs,
		sect(6, vec(global, wantStopEntry, wantBudgetEntry)),
		custom, // a new section goes right before the first one that must follow it
		sect(7, vec(cat(name(StopGlobal), []byte{0x03, 0x03}))),
		sect(10, vec(cat(uleb(uint64(len(newBody))), newBody))),
	)
	out := instrumentOK(t, in)
	require.Equal(t, want, out)
}

// TestLEBGrowth covers sizes and indices whose LEB128 encoding gets longer:
// a body crossing 127 bytes, a global count crossing 127, a budget global
// index of 128 with a stop global index of 127, and both above 127.
func TestLEBGrowth(t *testing.T) {
	for _, globals := range []int{0, 127, 200} {
		var entries [][]byte
		for range globals {
			entries = append(entries, []byte{0x7f, 0x00, 0x41, 0x00, 0x0b})
		}
		// A 123-byte body: (loop (br_if 0 (global.get $stop-ish))) padded
		// with nops; the two checks push it over 127.
		instrs := []byte{0x03, 0x40, 0x41, 0x00, 0x0d, 0x00, 0x0b}
		pad := bytes.Repeat([]byte{0x01}, 123-1-len(instrs)-1)
		body := cat([]byte{0x00}, pad, instrs, []byte{0x0b})
		require.Len(t, body, 123)
		sections := [][]byte{
			sect(1, vec(funcType(nil, nil))),
			sect(3, vec([]byte{0x00})),
			memSect(),
		}
		if globals > 0 {
			sections = append(sections, sect(6, vec(entries...)))
		}
		sections = append(sections,
			sect(7, vec(cat(name("run"), []byte{0x00, 0x00}))),
			sect(10, vec(cat(uleb(uint64(len(body))), body))))
		in := module(sections...)
		out := instrumentOK(t, in)
		require.True(t, bytes.Contains(out, checkSeq(uint32(globals))))
		wantGlobals := sect(6, uleb(uint64(globals+2)), bytes.Join(entries, nil), wantStopEntry, wantBudgetEntry)
		require.True(t, bytes.Contains(out, wantGlobals), "global section must end with the stop and budget globals")
		for cname, cfg := range configs() {
			t.Run(cname, func(t *testing.T) {
				ctx := context.Background()
				r := wazero.NewRuntimeWithConfig(ctx, cfg)
				defer r.Close(ctx)
				mod, err := r.Instantiate(ctx, out)
				require.NoError(t, err)
				stop := requireStopGlobal(t, mod)
				_, err = mod.ExportedFunction("run").Call(ctx)
				require.NoError(t, err)
				stop.Set(1)
				_, err = mod.ExportedFunction("run").Call(ctx)
				require.ErrorContains(t, err, "unreachable")
				e, _ := mustParse(t, out).Export(StopGlobal)
				require.Equal(t, uint32(globals), e.Index)
			})
		}
	}
}

// TestSectionPlacement checks where missing sections go: before the first
// section that must follow them, after custom sections in between, and at
// the end if nothing follows.
func TestSectionPlacement(t *testing.T) {
	types := sect(1, vec(funcType(nil, nil)))
	mem := memSect()
	lead := sect(0, name("dylink.0"), []byte{0x01})
	trail := sect(0, name("trailer"))
	newGlobals := sect(6, vec(wantStopEntry, wantBudgetEntry))
	stopExport := sect(7, vec(cat(name(StopGlobal), []byte{0x03, 0x00})))

	// Only types, memory and custom sections: both go at the end.
	out := instrumentOK(t, module(lead, types, mem, trail))
	require.Equal(t, module(lead, types, mem, trail, newGlobals, stopExport), out)

	// Only an imported memory: both go at the end.
	imports := sect(2, vec(cat(name("env"), name("memory"), []byte{0x02, 0x00, 0x01})))
	out = instrumentOK(t, module(imports))
	require.Equal(t, module(imports, newGlobals, stopExport), out)

	// A start section follows export.
	funcs := sect(3, vec([]byte{0x00}))
	start := sect(8, []byte{0x00})
	code := sect(10, vec(fn([]byte{0x00}, 0x0b)))
	in := module(lead, types, funcs, mem, trail, start, code)
	out = instrumentOK(t, in)
	wantCode := sect(10, vec(fn([]byte{0x00}, append(checkSeq(0), 0x0b)...)))
	require.Equal(t, module(lead, types, funcs, mem, trail, newGlobals, stopExport, start, wantCode), out)
	require.NoError(t, compileErr(wazero.NewRuntimeConfigInterpreter(), out))
}

// TestErrors checks what each kind of bad input is reported as. Every module
// that wasmbin can parse has a memory, so that the refusal of memoryless
// modules (TestNoMemory) cannot stand in for the error a case is about.
func TestErrors(t *testing.T) {
	types := sect(1, vec(funcType(nil, nil)))
	funcs := sect(3, vec([]byte{0x00}))
	mem := memSect()
	withBody := func(instrs ...byte) []byte {
		return module(types, funcs, mem, sect(10, vec(fn([]byte{0x00}, instrs...))))
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"not wasm", []byte("\x7fELF\x02\x01\x01\x00"), wasmbin.ErrNotWasm},
		{"bad version", []byte{0x00, 'a', 's', 'm', 0x02, 0x00, 0x00, 0x00}, ErrMalformed},
		{"section past end", module([]byte{0x01, 0x10, 0x00}), ErrMalformed},
		{"section size overlong", module([]byte{0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), ErrMalformed},
		{"unknown section", module(sect(14)), ErrMalformed},
		{"sections out of order", module(funcs, types), ErrMalformed},
		{"repeated section", module(types, types), ErrMalformed},
		{"truncated body", module(types, funcs, mem, []byte{0x0a, 0x04, 0x01, 0x05, 0x00, 0x0b}), ErrMalformed},
		{"truncated immediate", withBody(0x41), ErrMalformed},
		{"truncated i64.const", withBody(0x42, 0x80, 0x80), ErrMalformed},
		{"overlong i32.const", withBody(0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b), ErrMalformed},
		{"truncated f64.const", withBody(0x44, 0, 0, 0, 0, 0, 0, 0x0b), ErrMalformed},
		{"truncated v128.const", withBody(0xfd, 0x0c, 1, 2, 3), ErrMalformed},
		{"br_table past end", withBody(0x41, 0x00, 0x0e, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00), ErrMalformed},
		{"body past section", module(types, funcs, mem, []byte{0x0a, 0x03, 0x01, 0x09, 0x00}), ErrMalformed},
		{"trailing bytes in code", module(types, funcs, mem, sect(10, vec(fn([]byte{0x00}, 0x0b)), []byte{0x00})), ErrMalformed},
		{"unknown opcode", withBody(0xff, 0x0b), ErrUnsupported},
		{"unassigned opcode", withBody(0x27, 0x0b), ErrUnsupported},
		{"GC prefix", withBody(0xfb, 0x00, 0x0b), ErrUnsupported},
		{"legacy try", withBody(0x06, 0x40, 0x0b, 0x0b), ErrUnsupported},
		{"unknown 0xfc", withBody(0xfc, 0x12, 0x0b), ErrUnsupported},
		{"unknown SIMD", withBody(0xfd, 0x9a, 0x01, 0x0b), ErrUnsupported},
		{"relaxed SIMD", withBody(0xfd, 0x80, 0x02, 0x0b), ErrUnsupported},
		{"non-canonical SIMD opcode", withBody(0xfd, 0x8c, 0x00, 0x0b), ErrUnsupported},
		{"unknown atomic", withBody(0xfe, 0x04, 0x0b), ErrUnsupported},
		{"typed select of two", withBody(0x1c, 0x02, 0x7f, 0x7f, 0x0b), ErrUnsupported},
		// wazero validates the heap type but its engines do not skip it.
		{"typed select of a ref type", withBody(0x1c, 0x01, 0x63, 0x00, 0x0b), ErrUnsupported},
		// wazero v1.12 reads this heap type from the next body and then
		// panics (makeslice: len out of range) in CompileModule.
		{"local ref type past body", module(types, sect(3, vec([]byte{0x00}, []byte{0x00})), mem,
			sect(10, vec(cat([]byte{0x03}, []byte{0x01, 0x01, 0x63}), fn([]byte{0x00}, 0x0b)))), ErrMalformed},
		{"unknown local type", module(types, funcs, mem, sect(10, vec(fn([]byte{0x01, 0x01, 0x6e}, 0x0b)))), ErrUnsupported},
		{"unknown catch kind", withBody(0x1f, 0x40, 0x01, 0x04, 0x00, 0x0b, 0x0b), ErrUnsupported},
		{"stop already exported", module(types, mem, sect(7, vec(cat(name(StopGlobal), []byte{0x03, 0x00})))), ErrStopExported},
		{"truncated import", module(sect(2, vec(cat(name("m"), name("g"), []byte{0x03}))), mem), ErrMalformed},
		{"import table with initialiser", module(sect(2, vec(cat(name("m"), name("t"), []byte{0x01, 0x40, 0x00, 0x70, 0x00, 0x01}))), mem), ErrUnsupported},
		{"bad limits", module(sect(2, vec(cat(name("m"), name("m"), []byte{0x02, 0x07, 0x01}))), mem), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if m, err := wasmbin.Parse(c.in); err == nil {
				require.True(t, hasMemoryTest(m), "test module without a memory")
			}
			out, err := Instrument(c.in)
			require.ErrorIs(t, err, c.want)
			require.Nil(t, out)
			if errors.Is(err, ErrMalformed) {
				require.NotErrorIs(t, err, ErrUnsupported)
			}
		})
	}
}

// TestCheckBytes pins the check for stop global indices whose LEB128
// encoding, or the budget global's (the next index), takes two bytes.
func TestCheckBytes(t *testing.T) {
	want := func(stop, budget []byte) []byte {
		return cat(
			[]byte{0x23}, stop, []byte{0x04, 0x40, 0x00, 0x0b}, // global.get $stop; if; unreachable; end
			[]byte{0x23}, budget, []byte{0x41, 0x01, 0x6b, 0x24}, budget, // $budget = $budget - 1
			[]byte{0x23}, budget, []byte{0x45, 0x04, 0x40}, // if $budget == 0
			[]byte{0x41, 0x00, 0x40, 0x00, 0x1a},   // memory.grow 0 (i32.const 0); drop
			[]byte{0x41, 0x80, 0x08, 0x24}, budget, // $budget = 1024
			[]byte{0x0b}, // end
		)
	}
	for _, c := range []struct {
		idx          uint32
		stop, budget []byte
	}{
		{0, []byte{0x00}, []byte{0x01}},
		{126, []byte{0x7e}, []byte{0x7f}},
		{127, []byte{0x7f}, []byte{0x80, 0x01}},
		{200, []byte{0xc8, 0x01}, []byte{0xc9, 0x01}},
		{16383, []byte{0xff, 0x7f}, []byte{0x80, 0x80, 0x01}},
	} {
		assert.Equal(t, want(c.stop, c.budget), checkSeq(c.idx), "stop global %d", c.idx)
	}
}

// TestNoMemory checks that modules without a memory, defined or imported,
// are refused as unsupported, as the check's memory.grow needs one: wazero
// accepts them, and the caller falls back to its own interruption. The same
// modules with a memory are instrumented.
func TestNoMemory(t *testing.T) {
	types := sect(1, vec(funcType(nil, nil)))
	funcs := sect(3, vec([]byte{0x00}))
	code := sect(10, vec(fn([]byte{0x00}, 0x03, 0x40, 0x0b, 0x0b))) // loop end
	mem := memSect()
	fImport := cat(name("env"), name("f"), []byte{0x00, 0x00})
	tImport := cat(name("env"), name("t"), []byte{0x01, 0x70, 0x00, 0x01})
	gImport := cat(name("env"), name("g"), []byte{0x03, 0x7f, 0x00})
	mImport := cat(name("env"), name("m"), []byte{0x02, 0x00, 0x01})
	table := sect(4, vec([]byte{0x70, 0x00, 0x01}))
	globals := sect(6, vec([]byte{0x7f, 0x00, 0x41, 0x07, 0x0b}))
	exports := sect(7, vec(cat(name("run"), []byte{0x00, 0x00})))
	cases := []struct {
		name          string
		without, with []byte
	}{
		{"empty module", module(), module(mem)},
		{"code only", module(types, funcs, code), module(types, funcs, mem, code)},
		{"empty memory section", module(types, funcs, sect(5, vec()), code), module(types, funcs, mem, code)},
		{"imports but no memory",
			module(types, sect(2, vec(fImport, tImport, gImport)), funcs, code),
			module(types, sect(2, vec(fImport, tImport, mImport, gImport)), funcs, code)},
		{"table, globals and exports",
			module(types, funcs, table, globals, exports, code),
			module(types, funcs, table, mem, globals, exports, code)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, compileErr(wazero.NewRuntimeConfigInterpreter(), c.without), "test module must be valid")
			orig := bytes.Clone(c.without)
			out, err := Instrument(c.without)
			require.ErrorIs(t, err, ErrUnsupported)
			require.NotErrorIs(t, err, ErrMalformed)
			require.Nil(t, out)
			require.Equal(t, orig, c.without, "Instrument modified its input")

			out = instrumentOK(t, c.with)
			requireStopExport(t, c.with, out)
			require.NoError(t, compileErr(wazero.NewRuntimeConfigInterpreter(), out))
		})
	}
}

// spinBody is the body of a function (param i32) that loops that many times
// (at least once).
var spinBody = fn([]byte{0x00},
	0x03, 0x40, // loop
	0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, // local.tee 0 (local.get 0 - 1)
	0x0d, 0x00, // br_if 0
	0x0b, 0x0b)

// TestImportedMemory checks that an imported memory is enough for the check:
// the module gets no memory of its own, and both engines run it (yields
// included) and stop it.
func TestImportedMemory(t *testing.T) {
	in := module(
		sect(1, vec(funcType([]byte{0x7f}, nil))),
		sect(2, vec(cat(name("env"), name("memory"), []byte{0x02, 0x00, 0x01}))),
		sect(3, vec([]byte{0x00})),
		sect(7, vec(cat(name("spin"), []byte{0x00, 0x00}))),
		sect(10, vec(spinBody)),
	)
	out := instrumentOK(t, in)
	requireStopExport(t, in, out)
	require.Empty(t, mustParse(t, out).Memories, "the imported memory is the one to use")
	require.True(t, bytes.Contains(out, checkSeq(0)))
	env := module(memSect(), sect(7, vec(cat(name("memory"), []byte{0x02, 0x00}))))
	for cname, cfg := range configs() {
		t.Run(cname, func(t *testing.T) {
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, cfg)
			defer r.Close(ctx)
			_, err := r.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env"))
			require.NoError(t, err)
			mod, err := r.Instantiate(ctx, out)
			require.NoError(t, err)
			stop := requireStopGlobal(t, mod)
			spin := mod.ExportedFunction("spin")
			_, err = spin.Call(ctx, 5000) // several yields
			require.NoError(t, err)
			require.Equal(t, uint32(65536), mod.Memory().Size(), "memory.grow 0 must not grow the memory")
			stop.Set(1)
			_, err = spin.Call(ctx, 1)
			require.ErrorContains(t, err, "unreachable")
		})
	}
}

// TestBudgetGlobal checks the private budget global: it follows the stop
// global, is not exported, starts at 1024, goes down by one at every check
// and is reset to 1024 when it reaches 0, after the yield. The module reads
// it with a global.get of the index it will have once instrumented (the
// input on its own is invalid; Instrument does not validate).
func TestBudgetGlobal(t *testing.T) {
	in := module(
		sect(1, vec(funcType(nil, []byte{0x7f}), funcType([]byte{0x7f}, nil))),
		sect(3, vec([]byte{0x00}, []byte{0x01})),
		memSect(),
		sect(7, vec(cat(name("budget"), []byte{0x00, 0x00}), cat(name("spin"), []byte{0x00, 0x01}))),
		sect(10, vec(
			fn([]byte{0x00}, 0x23, 0x01, 0x0b), // global.get 1: the budget global
			spinBody,
		)),
	)
	out := instrumentOK(t, in)
	requireStopExport(t, in, out)
	secs, err := splitSections(out)
	require.NoError(t, err)
	var globalSection []byte
	for _, s := range secs {
		if s.id == secGlobal {
			globalSection = out[s.content:s.end]
		}
	}
	require.Equal(t, vec(wantStopEntry, wantBudgetEntry), globalSection)
	for _, e := range mustParse(t, out).Exports {
		if e.Kind == wasmbin.KindGlobal {
			require.Equal(t, StopGlobal, e.Name, "only the stop global may be exported")
			require.Equal(t, uint32(0), e.Index)
		}
	}

	for cname, cfg := range configs() {
		t.Run(cname, func(t *testing.T) {
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, cfg)
			defer r.Close(ctx)
			mod, err := r.Instantiate(ctx, out)
			require.NoError(t, err)
			stop := requireStopGlobal(t, mod)
			budget, spin := mod.ExportedFunction("budget"), mod.ExportedFunction("spin")

			want := 1024 // the budget as the checks run it
			checks := func(n int) {
				for range n {
					if want--; want == 0 {
						want = 1024
					}
				}
			}
			requireBudget := func(msg string) {
				t.Helper()
				checks(1) // budget's own entry check
				res, err := budget.Call(ctx)
				require.NoError(t, err)
				require.Equal(t, uint64(want), res[0], msg)
			}
			requireBudget("initial budget, after one check")
			require.Equal(t, 1023, want)
			for _, n := range []int{
				1021,       // down to 1 (entry + 1021 iterations): the next check yields
				1, 1021, 1, // around the reset again
				5000, 3000, 1,
			} {
				_, err := spin.Call(ctx, uint64(n))
				require.NoError(t, err)
				checks(1 + n)
				requireBudget(fmt.Sprintf("after spin(%d)", n))
				require.Equal(t, uint32(65536), mod.Memory().Size(), "memory.grow 0 must not grow the memory")
			}

			// The stop check comes first: a stopped call leaves the budget
			// alone.
			stop.Set(1)
			_, err = budget.Call(ctx)
			require.ErrorContains(t, err, "unreachable")
			stop.Set(0)
			requireBudget("after a stopped call")
		})
	}
}

// TestTruncations instruments every prefix of the examples: none may panic,
// and the only prefixes that may succeed are the ones ending on a section
// boundary (they are complete modules), provided they include the memory the
// check needs: the others are refused as unsupported.
func TestTruncations(t *testing.T) {
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
			_, err := Instrument(bin[:n])
			if boundaries[n] {
				if hasMemoryTest(mustParse(t, bin[:n])) {
					require.NoError(t, err, "%s[:%d]", name, n)
				} else {
					require.ErrorIs(t, err, ErrUnsupported, "%s[:%d] has no memory", name, n)
					require.NotErrorIs(t, err, ErrMalformed, "%s[:%d]", name, n)
				}
			} else {
				require.ErrorIs(t, err, ErrMalformed, "%s[:%d]", name, n)
			}
		}
	}
}

func BenchmarkInstrument(b *testing.B) {
	bin := goGuests(b)["sha256"]
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Instrument(bin); err != nil {
			b.Fatal(err)
		}
	}
}

// TestImmediateShapes places one instruction of every immediate shape first
// in a body, before a loop, and checks that the loop check lands exactly
// after the loop header: any error in measuring the instruction would move
// it. Immediates use multi-byte LEB128 where the encoding allows. The bodies
// need not be valid; this is about lengths.
func TestImmediateShapes(t *testing.T) {
	memarg := []byte{0x82, 0x00, 0x90, 0x80, 0x01} // align 2 in 2 bytes, offset 16400
	u32 := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	v16 := bytes.Repeat([]byte{0xab}, 16)
	samples := map[string][]byte{
		"unreachable":                {0x00},
		"i32.add":                    {0x6a},
		"i64.extend32_s":             {0xc4},
		"block i32":                  {0x02, 0x7f},
		"block typeidx":              {0x02, 0x81, 0x01},
		"block (ref null 3)":         {0x02, 0x63, 0x03},
		"if (ref 200)":               {0x04, 0x64, 0xc8, 0x01},
		"br":                         cat([]byte{0x0c}, u32),
		"br_table":                   {0x0e, 0x03, 0x00, 0x81, 0x00, 0x02, 0x80, 0x01},
		"call_indirect":              cat([]byte{0x11}, u32, []byte{0x81, 0x00}),
		"return_call_indirect":       {0x13, 0x01, 0x00},
		"return_call":                {0x12, 0x05},
		"call_ref":                   {0x14, 0x85, 0x00},
		"throw":                      {0x08, 0x00},
		"throw_ref":                  {0x0a},
		"try_table":                  {0x1f, 0x7f, 0x04, 0x00, 0x01, 0x02, 0x01, 0x81, 0x00, 0x02, 0x03, 0x03, 0x02, 0x00},
		"select":                     {0x1b},
		"select i32":                 {0x1c, 0x01, 0x7f},
		"local.get":                  {0x20, 0x80, 0x01},
		"global.set":                 cat([]byte{0x24}, u32),
		"table.get":                  {0x25, 0x00},
		"i32.load":                   cat([]byte{0x28}, memarg),
		"i64.store32":                cat([]byte{0x3e}, memarg),
		"i32.load multi-mem":         {0x28, 0x42, 0x81, 0x00, 0x05},
		"memory.size":                {0x3f, 0x00},
		"memory.grow":                {0x40, 0x80, 0x00},
		"i32.const":                  {0x41, 0xff, 0xff, 0xff, 0xff, 0x07},
		"i64.const":                  {0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f},
		"f32.const":                  {0x43, 0x03, 0x03, 0x03, 0x03},
		"f64.const":                  {0x44, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03},
		"ref.null func":              {0xd0, 0x70},
		"ref.null exn":               {0xd0, 0x69},
		"ref.null typeidx":           {0xd0, 0x83, 0x01},
		"ref.is_null":                {0xd1},
		"ref.func":                   {0xd2, 0x80, 0x01},
		"ref.as_non_null":            {0xd4},
		"br_on_null":                 {0xd5, 0x01},
		"br_on_non_null":             {0xd6, 0x81, 0x00},
		"i32.trunc_sat_f32_s":        {0xfc, 0x00},
		"i64.trunc_sat_f64_u":        {0xfc, 0x87, 0x00},
		"memory.init":                {0xfc, 0x08, 0x81, 0x00, 0x00},
		"data.drop":                  {0xfc, 0x09, 0x01},
		"memory.copy":                {0xfc, 0x0a, 0x00, 0x00},
		"memory.fill":                {0xfc, 0x0b, 0x00},
		"table.init":                 {0xfc, 0x0c, 0x01, 0x80, 0x00},
		"elem.drop":                  {0xfc, 0x0d, 0x01},
		"table.copy":                 {0xfc, 0x0e, 0x00, 0x01},
		"table.grow":                 {0xfc, 0x0f, 0x00},
		"table.size":                 {0xfc, 0x10, 0x81, 0x00},
		"table.fill":                 {0xfc, 0x11, 0x00},
		"v128.load":                  cat([]byte{0xfd, 0x00}, memarg),
		"v128.store":                 cat([]byte{0xfd, 0x0b}, memarg),
		"v128.const":                 cat([]byte{0xfd, 0x0c}, v16),
		"i8x16.shuffle":              cat([]byte{0xfd, 0x0d}, v16),
		"i8x16.extract_lane_s":       {0xfd, 0x15, 0x0f},
		"f64x2.replace_lane":         {0xfd, 0x22, 0x01},
		"v128.load8_lane":            cat([]byte{0xfd, 0x54}, memarg, []byte{0x0f}),
		"v128.store64_lane":          cat([]byte{0xfd, 0x5b}, memarg, []byte{0x01}),
		"v128.load32_zero":           cat([]byte{0xfd, 0x5c}, memarg),
		"v128.load64_zero":           cat([]byte{0xfd, 0x5d}, memarg),
		"i8x16.swizzle":              {0xfd, 0x0e},
		"i16x8.abs":                  {0xfd, 0x80, 0x01},
		"f64x2.convert_low_u":        {0xfd, 0xff, 0x01},
		"memory.atomic.notify":       cat([]byte{0xfe, 0x00}, memarg),
		"atomic.fence":               {0xfe, 0x03, 0x00},
		"i64.atomic.rmw32.cmpxchg_u": cat([]byte{0xfe, 0x4e}, memarg),
	}
	types := sect(1, vec(funcType(nil, nil)))
	funcs := sect(3, vec([]byte{0x00}))
	check := checkSeq(0)
	for name, instr := range samples {
		t.Run(name, func(t *testing.T) {
			locals := []byte{0x01, 0x02, 0x7f} // (local i32 i32)
			loop := []byte{0x03, 0x40}
			rest := []byte{0x0b, 0x0b}
			in := module(types, funcs, memSect(), sect(10, vec(fn(locals, cat(instr, loop, rest)...))))
			out, err := Instrument(in)
			require.NoError(t, err)
			want := cat(locals, check, instr, loop, check, rest)
			require.True(t, bytes.HasSuffix(out, cat(uleb(uint64(len(want))), want)),
				"body not instrumented where expected:\n%x", out)
		})
	}
}

// A memoryless module that wazero accepts but wasmbin.Parse refuses (an
// export name over Parse's 64 KiB limit) must be refused as unsupported, so
// it runs under wazero's own mechanism, rather than turned into a module
// wazero rejects (memory.grow without a memory).
func TestInstrument_UnparseableMemoryless(t *testing.T) {
	name := strings.Repeat("x", 70000)
	var exp []byte
	exp = append(exp, 0x01)
	exp = appendULEB(exp, uint64(len(name)))
	exp = append(exp, name...)
	exp = append(exp, 0x00, 0x00)
	wasm := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
		0x03, 0x02, 0x01, 0x00}
	wasm = append(wasm, 0x07)
	wasm = appendULEB(wasm, uint64(len(exp)))
	wasm = append(wasm, exp...)
	wasm = append(wasm, 0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)
	_, err := wazero.NewRuntime(context.Background()).CompileModule(context.Background(), wasm)
	require.NoError(t, err, "wazero accepts the input")
	_, err = Instrument(wasm)
	assert.ErrorIs(t, err, ErrUnsupported)
}
