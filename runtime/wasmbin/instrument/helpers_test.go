package instrument

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ferryrun/ferry/runtime/wasmbin"
)

const (
	// examplesDir holds the committed example modules.
	examplesDir = "../../../wasm-examples/wat"
	// goExamplesDir is the module of the Go example guests.
	goExamplesDir = "../../../wasm-examples/go"
)

// goGuestNames are the Go example guests built for the tests.
var goGuestNames = []string{"sha256", "incredible-squaring", "jsontransform", "counter", "fetcher"}

// allFeatures enables everything wazero v1.12 can decode, so that the
// extended module and the fuzzers reach every branch of the decoder.
const allFeatures = api.CoreFeaturesV2 |
	experimental.CoreFeaturesThreads |
	experimental.CoreFeaturesTailCall |
	experimental.CoreFeaturesExtendedConst |
	experimental.CoreFeaturesExceptionHandling |
	experimental.CoreFeaturesTypedFunctionReferences

func TestMain(m *testing.M) {
	code := m.Run()
	if guestDir != "" {
		os.RemoveAll(guestDir)
	}
	os.Exit(code)
}

// --- module assembly ---------------------------------------------------------

func uleb(v uint64) []byte { return appendULEB(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func name(s string) []byte { return cat(uleb(uint64(len(s))), []byte(s)) }

// vec encodes a vector: its length, then the items.
func vec(items ...[]byte) []byte { return cat(uleb(uint64(len(items))), cat(items...)) }

// sect encodes a section with its size.
func sect(id byte, body ...[]byte) []byte {
	b := cat(body...)
	return cat([]byte{id}, uleb(uint64(len(b))), b)
}

func module(sections ...[]byte) []byte {
	return cat([]byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}, cat(sections...))
}

// fn encodes a code section entry from its locals vector and instructions.
func fn(locals []byte, instrs ...byte) []byte {
	b := cat(locals, instrs)
	return cat(uleb(uint64(len(b))), b)
}

// funcType encodes a function type.
func funcType(params, results []byte) []byte {
	return cat([]byte{0x60}, uleb(uint64(len(params))), params, uleb(uint64(len(results))), results)
}

// memSect is a memory section declaring one memory of one page. The check
// grows memory 0 by 0 pages, so Instrument refuses modules without a memory:
// tests about something else give their modules this one.
func memSect() []byte { return sect(5, vec([]byte{0x00, 0x01})) }

// checkSeq is the check Instrument inserts for the stop global idx (and the
// budget global idx+1).
func checkSeq(idx uint32) []byte { return appendCheck(nil, idx) }

// The two globals Instrument appends, spelled out independently of
// stopGlobalEntry: the stop global, (mut i32) (i32.const 0), then the private
// budget global, (mut i32) (i32.const 1024).
var (
	wantStopEntry   = []byte{0x7f, 0x01, 0x41, 0x00, 0x0b}
	wantBudgetEntry = []byte{0x7f, 0x01, 0x41, 0x80, 0x08, 0x0b} // 1024 as s32 LEB128
)

// hasMemoryTest reports whether a parsed module defines or imports a memory.
// It is written apart from Instrument's own test so that a test can tell a
// refusal for lack of memory from the refusal it is about.
func hasMemoryTest(m *wasmbin.Module) bool {
	for _, im := range m.Imports {
		if im.Kind == wasmbin.KindMemory {
			return true
		}
	}
	return len(m.Memories) > 0
}

// --- example modules ---------------------------------------------------------

// exampleModules returns the committed example modules by file name.
func exampleModules(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(examplesDir, "*.wasm"))
	require.NoError(tb, err)
	require.NotEmpty(tb, paths, "no example modules in %s", examplesDir)
	mods := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(tb, err)
		mods[filepath.Base(p)] = b
	}
	return mods
}

func testdataModule(tb testing.TB, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(tb, err)
	return b
}

var (
	guestOnce sync.Once
	guestDir  string
	guestMods map[string][]byte
	guestErr  error
)

