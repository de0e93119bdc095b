// Package instrument rewrites a WebAssembly module so that the host can stop
// a running guest cheaply, by setting a global.
//
// Ferry must interrupt a guest at its timeout. wazero's own mechanism
// (WithCloseOnContextDone) makes the compiler insert an indirect call at every
// loop header, which makes tight compute loops several times slower. This
// package instead adds, before compilation, one exported mutable i32 global
// (StopGlobal) and the sequence
//
//	global.get $stop
//	if
//	  unreachable
//	end
//
// at the entry of every function and at the head of every loop body. The
// check is a load and a predictable branch; setting the global to a non-zero
// value from the host (api.MutableGlobal.Set) makes the guest trap with
// "unreachable" at its next call or loop iteration. Together these bound the
// time to stop: straight-line code without calls or loops is finite, and a
// host call in progress is the host's to interrupt. Recursion is covered by
// the function-entry check.
//
// Only the global, export and code sections are re-encoded; every other byte,
// custom sections included, is copied as is. Global, function and type
// indices do not move (the global is appended after all existing ones), so
// the name section and any index-based metadata stay correct. Code offsets do
// move, so DWARF line information (if present) no longer matches the code.
//
// The input is untrusted. Every length is bounds-checked and the instruction
// decoder follows wazero v1.12's decoder, including its quirks, so that the
// check is inserted exactly at the instruction boundaries wazero will see.
// Anything the decoder does not know (an opcode, a value type, an encoding
// where the spec and wazero could disagree) yields ErrUnsupported rather than
// a guess: the caller then falls back to wazero's own interruption. Input that
// is not a well-formed module yields ErrMalformed. Instrument never turns a
// module that wazero accepts into one it rejects (this is fuzzed), but it
// does not validate: an invalid input may give an (invalid) output.
//
// # Garbage collection and preemption
//
// Go cannot preempt a goroutine while it runs code compiled by wazero. A
// check that never leaves compiled code would let a spinning guest block
// every stop-the-world (a GC would wait forever, and with it the goroutine
// that sets the stop global). So the check also counts down a private budget
// global, and every 1024 checks runs `memory.grow 0`, which wazero's compiler
// implements by returning to Go: a preemption point, at a cost of one Go
// round trip per 1024 loop iterations or calls instead of one per iteration
// (wazero's own WithCloseOnContextDone). Because of this the module must
// have a memory; modules without one are refused with ErrUnsupported and run
// under wazero's own mechanism.
//
// With the interpreter the host's write of the global races (in the Go
// memory model sense) with the guest's reads; Ferry uses wazero's own
// mechanism there, which is cheap in the interpreter.
package instrument

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/ferryrun/ferry/runtime/wasmbin"
)

// StopGlobal is the export name of the global added by Instrument. Setting it
// to a non-zero value makes the guest trap at its next function entry or loop
// iteration.
const StopGlobal = "__ferry_stop"

// ErrMalformed is wrapped by errors about input that is not a well-formed
// module: truncated sections, lengths out of bounds, bad section order. It is
// the same value as wasmbin.ErrMalformed.
var ErrMalformed = wasmbin.ErrMalformed

// ErrUnsupported is wrapped by errors about well-formed input that uses
// something this package cannot instrument safely (an unknown opcode or type,
// a legacy exception-handling instruction, a module too large to re-encode).
// The module may still be valid: fall back to another interruption mechanism.
var ErrUnsupported = errors.New("cannot instrument WebAssembly module")

// ErrStopExported is returned when the module already exports StopGlobal. A
// guest could use such an export to shadow or observe the stop flag, so it is
// refused rather than renamed.
var ErrStopExported = errors.New("module already exports " + StopGlobal)

// Section ids of the core specification (plus the exception-handling tag
// section).
const (
	secCustom    = 0
	secImport    = 2
	secGlobal    = 6
	secExport    = 7
	secCode      = 10
	secDataCount = 12
	secTag       = 13
)

// sectionRank orders the known sections as the spec (and wazero) require.
// The ids are not in order: tag (13) goes between memory and global, data
// count (12) between element and code.
var sectionRank = [...]int8{
	1: 1, 2: 2, 3: 3, 4: 4, 5: 5, secTag: 6, secGlobal: 7, secExport: 8,
	8: 9, 9: 10, secDataCount: 11, secCode: 12, 11: 13,
}

// stopGlobalEntry is the appended global: type i32, mutable, initialised by
// the constant expression (i32.const 0).
var stopGlobalEntry = []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41, 0x80, 0x08, 0x0b}

// section is one section of the input: the id byte is at b[start], the
// content is b[content:end].
type section struct {
	id                  byte
	start, content, end int
}

