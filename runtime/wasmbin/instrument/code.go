package instrument

import (
	"fmt"
	"math"
)

// funcPlan locates one function body of the code section and what to insert
// into it.
type funcPlan struct {
	body     int    // offset of the locals vector (just past the body size)
	instrs   int    // offset of the first instruction (just past the locals)
	end      int    // offset just past the body
	loopsEnd int    // end of this function's run in codePlan.loops
	newSize  uint32 // body size once instrumented
}

// codePlan is the result of decoding the code section: where every check
// goes and the sizes that result, so that the output can be written in one
// pass with its LEB128 sizes known up front.
type codePlan struct {
	start  int // offset of the section id byte
	end    int // offset just past the section
	count  uint32
	funcs  []funcPlan
	loops  []int32 // offsets just past each loop header, in order
	size   uint64  // new section content size
	growth int     // new section length minus old, header included
}

// scan decodes every function body of the code section s and plans the
// insertion of a check of checkLen bytes at each function entry and loop
// header.
func (p *codePlan) scan(b []byte, s *section, checkLen int) error {
	if len(b) > math.MaxInt32 {
		return unsupported(0, "module larger than 2 GiB")
	}
	n, pos, ok := readU32(b, s.content, s.end)
	if !ok {
		return malformed(s.content, "function body count")
	}
	p.start, p.end, p.count = s.start, s.end, n
	// Each body takes at least two bytes (size and locals count), which
	// bounds the preallocation whatever count the input claims.
	p.funcs = make([]funcPlan, 0, min(int(n), (s.end-pos)/2))
	p.size = uint64(ulebLen(uint64(n)))
	for i := uint32(0); i < n; i++ {
		entry := pos
		size, body, ok := readU32(b, pos, s.end)
		if !ok {
			return malformed(entry, "size of function body %d", i)
		}
		end := body + int(size)
		if end > s.end || end < body {
			return malformed(entry, "function body %d of %d bytes runs past the code section", i, size)
		}
		instrs, err := skipLocals(b, body, end)
		if err != nil {
			return fmt.Errorf("function body %d: %w", i, err)
		}
		before := len(p.loops)
		if p.loops, err = scanInstrs(b, instrs, end, p.loops); err != nil {
			return fmt.Errorf("function body %d: %w", i, err)
		}
		checks := uint64(1 + len(p.loops) - before)
		newSize := uint64(size) + checks*uint64(checkLen)
		if newSize > math.MaxUint32 {
			return unsupported(entry, "function body %d too large once instrumented", i)
		}
		p.funcs = append(p.funcs, funcPlan{
			body: body, instrs: instrs, end: end,
			loopsEnd: len(p.loops), newSize: uint32(newSize),
		})
		p.size += uint64(ulebLen(newSize)) + newSize
		pos = end
	}
	if pos != s.end {
		return malformed(pos, "code section has %d trailing bytes", s.end-pos)
	}
	if p.size > math.MaxUint32 {
		return unsupported(s.start, "code section too large once instrumented")
	}
	p.growth = 1 + ulebLen(p.size) + int(p.size) - (s.end - s.start)
	return nil
}

// appendSection writes the instrumented code section.
func (p *codePlan) appendSection(out, b, check []byte) []byte {
	out = append(out, secCode)
	out = appendULEB(out, p.size)
	out = appendULEB(out, uint64(p.count))
	loop := 0
	for _, f := range p.funcs {
		out = appendULEB(out, uint64(f.newSize))
		out = append(out, b[f.body:f.instrs]...)
		out = append(out, check...)
		cur := f.instrs
		for ; loop < f.loopsEnd; loop++ {
			at := int(p.loops[loop])
			out = append(out, b[cur:at]...)
			out = append(out, check...)
			cur = at
		}
		out = append(out, b[cur:f.end]...)
	}
	return out
}

// skipLocals skips the local declarations at the start of a function body
// and returns the offset of the first instruction.
func skipLocals(b []byte, pos, end int) (int, error) {
	n, pos, ok := readU32(b, pos, end)
	if !ok {
		return pos, malformed(pos, "local declaration count")
	}
	for i := uint32(0); i < n; i++ {
		at := pos
		if pos, ok = skipLEB(b, pos, end, maxLen32); !ok {
			return pos, malformed(at, "local declaration %d count", i)
		}
		var known bool
		if pos, ok, known = skipValType(b, pos, end); !ok {
			return pos, malformed(at, "local declaration %d type", i)
		} else if !known {
			return pos, unsupported(at, "local declaration %d: unknown value type %#x", i, b[pos-1])
		}
	}
	return pos, nil
}

