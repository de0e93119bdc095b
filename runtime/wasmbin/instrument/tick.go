package instrument

import "errors"

// Options change what InstrumentWith adds. The zero value gives Instrument's
// output.
type Options struct {
	// Tick, when true, makes the periodic yield an indirect call through
	// slot 0 of an added, exported funcref table (TickTable) of type
	// () -> (), instead of memory.grow 0. The embedder puts a function in
	// the slot before calling into the guest; a call through an empty slot
	// traps. The module then needs no memory.
	Tick bool
}

// TickTable is the export name of the table added with Options.Tick. Slot 0
// holds the function the check calls every 1024 checks.
const TickTable = "__ferry_tick"

// ErrTickExported is returned, with Options.Tick, when the module already
// exports TickTable. Like ErrStopExported, the export is refused rather than
// renamed: the embedder would fill the guest's own table instead.
var ErrTickExported = errors.New("module already exports " + TickTable)

// tickPlan is what Options.Tick adds: a type () -> () after the existing
// types, and a funcref table of at least one slot after the existing tables.
type tickPlan struct {
	types    uint32 // types in the type section (the rec groups' members)
	entries  uint32 // entries of the type section's vector
	typesAt  int    // where the existing type entries start
	tables   uint32 // tables in the table section
	tablesAt int    // where the existing table entries start
	typeIdx  uint32 // index of the added type
	tableIdx uint32 // index of the added table: imported plus defined tables
}

// tickType is the added type: func () -> ().
var tickType = []byte{0x60, 0x00, 0x00}

// tickTable is the added table: funcref, limits min 1 and no maximum.
var tickTable = []byte{0x70, 0x00, 0x01}

// appendTypeSection appends a type section made of the existing entries
// (none if the module had no type section) followed by the tick type. A
// rec group is one entry of the vector but several types, so the vector
// length is not the type count.
func (t *tickPlan) appendTypeSection(out, entries []byte) []byte {
	return appendVecSection(out, secType, t.entries+1, entries, tickType)
}

// appendTableSection appends a table section made of the existing entries
// (none if the module had no table section) followed by the tick table.
func (t *tickPlan) appendTableSection(out, entries []byte) []byte {
	return appendVecSection(out, secTable, t.tables+1, entries, tickTable)
}

// appendVecSection appends a section whose content is a vector of count
// entries: the existing ones, then one more.
func appendVecSection(out []byte, id byte, count uint32, entries, added []byte) []byte {
	size := ulebLen(uint64(count)) + len(entries) + len(added)
	out = append(out, id)
	out = appendULEB(out, uint64(size))
	out = appendULEB(out, uint64(count))
	out = append(out, entries...)
	return append(out, added...)
}

// countTypes walks the type section and returns the number of types it
// defines, the number of entries of its vector, and where the entries
// start. An entry is a function type or, as wazero v1.12 reads it, a rec
// group (0x4e) of function types, each of which takes a type index.
func countTypes(b []byte, s *section) (types, entries uint32, at int, err error) {
	n, pos, ok := readU32(b, s.content, s.end)
	if !ok {
		return 0, 0, 0, malformed(s.content, "type count")
	}
	at = pos
	var total uint64
	for i := uint32(0); i < n; i++ {
		entry := pos
		if pos >= s.end {
			return 0, 0, 0, malformed(entry, "type %d", i)
		}
		members := uint32(1)
		if b[pos] == 0x4e {
			if members, pos, ok = readU32(b, pos+1, s.end); !ok {
				return 0, 0, 0, malformed(entry, "type %d: rec group size", i)
			}
		}
		// Every member takes at least three bytes, so this loop ends at
		// the section end at the latest whatever members claims.
		for j := uint32(0); j < members; j++ {
			if pos, err = skipFuncType(b, pos, s.end); err != nil {
				return 0, 0, 0, err
			}
		}
		total += uint64(members)
		if total > maxTypes {
			return 0, 0, 0, unsupported(entry, "more than %d types", maxTypes)
		}
	}
	if pos != s.end {
		return 0, 0, 0, malformed(pos, "type section has %d trailing bytes", s.end-pos)
	}
	return uint32(total), n, at, nil
}

// skipFuncType skips a function type: 0x60, then the parameter and the
// result types.
func skipFuncType(b []byte, pos, end int) (int, error) {
	at := pos
	if pos >= end {
		return pos, malformed(at, "truncated function type")
	}
	if b[pos] != 0x60 {
		return pos, unsupported(at, "type form %#x", b[pos])
	}
	pos++
	for range 2 { // parameters, results
		n, next, ok := readU32(b, pos, end)
		if !ok {
			return pos, malformed(at, "function type: value type count")
		}
		pos = next
		for i := uint32(0); i < n; i++ {
			var known bool
			if pos, ok, known = skipValType(b, pos, end); !ok {
				if pos < end {
					// A heap type whose fifth byte has its continuation
					// bit set: wazero reads five bytes and goes on, the
					// spec calls it malformed.
					return pos, unsupported(at, "function type: value type %d: overlong heap type", i)
				}
				return pos, malformed(at, "function type: value type %d", i)
			} else if !known {
				return pos, unsupported(at, "function type: unknown value type %#x", b[pos-1])
			}
		}
	}
	return pos, nil
}