// Instrument returns a copy of a wasm binary with an interruption check, and
// exports the global that triggers it under the name StopGlobal. The input is
// not modified, and Instrument is safe for concurrent use.
//
// Errors wrap ErrMalformed, ErrUnsupported or ErrStopExported.
func Instrument(wasm []byte) ([]byte, error) {
	out, err := instrument(wasm)
	if err != nil {
		return nil, err
	}
	// The yield in the check needs memory 0 (see the package doc). This runs
	// after instrumenting, so malformed input is reported as malformed; a
	// module Parse cannot read may still be one wazero accepts (Parse is
	// stricter), and refusing it sends it to wazero's own mechanism, which is
	// always safe.
	parsed, err := wasmbin.Parse(wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot confirm the module has a memory (%v)", ErrUnsupported, err)
	}
	if !hasMemory(parsed) {
		return nil, fmt.Errorf("%w: module has no memory, which the interruption check needs", ErrUnsupported)
	}
	return out, nil
}

// instrument does the rewriting; Instrument adds the memory check.
func instrument(wasm []byte) (out []byte, err error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], wasmbin.Magic) {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, wasmbin.ErrNotWasm)
	}
	if !bytes.Equal(wasm[4:8], wasmbin.Version) {
		return nil, fmt.Errorf("%w: unsupported binary version % x", ErrMalformed, wasm[4:8])
	}
	secs, err := splitSections(wasm)
	if err != nil {
		return nil, err
	}

	var imp, glob, exp, code *section
	for i := range secs {
		switch s := &secs[i]; s.id {
		case secImport:
			imp = s
		case secGlobal:
			glob = s
		case secExport:
			exp = s
		case secCode:
			code = s
		}
	}

	var importedGlobals, definedGlobals uint32
	if imp != nil {
		if importedGlobals, err = countImportedGlobals(wasm, imp); err != nil {
			return nil, err
		}
	}
	globalsAt := 0 // where the existing global entries start
	if glob != nil {
		var ok bool
		definedGlobals, globalsAt, ok = readU32(wasm, glob.content, glob.end)
		if !ok {
			return nil, malformed(glob.content, "global count")
		}
		if definedGlobals >= math.MaxUint32-1 {
			return nil, unsupported(glob.content, "no room for another global")
		}
	}
	stopIdx := uint64(importedGlobals) + uint64(definedGlobals)
	if stopIdx+1 > math.MaxUint32 { // the budget global sits at stopIdx+1
		return nil, unsupported(0, "too many globals")
	}
	var exports uint32
	exportsAt := 0 // where the existing export entries start
	if exp != nil {
		if exports, exportsAt, err = scanExports(wasm, exp); err != nil {
			return nil, err
		}
		if exports == math.MaxUint32 {
			return nil, unsupported(exp.content, "no room for another export")
		}
	}

	check := appendCheck(make([]byte, 0, 10), uint32(stopIdx))
	var plan codePlan
	if code != nil {
		if err = plan.scan(wasm, code, len(check)); err != nil {
			return nil, err
		}
	}

	out = make([]byte, 0, len(wasm)+plan.growth+len(check)+64)
	out = append(out, wasm[:8]...)
	addedGlobal, addedExport := glob != nil, exp != nil
	for _, s := range secs {
		// A missing section goes right before the first known section
		// that must follow it. Custom sections in between stay where they
		// are, so a leading custom section (such as dylink.0) stays first.
		if s.id != secCustom {
			if !addedGlobal && sectionRank[s.id] > sectionRank[secGlobal] {
				out = appendGlobalSection(out, nil, 2)
				addedGlobal = true
			}
			if !addedExport && sectionRank[s.id] > sectionRank[secExport] {
				out = appendExportSection(out, nil, 1, uint32(stopIdx))
				addedExport = true
			}
		}
		switch s.id {
		case secGlobal:
			out = appendGlobalSection(out, wasm[globalsAt:s.end], definedGlobals+2)
		case secExport:
			out = appendExportSection(out, wasm[exportsAt:s.end], exports+1, uint32(stopIdx))
		case secCode:
			out = plan.appendSection(out, wasm, check)
		default:
			out = append(out, wasm[s.start:s.end]...)
		}
	}
	if !addedGlobal {
		out = appendGlobalSection(out, nil, 2)
	}
	if !addedExport {
		out = appendExportSection(out, nil, 1, uint32(stopIdx))
	}
	return out, nil
}