// goGuests builds the Go example guests (once per test binary) and returns
// them by name. It skips the test when no go command is available.
func goGuests(tb testing.TB) map[string][]byte {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("go command not found; cannot build the Go guests")
	}
	guestOnce.Do(func() {
		if guestDir, guestErr = os.MkdirTemp("", "ferry-instrument-guests-"); guestErr != nil {
			return
		}
		var wg sync.WaitGroup
		errs := make([]error, len(goGuestNames))
		for i, g := range goGuestNames {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(goBin, "build", "-buildmode=c-shared",
					"-o", filepath.Join(guestDir, g+".wasm"), "./"+g)
				cmd.Dir = goExamplesDir
				cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("go build %s: %v\n%s", g, err, out)
				}
			}()
		}
		wg.Wait()
		guestMods = make(map[string][]byte)
		for i, g := range goGuestNames {
			if errs[i] != nil {
				guestErr = errs[i]
				return
			}
			if guestMods[g], guestErr = os.ReadFile(filepath.Join(guestDir, g+".wasm")); guestErr != nil {
				return
			}
		}
	})
	require.NoError(tb, guestErr)
	return guestMods
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// --- wazero helpers ----------------------------------------------------------

// compileErr compiles bin with a fresh runtime of the given configuration.
func compileErr(cfg wazero.RuntimeConfig, bin []byte) error {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer r.Close(ctx)
	_, err := r.CompileModule(ctx, bin)
	return err
}

// hostLog collects what guests report through the ferry host functions.
type hostLog struct {
	mu   sync.Mutex
	msgs []string
}

func (h *hostLog) add(m api.Module, ptr, n uint32) {
	b, _ := m.Memory().Read(ptr, n)
	h.mu.Lock()
	h.msgs = append(h.msgs, string(b))
	h.mu.Unlock()
}

func (h *hostLog) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.msgs, "\n")
}

// newHostRuntime returns a runtime with WASI and dummy ferry and env host
// modules instantiated, enough to instantiate every example guest.
func newHostRuntime(t *testing.T, cfg wazero.RuntimeConfig) (wazero.Runtime, *hostLog) {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	log := &hostLog{}
	_, err := r.NewHostModuleBuilder("ferry").
		NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, _ int32, ptr, n uint32) {
		log.add(m, ptr, n)
	}).Export("log").
		NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, ptr, n uint32) {
		log.add(m, ptr, n)
	}).Export("error").
		NewFunctionBuilder().WithFunc(func(uint32, uint32) int32 { return -1 }).Export("take").
		NewFunctionBuilder().WithFunc(func(uint32, uint32) int32 { return -1 }).Export("state_get").
		NewFunctionBuilder().WithFunc(func(uint32, uint32, uint32, uint32) int32 { return -1 }).Export("state_set").
		NewFunctionBuilder().WithFunc(func(uint32, uint32) int32 { return -1 }).Export("state_delete").
		NewFunctionBuilder().WithFunc(func(uint32, uint32) int32 { return -1 }).Export("http_request").
		Instantiate(ctx)
	require.NoError(t, err)
	_, err = r.NewHostModuleBuilder("env").
		NewFunctionBuilder().WithFunc(func() int32 { return 0 }).Export("host_secret").
		Instantiate(ctx)
	require.NoError(t, err)
	return r, log
}

// reactorRun runs one reactor invocation: ferry_alloc, copy the input in,
// ferry_run, copy the output out.
func reactorRun(t *testing.T, mod api.Module, in []byte) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	res, err := mod.ExportedFunction("ferry_alloc").Call(ctx, uint64(len(in)))
	if err != nil {
		return nil, err
	}
	ptr := uint32(res[0])
	require.NotZero(t, ptr, "ferry_alloc failed")
	require.True(t, mod.Memory().Write(ptr, in))
	res, err = mod.ExportedFunction("ferry_run").Call(ctx, uint64(ptr), uint64(len(in)))
	if err != nil {
		return nil, err
	}
	outPtr, outLen := uint32(res[0]>>32), uint32(res[0])
	out, ok := mod.Memory().Read(outPtr, outLen)
	require.True(t, ok, "output out of bounds")
	return bytes.Clone(out), nil
}