// Immediate shapes of the one-byte opcodes. The zero value is "unknown":
// an opcode this package has not been taught is never guessed at.
const (
	immUnknown  uint8 = iota
	immNone           // no immediate
	immBlock          // block type (block, if)
	immLoop           // block type; the check goes right after it
	immU32            // one index
	immU32x2          // two indices (call_indirect: type, table)
	immMemArg         // memory access alignment and offset
	immS32            // i32.const
	immS64            // i64.const
	immF32            // f32.const: 4 bytes
	immF64            // f64.const: 8 bytes
	immBrTable        // vector of labels and a default label
	immSelectT        // typed select: vector of one value type
	immTryTable       // block type and catch clauses
	immRefNull        // heap type
	immPrefixFC       // misc: saturating truncation, bulk memory, tables
	immPrefixFD       // SIMD
	immPrefixFE       // threads
	immLegacyEH       // legacy exception handling, which wazero rejects
)

// opImm gives the immediate shape of every one-byte opcode wazero v1.12
// decodes (internal/wasm/func_validation.go).
var opImm = func() (t [256]uint8) {
	set := func(shape uint8, ops ...byte) {
		for _, op := range ops {
			t[op] = shape
		}
	}
	setRange := func(shape uint8, from, to byte) {
		for op := int(from); op <= int(to); op++ {
			t[op] = shape
		}
	}
	set(immNone,
		0x00, // unreachable
		0x01, // nop
		0x05, // else
		0x0a, // throw_ref
		0x0b, // end
		0x0f, // return
		0x1a, // drop
		0x1b, // select
		0xd1, // ref.is_null
		0xd4, // ref.as_non_null
	)
	setRange(immNone, 0x45, 0xc4) // numeric and sign-extension instructions
	set(immBlock, 0x02, 0x04)     // block, if
	set(immLoop, 0x03)
	set(immU32,
		0x08,       // throw tag
		0x0c, 0x0d, // br, br_if
		0x10,       // call
		0x12,       // return_call
		0x14, 0x15, // call_ref, return_call_ref (type index)
		0x20, 0x21, 0x22, // local.get/set/tee
		0x23, 0x24, // global.get/set
		0x25, 0x26, // table.get/set
		0x3f, 0x40, // memory.size/grow (memory index)
		0xd2,       // ref.func
		0xd5, 0xd6, // br_on_null, br_on_non_null
	)
	set(immU32x2, 0x11, 0x13) // call_indirect, return_call_indirect
	setRange(immMemArg, 0x28, 0x3e)
	set(immS32, 0x41)
	set(immS64, 0x42)
	set(immF32, 0x43)
	set(immF64, 0x44)
	set(immBrTable, 0x0e)
	set(immSelectT, 0x1c)
	set(immTryTable, 0x1f)
	set(immRefNull, 0xd0)
	set(immPrefixFC, 0xfc)
	set(immPrefixFD, 0xfd)
	set(immPrefixFE, 0xfe)
	set(immLegacyEH, 0x06, 0x07, 0x09, 0x18, 0x19) // try, catch, rethrow, delegate, catch_all
	return t
}()

// Immediate shapes of the SIMD (0xFD) instructions.
const (
	vecUnknown uint8 = iota
	vecNone          // no immediate
	vecMemArg        // loads and stores
	vecMemLane       // lane loads and stores: memarg, lane index
	vecBytes16       // v128.const, i8x16.shuffle
	vecLane          // extract_lane, replace_lane: lane index
)

// vecImm gives the immediate shape of every SIMD opcode wazero v1.12 knows.
// The gaps are the opcodes the SIMD proposal leaves unassigned (and relaxed
// SIMD's, which need a two-byte opcode).
var vecImm = func() (t [256]uint8) {
	for op := range t {
		t[op] = vecNone
	}
	for _, op := range []byte{0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb,
		0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee} {
		t[op] = vecUnknown
	}
	for op := 0x00; op <= 0x0b; op++ { // v128.load*, v128.store
		t[op] = vecMemArg
	}
	t[0x5c], t[0x5d] = vecMemArg, vecMemArg // v128.load32_zero, v128.load64_zero
	for op := 0x54; op <= 0x5b; op++ {      // v128.load*_lane, v128.store*_lane
		t[op] = vecMemLane
	}
	t[0x0c], t[0x0d] = vecBytes16, vecBytes16 // v128.const, i8x16.shuffle
	for op := 0x15; op <= 0x22; op++ {        // *.extract_lane*, *.replace_lane
		t[op] = vecLane
	}
	return t
}()

