package instrument

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ferryrun/ferry/runtime/wasmbin"
)

// fuzzRuntime validates modules for the fuzzers. Validation is the same with
// both engines and the interpreter compiles much faster; every feature wazero
// can decode is on so that mutations reach every branch of the decoder.
var fuzzRuntime = sync.OnceValue(func() wazero.Runtime {
	return wazero.NewRuntimeWithConfig(context.Background(),
		wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(allFeatures))
})

// wazeroAccepts reports whether wazero compiles bin. A panic inside wazero
// is reported apart: on the input it says nothing about Instrument, on the
// output it is a failure.
func wazeroAccepts(bin []byte) (panicked string, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprintf("wazero panicked: %v", r)
		}
	}()
	ctx := context.Background()
	cm, err := fuzzRuntime().CompileModule(ctx, bin)
	if err == nil {
		cm.Close(ctx)
	}
	return "", err
}

// checkInstrument is the property both fuzzers check, with and without
// Options.Tick: InstrumentWith never panics and never modifies its input; it
// fails only with one of its sentinels; a module wazero accepts is never
// called malformed; and instrumenting a module wazero accepts gives a module
// wazero accepts.
func checkInstrument(t *testing.T, in []byte) {
	orig := bytes.Clone(in)
	modes := []Options{{}, {Tick: true}}
	outs := make([][]byte, len(modes))
	errs := make([]error, len(modes))
	for i, opts := range modes {
		outs[i], errs[i] = InstrumentWith(in, opts)
		if !bytes.Equal(orig, in) {
			t.Fatalf("InstrumentWith(%+v) modified its input", opts)
		}
		err := errs[i]
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) &&
			!errors.Is(err, ErrStopExported) && !(opts.Tick && errors.Is(err, ErrTickExported)) {
			t.Fatalf("%+v: error wraps no sentinel: %v", opts, err)
		}
	}
	if !plausible(in) {
		return
	}
	inPanic, inErr := wazeroAccepts(in)
	if inPanic != "" || inErr != nil {
		return // nothing to preserve
	}
	for i, opts := range modes {
		if err := errs[i]; err != nil {
			if errors.Is(err, ErrMalformed) {
				t.Fatalf("%+v: wazero accepts the input, InstrumentWith calls it malformed: %v", opts, err)
			}
			continue // refusing is allowed: the caller falls back
		}
		outPanic, outErr := wazeroAccepts(outs[i])
		if outPanic != "" {
			t.Fatalf("%+v: instrumented module: %v", opts, outPanic)
		}
		if outErr != nil {
			t.Fatalf("%+v: wazero accepts the input but not the instrumented module: %v", opts, outErr)
		}
	}
}

// plausible screens inputs before they reach wazero. Its decoder allocates
// by declared counts and sizes before it checks them against the input, so
// a mutated byte can make it reserve gigabytes (testdata/fuzz/FuzzInstrument/
// c88067be5207e978: a type with 2^32-1 parameters, 16 GiB) and take the
// fuzzing worker down. Inputs where a section, a code body or a number in a
// section claims more than its section could hold are not worth compiling;
// the cost is that mutations of large constants outside function bodies are
// not checked against wazero.
func plausible(in []byte) bool {
	for pos := 8; pos < len(in); {
		size, content, ok := readU32(in, pos+1, len(in))
		if !ok || int(size) > len(in)-content {
			return false
		}
		end := content + int(size)
		if in[pos] == secCode {
			if !plausibleCode(in, content, end) {
				return false
			}
		} else {
			// Memory limits count pages, up to 65536, whatever the size.
			limit := max(int(size), 1<<16)
			for i := content; i < end; i++ {
				if v, _, ok := readU32(in, i, end); ok && int64(v) > int64(limit) {
					return false
				}
			}
		}
		pos = end
	}
	return true
}

// plausibleCode bounds the code section's function count, body sizes and
// local counts (wazero allocates the locals of a body before reading it).
func plausibleCode(in []byte, pos, end int) bool {
	n, pos, ok := readU32(in, pos, end)
	if !ok {
		return true // wazero stops here too
	}
	if int(n) > end-pos {
		return false
	}
	for range n {
		size, body, ok := readU32(in, pos, end)
		if !ok {
			return true // wazero stops here too
		}
		if int(size) > end-body {
			return false
		}
		locals, p, ok := readU32(in, body, body+int(size))
		if ok && int(locals) > int(size) {
			return false
		}
		var sum uint64
		for range locals {
			var c uint32
			if c, p, ok = readU32(in, p, body+int(size)); !ok || p >= body+int(size) {
				break
			}
			sum += uint64(c)
			if in[p] == 0x63 || in[p] == 0x64 {
				if _, p, ok = readS33(in, p+1, body+int(size)); !ok {
					break
				}
			} else {
				p++
			}
		}
		if sum > 1<<16 {
			return false
		}
		pos = body + int(size)
	}
	return true
}

