package native

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/blueprint"
	"github.com/ferryrun/ferry/compiler/toolchain"
	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// wasmSources builds each job's wasm module, by job name. Every native job
// must have one: a native job with nothing to compare against is not a
// reference.
var wasmSources = map[string]func(t *testing.T) []byte{
	"echo":                func(t *testing.T) []byte { return watJob(t, "echo") },
	"incredible-squaring": func(t *testing.T) []byte { return goJob(t, "incredible-squaring", examples.Reactor) },
	"sha256":              func(t *testing.T) []byte { return goJob(t, "sha256", examples.Reactor) },
	"jsontransform":       func(t *testing.T) []byte { return goJob(t, "jsontransform", examples.Reactor) },
	"nbody":               func(t *testing.T) []byte { return goJob(t, "nbody", examples.Reactor) },
	"square":              func(t *testing.T) []byte { return blueprintJob(t, "square") },
	"checksum":            func(t *testing.T) []byte { return blueprintJob(t, "checksum") },
	"wordcount":           func(t *testing.T) []byte { return blueprintJob(t, "wordcount") },
	"reverse":             func(t *testing.T) []byte { return blueprintJob(t, "reverse") },
}

// parityCase is one input beyond the job's default; wantErr says whether
// the job rejects it, so that a case cannot silently stop testing the path
// it was written for.
type parityCase struct {
	name    string
	input   []byte
	wantErr bool
}

// extraInputs are the inputs each job is checked on besides its default.
func extraInputs() map[string][]parityCase {
	u64 := func(x uint64) []byte { return binary.BigEndian.AppendUint64(nil, x) }
	abiWord := func(x uint64) []byte { return append(make([]byte, 24), u64(x)...) }
	bigWord := abiWord(7)
	bigWord[3] = 1
	text := []parityCase{
		{name: "empty", input: nil},
		{name: "short", input: []byte("ferry")},
		{name: "whitespace", input: []byte("  one\ttwo  three\v\f\r\nfour\n\n")},
		{name: "utf8 and high bytes", input: []byte("héllo wörld\x00\xff\x80 end")},
		{name: "1MiB", input: pseudoRandomBytes(1 << 20)},
	}
	return map[string][]parityCase{
		"echo": {
			{name: "empty", input: nil},
			{name: "one byte", input: []byte("x")},
			{name: "100KiB", input: pseudoRandomBytes(100 << 10)},
		},
		"incredible-squaring": {
			{name: "zero", input: []byte("0")},
			{name: "max u64", input: []byte("18446744073709551615")},
			{name: "padded", input: []byte(" 42\n")},
			{name: "8 bytes", input: u64(1<<40 + 3)},
			{name: "ABI word", input: abiWord(1<<63 + 1)},
			{name: "ABI word over u64", input: bigWord, wantErr: true},
			{name: "over u64", input: []byte("18446744073709551616"), wantErr: true},
			{name: "empty", input: nil, wantErr: true},
			{name: "not a number", input: []byte("abc"), wantErr: true},
		},
		"sha256": {
			{name: "empty", input: nil},
			{name: "abc", input: []byte("abc")},
			{name: "1MiB", input: pseudoRandomBytes(1 << 20)},
		},
		"jsontransform": {
			{name: "doc example", input: []byte(`{"items":[{"name":"b","price":2.5,"qty":2},{"name":"a","price":1,"qty":1}]}`)},
			{name: "inexact total", input: []byte(`{"items":[{"name":"x","price":0.1,"qty":3},{"name":"y","price":0.7,"qty":1}]}`)},
			{name: "large order", input: sampleOrder(500)},
			{name: "no items", input: []byte(`{"items":[]}`), wantErr: true},
			{name: "negative quantity", input: []byte(`{"items":[{"name":"z","price":1,"qty":-1}]}`), wantErr: true},
			{name: "wrong type", input: []byte(`{"items":[{"name":"z","price":"1"}]}`), wantErr: true},
			{name: "not JSON", input: []byte("not json"), wantErr: true},
			{name: "empty", input: nil, wantErr: true},
		},
		"nbody": {
			{name: "empty", input: nil},
			{name: "zero steps", input: []byte("0")},
			{name: "padded", input: []byte(" 2500\n")},
			{name: "1M steps", input: []byte("1000000")},
			{name: "negative", input: []byte("-1"), wantErr: true},
			{name: "not a number", input: []byte("many"), wantErr: true},
			{name: "over the limit", input: []byte("10000001"), wantErr: true},
		},
		"square": {
			{name: "max u64", input: []byte("18446744073709551615")},
			{name: "padded", input: []byte("\t7 \n")},
			{name: "over u64", input: []byte("18446744073709551616"), wantErr: true},
			{name: "8 bytes", input: u64(3), wantErr: true},
			{name: "empty", input: nil, wantErr: true},
		},
		"checksum":  text,
		"wordcount": text,
		"reverse":   text,
	}
}