// splitSections cuts the module after its header into sections and checks
// their order the way wazero does, so that "the global section" and "the
// code section" are unambiguous.
func splitSections(b []byte) ([]section, error) {
	var secs []section
	var last int8
	for pos := 8; pos < len(b); {
		start := pos
		id := b[pos]
		size, content, ok := readU32(b, pos+1, len(b))
		if !ok {
			return nil, malformed(start, "size of section %d", id)
		}
		end := content + int(size)
		if end > len(b) || end < content {
			return nil, malformed(start, "section %d of %d bytes runs past the end of the module", id, size)
		}
		if id != secCustom {
			if int(id) >= len(sectionRank) || sectionRank[id] == 0 {
				return nil, malformed(start, "unknown section id %d", id)
			}
			if sectionRank[id] <= last {
				return nil, malformed(start, "section %d out of order or repeated", id)
			}
			last = sectionRank[id]
		} else if _, afterName, ok := skipName(b, content, end); !ok || afterName > end {
			return nil, malformed(start, "custom section name")
		}
		secs = append(secs, section{id: id, start: start, content: content, end: end})
		pos = end
	}
	return secs, nil
}

// countImportedGlobals walks the import section, whose entries have
// kind-dependent lengths, to count the imported globals: they come first in
// the global index space, so they decide the index of the added global.
func countImportedGlobals(b []byte, s *section) (uint32, error) {
	n, pos, ok := readU32(b, s.content, s.end)
	if !ok {
		return 0, malformed(s.content, "import count")
	}
	var globals uint32
	for i := uint32(0); i < n; i++ {
		entry := pos
		if _, pos, ok = skipName(b, pos, s.end); !ok {
			return 0, malformed(entry, "import %d module name", i)
		}
		if _, pos, ok = skipName(b, pos, s.end); !ok {
			return 0, malformed(entry, "import %d name", i)
		}
		if pos >= s.end {
			return 0, malformed(entry, "import %d kind", i)
		}
		kind := b[pos]
		pos++
		switch kind {
		case 0x00: // func: type index
			pos, ok = skipLEB(b, pos, s.end, maxLen32)
		case 0x01: // table: reference type, limits
			if pos < s.end && b[pos] == 0x40 {
				// A table with an initialiser expression: only
				// meaningful in the table section.
				return 0, unsupported(entry, "import %d: table with initialiser", i)
			}
			if pos, ok = skipRefType(b, pos, s.end); ok {
				pos, ok = skipLimits(b, pos, s.end)
			}
		case 0x02: // memory: limits
			pos, ok = skipLimits(b, pos, s.end)
		case 0x03: // global: value type, mutability
			var known bool
			if pos, ok, known = skipValType(b, pos, s.end); ok && !known {
				return 0, unsupported(entry, "import %d: unknown global value type %#x", i, b[pos-1])
			}
			if ok && pos < s.end {
				pos++
			} else {
				ok = false
			}
			globals++
		case 0x04: // tag: attribute byte, type index
			if pos < s.end {
				pos, ok = skipLEB(b, pos+1, s.end, maxLen32)
			} else {
				ok = false
			}
		default:
			return 0, malformed(entry, "import %d: unknown kind %#x", i, kind)
		}
		if !ok {
			return 0, malformed(entry, "import %d: truncated descriptor", i)
		}
	}
	if pos != s.end {
		return 0, malformed(pos, "import section has %d trailing bytes", s.end-pos)
	}
	return globals, nil
}

// scanExports checks that StopGlobal is not exported yet and returns the
// export count and where the entries start.
func scanExports(b []byte, s *section) (count uint32, entries int, err error) {
	n, pos, ok := readU32(b, s.content, s.end)
	if !ok {
		return 0, 0, malformed(s.content, "export count")
	}
	entries = pos
	for i := uint32(0); i < n; i++ {
		entry := pos
		var name []byte
		if name, pos, ok = skipName(b, pos, s.end); !ok {
			return 0, 0, malformed(entry, "export %d name", i)
		}
		if string(name) == StopGlobal {
			return 0, 0, fmt.Errorf("%w (export %d at offset %#x)", ErrStopExported, i, entry)
		}
		// Kind byte, then an index for every kind.
		if pos >= s.end {
			return 0, 0, malformed(entry, "export %d kind", i)
		}
		if pos, ok = skipLEB(b, pos+1, s.end, maxLen32); !ok {
			return 0, 0, malformed(entry, "export %d index", i)
		}
	}
	if pos != s.end {
		return 0, 0, malformed(pos, "export section has %d trailing bytes", s.end-pos)
	}
	return n, entries, nil
}