// scanInstrs decodes the instructions of one function body, b[pos:end], and
// appends to loops the offset just past every loop header, where a check must
// go. It only measures instructions; typing them is wazero's job.
func scanInstrs(b []byte, pos, end int, loops []int32) ([]int32, error) {
	if end > len(b) {
		return loops, malformed(pos, "body runs past the module")
	}
	for pos < end {
		at := pos
		op := b[pos]
		pos++
		ok := true // each shape below clears it on a truncated immediate
		switch opImm[op] {
		case immNone:
			continue
		case immBlock:
			pos, ok = skipBlockType(b, pos, end)
		case immLoop:
			if pos, ok = skipBlockType(b, pos, end); ok {
				loops = append(loops, int32(pos))
			}
		case immU32:
			pos, ok = skipLEB(b, pos, end, maxLen32)
		case immU32x2:
			if pos, ok = skipLEB(b, pos, end, maxLen32); ok {
				pos, ok = skipLEB(b, pos, end, maxLen32)
			}
		case immMemArg:
			pos, ok = skipMemArg(b, pos, end)
		case immS32:
			pos, ok = skipLEB(b, pos, end, maxLen32)
		case immS64:
			pos, ok = skipLEB(b, pos, end, maxLen64)
		case immF32:
			pos += 4
			ok = pos <= end
		case immF64:
			pos += 8
			ok = pos <= end
		case immBrTable:
			var n uint32
			if n, pos, ok = readU32(b, pos, end); ok {
				// n+1 labels (the default last). n comes from the input
				// but every label takes a byte, so the loop ends at the
				// body end at the latest.
				for i := uint64(0); i <= uint64(n) && ok; i++ {
					pos, ok = skipLEB(b, pos, end, maxLen32)
				}
			}
		case immSelectT:
			// wazero reads the vector length as one byte and only
			// accepts 1.
			if pos >= end || b[pos] != 0x01 {
				return loops, unsupported(at, "typed select without exactly one type")
			}
			pos++
			if pos < end && (b[pos] == 0x63 || b[pos] == 0x64) {
				// wazero v1.12's validator reads the heap type that
				// follows, but both its engines skip a single type
				// byte and execute the rest as instructions: there is
				// no boundary to agree with.
				return loops, unsupported(at, "typed select of a (ref ...) type")
			}
			var known bool
			if pos, ok, known = skipValType(b, pos, end); ok && !known {
				return loops, unsupported(at, "select with unknown value type %#x", b[pos-1])
			}
		case immTryTable:
			var err error
			if pos, err = skipTryTable(b, at, pos, end); err != nil {
				return loops, err
			}
			ok = true
		case immRefNull:
			if pos >= end {
				ok = false
				break
			}
			switch b[pos] {
			case 0x70, 0x6f, 0x69: // func, extern, exn
				pos++
			default:
				// A concrete type index. wazero reads it as a u32,
				// not as the spec's s33: follow wazero, since that is
				// what decides where the next instruction starts.
				pos, ok = skipLEB(b, pos, end, maxLen32)
			}
		case immPrefixFC:
			var err error
			if pos, err = skipMisc(b, at, pos, end); err != nil {
				return loops, err
			}
			ok = true
		case immPrefixFD:
			var err error
			if pos, err = skipSIMD(b, at, pos, end); err != nil {
				return loops, err
			}
			ok = true
		case immPrefixFE:
			var err error
			if pos, err = skipAtomic(b, at, pos, end); err != nil {
				return loops, err
			}
			ok = true
		case immLegacyEH:
			return loops, unsupported(at, "legacy exception handling opcode %#x", op)
		default:
			return loops, unsupported(at, "unknown opcode %#x", op)
		}
		if !ok {
			return loops, malformed(at, "truncated or overlong immediate of opcode %#x", op)
		}
	}
	return loops, nil
}

// skipBlockType skips a block type as wazero's DecodeBlockType reads it: an
// s33 that is either a value type, the empty type or a type index; the
// values of the 0x63 and 0x64 prefixes ((ref null ht) and (ref ht)) are
// followed by an s33 heap type.
func skipBlockType(b []byte, pos, end int) (int, bool) {
	v, pos, ok := readS33(b, pos, end)
	if ok && (v == -29 || v == -28) { // 0x63, 0x64
		_, pos, ok = readS33(b, pos, end)
	}
	return pos, ok
}

// skipMemArg skips a memory argument: alignment then offset, both u32. With
// multi-memory, bit 6 of the alignment announces a memory index between
// them. wazero rejects that (alignment >= 32) but the layout is unambiguous,
// so it is measured rather than refused.
func skipMemArg(b []byte, pos, end int) (int, bool) {
	align, pos, ok := readU32(b, pos, end)
	if !ok {
		return pos, false
	}
	if align&0x40 != 0 {
		if pos, ok = skipLEB(b, pos, end, maxLen32); !ok {
			return pos, false
		}
	}
	return skipLEB(b, pos, end, maxLen32)
}