// fuzzSeeds are the small modules at hand: the examples (not the Go guests,
// whose 3 MB would make every execution slow).
func fuzzSeeds(f *testing.F) [][]byte {
	mods := exampleModules(f)
	seeds := [][]byte{testdataModule(f, "features.wasm"), extendedModule()}
	for _, name := range sortedKeys(mods) {
		seeds = append(seeds, mods[name])
	}
	return seeds
}

func FuzzInstrument(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(checkInstrument)
}

// FuzzInstrumentBody mutates one function body inside an otherwise valid
// module, so that most inputs get past the section structure and exercise
// the instruction decoder. The skeletons are features.wasm and the extended
// module, which between them declare everything the instructions can refer
// to (types, tables, memories, data and element segments, tags).
func FuzzInstrumentBody(f *testing.F) {
	skeletons := [][]byte{testdataModule(f, "features.wasm"), extendedModule()}
	plans := make([]codePlan, len(skeletons))
	for i, skel := range skeletons {
		secs, err := splitSections(skel)
		if err != nil {
			f.Fatal(err)
		}
		for _, s := range secs {
			if s.id == secCode {
				if err := plans[i].scan(skel, &s, len(checkSeq(0))); err != nil {
					f.Fatal(err)
				}
			}
		}
		for j, fp := range plans[i].funcs {
			f.Add(uint8(i), uint16(j), skel[fp.body:fp.end])
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, fnIdx uint16, body []byte) {
		i := int(which) % len(skeletons)
		skel, plan := skeletons[i], &plans[i]
		target := int(fnIdx) % len(plan.funcs)
		var content []byte
		content = appendULEB(content, uint64(plan.count))
		for j, fp := range plan.funcs {
			b := skel[fp.body:fp.end]
			if j == target {
				b = body
			}
			content = appendULEB(content, uint64(len(b)))
			content = append(content, b...)
		}
		in := cat(skel[:plan.start], sect(secCode, content), skel[plan.end:])
		checkInstrument(t, in)
	})
}

// FuzzCapMemory checks CapMemory: it never panics and never modifies its
// input; it fails only with one of its sentinels, and never calls a module
// wazero accepts malformed; its output is accepted by wazero when the input
// is. When both can be instantiated cheaply and safely (no imports, no start
// function, a small initial memory), wazero must see the new maximum, and
// growing the memory past it must fail.
func FuzzCapMemory(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		for _, maxPages := range []uint32{0, 1, 16, 1 << 16, 1<<32 - 1} {
			f.Add(s, maxPages)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, maxPages uint32) {
		orig := bytes.Clone(in)
		out, err := CapMemory(in, maxPages)
		if !bytes.Equal(orig, in) {
			t.Fatal("CapMemory modified its input")
		}
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMemoryTooSmall) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if err == nil && len(out) > 0 && &out[0] == &in[0] {
			t.Fatal("CapMemory returned its input, not a copy")
		}
		if !plausible(in) {
			return
		}
		if inPanic, inErr := wazeroAccepts(in); inPanic != "" || inErr != nil {
			return
		}
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				t.Fatalf("wazero accepts the input, CapMemory calls it malformed: %v", err)
			}
			return
		}
		if outPanic, outErr := wazeroAccepts(out); outPanic != "" || outErr != nil {
			t.Fatalf("wazero accepts the input but not the capped module: %v%v", outPanic, outErr)
		}
		checkCappedMemory(t, in, out, min(maxPages, 1<<16))
	})
}

// checkCappedMemory instantiates in and out, when that is cheap and runs no
// guest code, and checks the maximum wazero sees in out: the cap, or the
// input's maximum if lower.
func checkCappedMemory(t *testing.T, in, out []byte, maxPages uint32) {
	secs, err := splitSections(out)
	if err != nil {
		t.Fatalf("the capped module does not split into sections: %v", err)
	}
	for _, s := range secs {
		if s.id == secImport || s.id == 8 { // imports, start function
			return
		}
	}
	m, err := wasmbin.Parse(out)
	if err != nil || len(m.Memories) == 0 || m.Memories[0].Min > 16 {
		return
	}
	ctx := context.Background()
	instantiate := func(bin []byte) (api.Module, error) {
		return fuzzRuntime().InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	}
	modIn, err := instantiate(in)
	if err != nil {
		return
	}
	defer modIn.Close(ctx)
	want := maxPages
	if max, encoded := modIn.Memory().Definition().Max(); encoded {
		want = min(want, max)
	}
	modOut, err := instantiate(out)
	if err != nil {
		t.Fatalf("the input instantiates, the capped module does not: %v", err)
	}
	defer modOut.Close(ctx)
	mem := modOut.Memory()
	if max, encoded := mem.Definition().Max(); !encoded || max != want {
		t.Fatalf("wazero sees the maximum %d (encoded: %v), want %d", max, encoded, want)
	}
	size, _ := mem.Grow(0)
	if _, ok := mem.Grow(want - size + 1); ok {
		t.Fatalf("memory of %d pages grew past its maximum of %d", size, want)
	}
}