// skipName reads a length-prefixed byte string.
func skipName(b []byte, pos, end int) ([]byte, int, bool) {
	n, pos, ok := readU32(b, pos, end)
	if !ok || int(n) > end-pos {
		return nil, pos, false
	}
	return b[pos : pos+int(n)], pos + int(n), true
}

// skipLimits skips a limits structure: a flag byte (bit 0: has maximum, bit
// 1: shared), the minimum and the optional maximum. Other flags (64-bit
// memories) are not something wazero accepts.
func skipLimits(b []byte, pos, end int) (int, bool) {
	if pos >= end || b[pos] > 0x03 {
		return pos, false
	}
	hasMax := b[pos]&1 != 0
	pos, ok := skipLEB(b, pos+1, end, maxLen32)
	if ok && hasMax {
		pos, ok = skipLEB(b, pos, end, maxLen32)
	}
	return pos, ok
}

// skipRefType skips a table element type: a one-byte reference type, or
// (ref null? heaptype) as 0x63/0x64 followed by an s33 heap type.
func skipRefType(b []byte, pos, end int) (int, bool) {
	if pos >= end {
		return pos, false
	}
	switch b[pos] {
	case 0x70, 0x6f, 0x69: // funcref, externref, exnref
		return pos + 1, true
	case 0x63, 0x64:
		_, pos, ok := readS33(b, pos+1, end)
		return pos, ok
	}
	return pos, false
}

// skipValType skips a value type. known is false (with ok true) for a byte
// that is not a value type wazero knows: its length is then unknown, and the
// caller must not go on.
func skipValType(b []byte, pos, end int) (next int, ok, known bool) {
	if pos >= end {
		return pos, false, false
	}
	switch b[pos] {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, // i32 i64 f32 f64 v128
		0x70, 0x6f, 0x69: // funcref externref exnref
		return pos + 1, true, true
	case 0x63, 0x64: // (ref null ht), (ref ht)
		_, next, ok = readS33(b, pos+1, end)
		return next, ok, true
	}
	return pos + 1, true, false
}

// appendCheck appends the interruption check for the global stopIdx.
func appendCheck(out []byte, stopIdx uint32) []byte {
	out = append(out, 0x23) // global.get
	out = appendULEB(out, uint64(stopIdx))
	out = append(out,
		0x04, 0x40, // if (empty block type)
		0x00, // unreachable
		0x0b, // end
	)
	b := appendULEB(nil, uint64(stopIdx+1))
	out = append(out, 0x23)
	out = append(out, b...)
	out = append(out, 0x41, 0x01, 0x6b, 0x24)
	out = append(out, b...)
	out = append(out, 0x23)
	out = append(out, b...)
	out = append(out, 0x45, 0x04, 0x40, 0x41, 0x00, 0x40, 0x00, 0x1a, 0x41, 0x80, 0x08, 0x24)
	out = append(out, b...)
	return append(out, 0x0b)
}

// appendGlobalSection appends a global section made of the existing entries
// (none if the module had no global section) followed by the stop global.
// count includes the stop global.
func appendGlobalSection(out, entries []byte, count uint32) []byte {
	size := ulebLen(uint64(count)) + len(entries) + len(stopGlobalEntry)
	out = append(out, secGlobal)
	out = appendULEB(out, uint64(size))
	out = appendULEB(out, uint64(count))
	out = append(out, entries...)
	return append(out, stopGlobalEntry...)
}

// appendExportSection appends an export section made of the existing
// entries (none if the module had no export section) followed by the export
// of the stop global. count includes that export.
func appendExportSection(out, entries []byte, count, stopIdx uint32) []byte {
	size := ulebLen(uint64(count)) + len(entries) +
		ulebLen(uint64(len(StopGlobal))) + len(StopGlobal) + 1 + ulebLen(uint64(stopIdx))
	out = append(out, secExport)
	out = appendULEB(out, uint64(size))
	out = appendULEB(out, uint64(count))
	out = append(out, entries...)
	out = appendULEB(out, uint64(len(StopGlobal)))
	out = append(out, StopGlobal...)
	out = append(out, 0x03) // kind: global
	return appendULEB(out, uint64(stopIdx))
}

func malformed(off int, format string, args ...any) error {
	return fmt.Errorf("%w: offset %#x: %s", ErrMalformed, off, fmt.Sprintf(format, args...))
}

func unsupported(off int, format string, args ...any) error {
	return fmt.Errorf("%w: offset %#x: %s", ErrUnsupported, off, fmt.Sprintf(format, args...))
}

func hasMemory(m *wasmbin.Module) bool {
	if len(m.Memories) > 0 {
		return true
	}
	for _, im := range m.Imports {
		if im.Kind == wasmbin.KindMemory {
			return true
		}
	}
	return false
}
