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
// Only the global, export and code sections are re-encoded (with
// Options.Tick, the type and table sections too); every other byte, custom
// sections included, is copied as is. Global, function, type and table
// indices do not move (what is added goes after all existing ones), so
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
// have a memory (unless Options.Tick replaces the yield, see below); modules
// without one are refused with ErrUnsupported and run under wazero's own
// mechanism.
//
// With the interpreter the host's write of the global races (in the Go
// memory model sense) with the guest's reads; Ferry uses wazero's own
// mechanism there, which is cheap in the interpreter.
//
// # Calling out instead of yielding
//
// In a JavaScript host (V8, as in Cloudflare Workers) nothing can set the
// stop global while the guest runs, since the guest holds the only thread,
// and memory.grow does not leave compiled code. InstrumentWith with
// Options.Tick therefore makes the yield a call to the embedder:
//
//	i32.const 0
//	call_indirect (type $tick) $tick_table
//
// where $tick is an added type () -> () (after every existing type) and
// $tick_table an added funcref table of one slot, without maximum (after
// every existing table, imported ones first), exported as TickTable. No
// function is added or imported, so function indices do not move either;
// the type and table sections are re-encoded, along with the global, export
// and code sections. The memory is not used, and a module without one is
// instrumented. A module that already exports TickTable is refused with
// ErrTickExported.
//
// The embedder puts a function of type () -> () in slot 0 of the table
// before it calls into the guest (a call through the empty slot traps) and
// decides there whether to stop: it can throw (a JavaScript exception, or a
// panic in a wazero host function, unwinds the guest), or set StopGlobal,
// which makes the guest trap at its next check once the call returns. The
// second is the robust one: the guest cannot catch a trap, whereas a guest
// using exception handling could catch a JavaScript exception with
// catch_all. JavaScript cannot store a plain JavaScript function in a
// funcref table: Table.prototype.set takes only functions exported by a
// wasm instance, so the tick function goes through a small module that
// imports it and exports it (or imports the table and fills it with an
// element segment). wazero has no host API to set a table slot either; the
// element segment works there, and since wazero calls a Go host function by
// returning to Go, the call is a preemption point as memory.grow is.
//
// A start function runs during instantiation, before the embedder can fill
// the slot: if it makes 1024 checks (calls and loop iterations), it traps.
// Toolchains initialise reactors and commands from exported functions
// (_initialize, _start), which run after instantiation, so this is a limit
// for hand-written modules mostly.
//
// If the module had a table, the added one is its second, and calling
// through a table other than table 0 is part of the reference-types feature:
// wazero's default features (api.CoreFeaturesV2) and V8 have it, but with
// only api.CoreFeaturesV1 wazero rejects the output.
//
// # Capping the memory
//
// CapMemory is separate from the check: it lowers the declared maximum of
// the module's memory, so that memory.grow beyond a budget fails in the
// guest (which can handle it) instead of being refused by the host or
// exhausting it. Only the memory section is re-encoded.
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
	secType      = 1
	secImport    = 2
	secTable     = 4
	secMemory    = 5
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
	secType: 1, secImport: 2, 3: 3, secTable: 4, secMemory: 5, secTag: 6, secGlobal: 7, secExport: 8,
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
// not modified, and Instrument is safe for concurrent use. It is
// InstrumentWith(wasm, Options{}).
//
// Errors wrap ErrMalformed, ErrUnsupported or ErrStopExported.
func Instrument(wasm []byte) ([]byte, error) {
	return InstrumentWith(wasm, Options{})
}