// TestAll_MatchesWasm runs every job natively and as its wasm module on the
// default input and the extra ones, and wants the same output, or the same
// error text as the guest reported.
func TestAll_MatchesWasm(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{CacheDir: compileCacheDir()})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rt.Close(ctx)) })
	extra := extraInputs()

	for _, job := range All() {
		t.Run(job.Name, func(t *testing.T) {
			build, ok := wasmSources[job.Name]
			require.True(t, ok, "no wasm source for native job %q", job.Name)
			require.NotEmpty(t, extra[job.Name], "no extra inputs for job %q", job.Name)
			t.Parallel()
			m := loadJob(t, rt, build(t))
			cases := append([]parityCase{{name: "default", input: job.Input}}, extra[job.Name]...)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					want, nativeErr := job.Run(bytes.Clone(tc.input))
					require.Equal(t, tc.wantErr, nativeErr != nil, "native error: %v", nativeErr)
					res, err := m.Invoke(ctx, tc.input)
					if tc.wantErr {
						var je *wasmrt.JobError
						require.ErrorAs(t, err, &je)
						assert.Equal(t, wasmrt.KindGuestError, je.Kind)
						assert.Equal(t, "guest error: "+nativeErr.Error(), je.Message)
						return
					}
					require.NoError(t, err)
					assertSameBytes(t, want, res.Output)
				})
			}
		})
	}
}

// The Go examples also build as WASI commands; nbody must behave the same
// in that shape.
func TestNbody_CommandShape(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{CacheDir: compileCacheDir()})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rt.Close(ctx)) })
	wasm := goJob(t, "nbody", examples.Command)
	info, err := abi.Describe(wasm)
	require.NoError(t, err)
	require.Equal(t, abi.Command, info.Shape)
	m := loadJob(t, rt, wasm)

	for _, in := range []string{"", "3000"} {
		want, err := nbody([]byte(in))
		require.NoError(t, err)
		res, err := m.Invoke(ctx, []byte(in))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(res.Output), "input %q", in)
	}
	_, err = m.Invoke(ctx, []byte("-5"))
	assert.ErrorIs(t, err, wasmrt.ErrExit)
	assert.ErrorContains(t, err, `guest error: steps "-5" is not a non-negative integer`)
}

// TestAll_KnownAnswers pins outputs known independently of this code (test
// vectors, the Benchmarks Game's published energies, wc), so the native
// jobs are checked even where no wasm toolchain is installed.
func TestAll_KnownAnswers(t *testing.T) {
	tests := []struct {
		job, input, want string
	}{
		{"echo", "ferry loopback!!", "ferry loopback!!"},
		{"sha256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"sha256", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"incredible-squaring", "12345", "152399025"},
		{"incredible-squaring", "18446744073709551615", "340282366920938463426481119284349108225"},
		{"square", "12345", "152399025"},
		{"jsontransform", `{"items":[{"name":"b","price":2.5,"qty":2},{"name":"a","price":1,"qty":1}]}`, `{"count":2,"total":6,"names":["a","b"]}`},
		{"nbody", "1000", "-0.169075164\n-0.169087605\n"},
		{"nbody", "", "-0.169075164\n-0.169087605\n"},
		{"checksum", "hello", "a430d84680aabd0b"},
		{"checksum", "", "cbf29ce484222325"},
		{"wordcount", "the quick brown fox\njumps over\nthe lazy dog\n", "3 9 44\n"},
		{"wordcount", "  one\ttwo  three", "0 3 16\n"},
		{"wordcount", "", "0 0 0\n"},
		{"reverse", "ferry", "yrref"},
		{"reverse", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.job+"/"+tc.input, func(t *testing.T) {
			j, ok := Lookup(tc.job)
			require.True(t, ok)
			out, err := j.Run([]byte(tc.input))
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(out))
		})
	}
}