// skipTryTable skips the immediates of try_table: a block type and a vector
// of catch clauses (kind byte, then a tag index for catch and catch_ref, then
// a label).
func skipTryTable(b []byte, at, pos, end int) (int, error) {
	pos, ok := skipBlockType(b, pos, end)
	if !ok {
		return pos, malformed(at, "try_table block type")
	}
	n, pos, ok := readU32(b, pos, end)
	if !ok {
		return pos, malformed(at, "try_table catch count")
	}
	for i := uint64(0); i < uint64(n); i++ {
		if pos >= end {
			return pos, malformed(at, "try_table catch clause %d", i)
		}
		kind := b[pos]
		pos++
		switch kind {
		case 0x00, 0x01: // catch, catch_ref: tag, label
			if pos, ok = skipLEB(b, pos, end, maxLen32); ok {
				pos, ok = skipLEB(b, pos, end, maxLen32)
			}
		case 0x02, 0x03: // catch_all, catch_all_ref: label
			pos, ok = skipLEB(b, pos, end, maxLen32)
		default:
			return pos, unsupported(at, "try_table catch clause kind %#x", kind)
		}
		if !ok {
			return pos, malformed(at, "try_table catch clause %d", i)
		}
	}
	return pos, nil
}

// skipMisc skips a 0xFC-prefixed instruction; pos is just past the prefix.
func skipMisc(b []byte, at, pos, end int) (int, error) {
	sub, pos, ok := readU32(b, pos, end)
	if !ok {
		return pos, malformed(at, "0xfc sub-opcode")
	}
	var indices int
	switch {
	case sub <= 0x07: // saturating truncations
	case sub == 0x09, sub == 0x0b, sub == 0x0d, // data.drop, memory.fill, elem.drop
		sub >= 0x0f && sub <= 0x11: // table.grow, table.size, table.fill
		indices = 1
	case sub == 0x08, sub == 0x0a, sub == 0x0c, sub == 0x0e: // memory.init, memory.copy, table.init, table.copy
		indices = 2
	default:
		return pos, unsupported(at, "unknown opcode 0xfc %#x", sub)
	}
	for ; indices > 0 && ok; indices-- {
		pos, ok = skipLEB(b, pos, end, maxLen32)
	}
	if !ok {
		return pos, malformed(at, "truncated immediate of opcode 0xfc %#x", sub)
	}
	return pos, nil
}

// skipSIMD skips a 0xFD-prefixed instruction; pos is just past the prefix.
//
// The spec encodes the sub-opcode as a u32 LEB128, but wazero reads a single
// byte. The two agree for canonical encodings: below 0x80 both read one byte,
// and from 0x80 to 0xFF the canonical encoding is the opcode byte followed by
// 0x01, which wazero decodes as the opcode followed by a nop. Any other
// encoding would be read differently by the spec and by wazero, so it is
// refused rather than guessed.
func skipSIMD(b []byte, at, pos, end int) (int, error) {
	if pos >= end {
		return pos, malformed(at, "truncated 0xfd sub-opcode")
	}
	sub := b[pos]
	pos++
	if sub >= 0x80 {
		if pos >= end || b[pos] != 0x01 {
			return pos, unsupported(at, "0xfd sub-opcode not encoded as wazero reads it")
		}
		pos++
	}
	var ok bool
	switch vecImm[sub] {
	case vecNone:
		return pos, nil
	case vecMemArg:
		pos, ok = skipMemArg(b, pos, end)
	case vecMemLane:
		if pos, ok = skipMemArg(b, pos, end); ok {
			pos++
			ok = pos <= end
		}
	case vecBytes16:
		pos += 16
		ok = pos <= end
	case vecLane:
		pos++
		ok = pos <= end
	default:
		return pos, unsupported(at, "unknown opcode 0xfd %#x", sub)
	}
	if !ok {
		return pos, malformed(at, "truncated immediate of opcode 0xfd %#x", sub)
	}
	return pos, nil
}

// skipAtomic skips a 0xFE-prefixed instruction; pos is just past the prefix.
// Like the SIMD sub-opcode, wazero reads this one as a single byte; all
// atomic opcodes are below 0x80, where that agrees with the spec.
func skipAtomic(b []byte, at, pos, end int) (int, error) {
	if pos >= end {
		return pos, malformed(at, "truncated 0xfe sub-opcode")
	}
	sub := b[pos]
	pos++
	var ok bool
	switch {
	case sub == 0x03: // atomic.fence: one reserved byte
		pos++
		ok = pos <= end
	case sub <= 0x02, sub >= 0x10 && sub <= 0x4e: // notify, wait32/64, loads, stores, rmw
		pos, ok = skipMemArg(b, pos, end)
	default:
		return pos, unsupported(at, "unknown opcode 0xfe %#x", sub)
	}
	if !ok {
		return pos, malformed(at, "truncated immediate of opcode 0xfe %#x", sub)
	}
	return pos, nil
}