// InstrumentWith is Instrument with options. The input is not modified, and
// InstrumentWith is safe for concurrent use.
//
// Errors wrap ErrMalformed, ErrUnsupported, ErrStopExported or (with Tick)
// ErrTickExported.
func InstrumentWith(wasm []byte, opts Options) ([]byte, error) {
	out, err := instrument(wasm, opts)
	if err != nil {
		return nil, err
	}
	if opts.Tick {
		return out, nil // the yield calls through the table: no memory needed
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

// Limits of V8 (src/wasm/wasm-limits.h) that the tick table and type could
// cross: the output must run in V8 as well as in wazero, whose own limits
// are higher.
const (
	maxTables = 100_000   // kV8MaxWasmTables
	maxTypes  = 1_000_000 // kV8MaxWasmTypes
)

// instrument does the rewriting; InstrumentWith adds the memory check.
func instrument(wasm []byte, opts Options) (out []byte, err error) {
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

	var typ, imp, tab, glob, exp, code *section
	for i := range secs {
		switch s := &secs[i]; s.id {
		case secType:
			typ = s
		case secImport:
			imp = s
		case secTable:
			tab = s
		case secGlobal:
			glob = s
		case secExport:
			exp = s
		case secCode:
			code = s
		}
	}

	var imported importCounts
	if imp != nil {
		if imported, err = countImports(wasm, imp); err != nil {
			return nil, err
		}
	}
	var definedGlobals uint32
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
	stopIdx := uint64(imported.globals) + uint64(definedGlobals)
	if stopIdx+1 > math.MaxUint32 { // the budget global sits at stopIdx+1
		return nil, unsupported(0, "too many globals")
	}

	// With Tick, the tick type and table go after the existing ones.
	var tick *tickPlan
	if opts.Tick {
		tick = &tickPlan{}
		if typ != nil {
			if tick.types, tick.entries, tick.typesAt, err = countTypes(wasm, typ); err != nil {
				return nil, err
			}
		}
		if tab != nil {
			var ok bool
			if tick.tables, tick.tablesAt, ok = readU32(wasm, tab.content, tab.end); !ok {
				return nil, malformed(tab.content, "table count")
			}
		}
		if tick.types >= maxTypes {
			return nil, unsupported(0, "no room for another type")
		}
		tableIdx := uint64(imported.tables) + uint64(tick.tables)
		if tableIdx >= maxTables {
			return nil, unsupported(0, "no room for another table")
		}
		tick.typeIdx, tick.tableIdx = tick.types, uint32(tableIdx)
	}

	var exports uint32
	exportsAt := 0 // where the existing export entries start
	if exp != nil {
		if exports, exportsAt, err = scanExports(wasm, exp, opts.Tick); err != nil {
			return nil, err
		}
		if exports > math.MaxUint32-addedExports(tick) {
			return nil, unsupported(exp.content, "no room for another export")
		}
	}

	var check []byte
	if tick != nil {
		check = appendTickCheck(make([]byte, 0, 40), uint32(stopIdx), tick.typeIdx, tick.tableIdx)
	} else {
		check = appendCheck(make([]byte, 0, 40), uint32(stopIdx))
	}
	var plan codePlan
	if code != nil {
		if err = plan.scan(wasm, code, len(check)); err != nil {
			return nil, err
		}
	}

	out = make([]byte, 0, len(wasm)+plan.growth+len(check)+128)
	out = append(out, wasm[:8]...)
	// The sections to add when the module has none: types and tables only
	// with Tick.
	addedType, addedTable := tick == nil || typ != nil, tick == nil || tab != nil
	addedGlobal, addedExport := glob != nil, exp != nil
	addMissing := func(rank int8) {
		if !addedType && rank > sectionRank[secType] {
			out = tick.appendTypeSection(out, nil)
			addedType = true
		}
		if !addedTable && rank > sectionRank[secTable] {
			out = tick.appendTableSection(out, nil)
			addedTable = true
		}
		if !addedGlobal && rank > sectionRank[secGlobal] {
			out = appendGlobalSection(out, nil, 2)
			addedGlobal = true
		}
		if !addedExport && rank > sectionRank[secExport] {
			out = appendExportSection(out, nil, 0, uint32(stopIdx), tick)
			addedExport = true
		}
	}
	for _, s := range secs {
		// A missing section goes right before the first known section
		// that must follow it. Custom sections in between stay where they
		// are, so a leading custom section (such as dylink.0) stays first.
		if s.id != secCustom {
			addMissing(sectionRank[s.id])
		}
		switch s.id {
		case secType:
			if tick != nil {
				out = tick.appendTypeSection(out, wasm[tick.typesAt:s.end])
			} else {
				out = append(out, wasm[s.start:s.end]...)
			}
		case secTable:
			if tick != nil {
				out = tick.appendTableSection(out, wasm[tick.tablesAt:s.end])
			} else {
				out = append(out, wasm[s.start:s.end]...)
			}
		case secGlobal:
			out = appendGlobalSection(out, wasm[globalsAt:s.end], definedGlobals+2)
		case secExport:
			out = appendExportSection(out, wasm[exportsAt:s.end], exports, uint32(stopIdx), tick)
		case secCode:
			out = plan.appendSection(out, wasm, check)
		default:
			out = append(out, wasm[s.start:s.end]...)
		}
	}
	addMissing(math.MaxInt8)
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

// importCounts counts the imports of each kind that an added entity's index
// depends on.
type importCounts struct {
	tables, memories, globals uint32
}

// countImports walks the import section, whose entries have kind-dependent
// lengths, to count the imported tables, memories and globals: they come
// first in their index spaces, so they decide the index of an added global
// or table, and which memory is memory 0.
func countImports(b []byte, s *section) (importCounts, error) {
	var c importCounts
	n, pos, ok := readU32(b, s.content, s.end)
	if !ok {
		return c, malformed(s.content, "import count")
	}
	for i := uint32(0); i < n; i++ {
		entry := pos
		if _, pos, ok = skipName(b, pos, s.end); !ok {
			return c, malformed(entry, "import %d module name", i)
		}
		if _, pos, ok = skipName(b, pos, s.end); !ok {
			return c, malformed(entry, "import %d name", i)
		}
		if pos >= s.end {
			return c, malformed(entry, "import %d kind", i)
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
				return c, unsupported(entry, "import %d: table with initialiser", i)
			}
			if pos, ok = skipRefType(b, pos, s.end); ok {
				pos, ok = skipLimits(b, pos, s.end)
			}
			c.tables++
		case 0x02: // memory: limits
			pos, ok = skipLimits(b, pos, s.end)
			c.memories++
		case 0x03: // global: value type, mutability
			var known bool
			if pos, ok, known = skipValType(b, pos, s.end); ok && !known {
				return c, unsupported(entry, "import %d: unknown global value type %#x", i, b[pos-1])
			}
			if ok && pos < s.end {
				pos++
			} else {
				ok = false
			}
			c.globals++
		case 0x04: // tag: attribute byte, type index
			if pos < s.end {
				pos, ok = skipLEB(b, pos+1, s.end, maxLen32)
			} else {
				ok = false
			}
		default:
			return c, malformed(entry, "import %d: unknown kind %#x", i, kind)
		}
		if !ok {
			return c, malformed(entry, "import %d: truncated descriptor", i)
		}
	}
	if pos != s.end {
		return c, malformed(pos, "import section has %d trailing bytes", s.end-pos)
	}
	return c, nil
}

// scanExports checks that StopGlobal (and, with tick, TickTable) is not
// exported yet and returns the export count and where the entries start.
func scanExports(b []byte, s *section, tick bool) (count uint32, entries int, err error) {
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
		if tick && string(name) == TickTable {
			return 0, 0, fmt.Errorf("%w (export %d at offset %#x)", ErrTickExported, i, entry)
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

// appendCheck appends the interruption check for the global stopIdx, whose
// yield is memory.grow 0.
func appendCheck(out []byte, stopIdx uint32) []byte {
	return appendCheckWith(out, stopIdx, []byte{0x41, 0x00, 0x40, 0x00, 0x1a}) // memory.grow 0 (i32.const 0); drop
}

// appendTickCheck appends the interruption check for the global stopIdx
// whose yield is a call through slot 0 of the table tableIdx, of type
// typeIdx (() -> ()).
func appendTickCheck(out []byte, stopIdx, typeIdx, tableIdx uint32) []byte {
	yield := []byte{0x41, 0x00, 0x11} // call_indirect (i32.const 0)
	yield = appendULEB(yield, uint64(typeIdx))
	yield = appendULEB(yield, uint64(tableIdx))
	return appendCheckWith(out, stopIdx, yield)
}

// appendCheckWith appends the interruption check for the global stopIdx,
// with the given yield: the stop test, then the budget global (stopIdx+1)
// counted down, and the yield and a reset to 1024 when it reaches 0.
func appendCheckWith(out []byte, stopIdx uint32, yield []byte) []byte {
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
	out = append(out, 0x45, 0x04, 0x40) // i32.eqz; if
	out = append(out, yield...)
	out = append(out, 0x41, 0x80, 0x08, 0x24) // i32.const 1024; global.set
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

// addedExports is how many exports instrument adds: StopGlobal, and
// TickTable with Tick.
func addedExports(tick *tickPlan) uint32 {
	if tick != nil {
		return 2
	}
	return 1
}

// appendExportSection appends an export section made of the count existing
// entries (none if the module had no export section) followed by the export
// of the stop global and, with tick, that of the tick table.
func appendExportSection(out, entries []byte, count, stopIdx uint32, tick *tickPlan) []byte {
	count += addedExports(tick)
	size := ulebLen(uint64(count)) + len(entries) +
		ulebLen(uint64(len(StopGlobal))) + len(StopGlobal) + 1 + ulebLen(uint64(stopIdx))
	if tick != nil {
		size += ulebLen(uint64(len(TickTable))) + len(TickTable) + 1 + ulebLen(uint64(tick.tableIdx))
	}
	out = append(out, secExport)
	out = appendULEB(out, uint64(size))
	out = appendULEB(out, uint64(count))
	out = append(out, entries...)
	out = appendULEB(out, uint64(len(StopGlobal)))
	out = append(out, StopGlobal...)
	out = append(out, 0x03) // kind: global
	out = appendULEB(out, uint64(stopIdx))
	if tick != nil {
		out = appendULEB(out, uint64(len(TickTable)))
		out = append(out, TickTable...)
		out = append(out, 0x01) // kind: table
		out = appendULEB(out, uint64(tick.tableIdx))
	}
	return out
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