func TestAll_DefaultInputs(t *testing.T) {
	sizes := map[string]int{}
	for _, j := range All() {
		sizes[j.Name] = len(j.Input)
		out, err := j.Run(j.Input)
		require.NoError(t, err, j.Name)
		assert.NotEmpty(t, out, j.Name)
	}
	assert.Equal(t, map[string]int{
		"echo": 16, "incredible-squaring": 5, "sha256": 64 << 10, "jsontransform": sizes["jsontransform"],
		"nbody": 6, "square": 5, "checksum": 4400, "wordcount": 4400, "reverse": 4400,
	}, sizes)
	assert.Greater(t, sizes["jsontransform"], 4<<10, "jsontransform's input should be a few KiB")
	assert.Less(t, sizes["jsontransform"], 16<<10, "jsontransform's input should be a few KiB")

	// The order visits every item once, under its own name.
	out, err := jsonTransform(sampleOrder(64))
	require.NoError(t, err)
	var sum summary
	require.NoError(t, json.Unmarshal(out, &sum))
	assert.Equal(t, 64, sum.Count)
	assert.Len(t, sum.Names, 64)
	assert.True(t, slices.IsSorted(sum.Names))
	assert.Len(t, slices.Compact(slices.Clone(sum.Names)), 64, "names are unique")
	assert.Positive(t, sum.Total)
}

func TestLookup(t *testing.T) {
	for _, j := range All() {
		got, ok := Lookup(j.Name)
		require.True(t, ok, j.Name)
		assert.Equal(t, j.Name, got.Name)
		assert.Equal(t, j.Input, got.Input)
	}
	_, ok := Lookup("counter")
	assert.False(t, ok, "stateful jobs have no native reference")

	// Inputs are fresh copies: a caller that scribbles on one does not
	// change the next caller's.
	a, _ := Lookup("sha256")
	a.Input[0] ^= 0xff
	b, _ := Lookup("sha256")
	assert.NotEqual(t, a.Input[0], b.Input[0])
}

// BenchmarkNative measures each job's default input as a plain Go call: the
// denominator of the wasm/native ratios.
func BenchmarkNative(b *testing.B) {
	for _, j := range All() {
		b.Run(j.Name, func(b *testing.B) {
			if _, err := j.Run(j.Input); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := j.Run(j.Input); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func assertSameBytes(t *testing.T, native, wasm []byte) {
	t.Helper()
	if bytes.Equal(native, wasm) {
		return
	}
	i := 0
	for i < len(native) && i < len(wasm) && native[i] == wasm[i] {
		i++
	}
	t.Errorf("outputs differ at byte %d (native %d bytes, wasm %d bytes)\nnative: %.80q\nwasm:   %.80q",
		i, len(native), len(wasm), native[i:], wasm[i:])
}

// loadJob loads wasm with one reused instance when the module allows it (a
// pure reactor), so that a sequence of inputs also exercises the guest's
// buffer reuse, as the warm benchmarks do; a fresh instance per call
// otherwise.
func loadJob(t *testing.T, rt *wasmrt.Runtime, wasm []byte) *wasmrt.Module {
	t.Helper()
	info, err := abi.Describe(wasm)
	require.NoError(t, err)
	cfg := wasmrt.ModuleConfig{PoolSize: -1, Reuse: info.Shape == abi.Reactor && info.Pure()}
	m, err := rt.Load(context.Background(), wasm, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Close(context.Background())) })
	return m
}

func watJob(t *testing.T, name string) []byte {
	t.Helper()
	b, err := examples.WAT(name)
	require.NoError(t, err)
	return b
}

func goJob(t *testing.T, name string, shape examples.Shape) []byte {
	t.Helper()
	b, err := examples.BuildGo(context.Background(), name, shape)
	require.NoError(t, err)
	return b
}

// blueprintJob builds one job of the example blueprint with the driver
// `ferry build` would use, in the shape it would ask for. Only that job is
// built: the whole blueprint (compiler/build) would also profile every job.
// A missing toolchain skips the test, naming the package to install, and so
// does -short: nothing caches these builds, and the Rust one takes seconds.
func blueprintJob(t *testing.T, name string) []byte {
	t.Helper()
	if testing.Short() {
		t.Skipf("blueprint job %s: not built under -short", name)
	}
	bp, err := blueprint.Load(filepath.Join(examples.Dir(), "blueprint", "blueprint.toml"))
	require.NoError(t, err)
	j, ok := bp.Jobs[name]
	require.True(t, ok, "blueprint has no job %q", name)
	d, ok := toolchain.Drivers()[toolchain.Language(j.Language)]
	require.True(t, ok, "no driver for %s", j.Language)
	wasm, err := d.Build(context.Background(), toolchain.Request{
		Dir: bp.Dir, Source: j.Source, Shape: toolchain.Shape(j.ResolvedShape()), WorkDir: t.TempDir(),
	})
	if errors.Is(err, toolchain.ErrMissing) {
		t.Skipf("blueprint job %s: %v", name, err)
	}
	require.NoError(t, err)
	return wasm
}

// compileCacheDir is the compiled-code cache the runtime tests share, across
// runs: compiling the Go examples takes seconds under the race detector.
func compileCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "ferry", "test-compile-cache")
}
