package instrument

// LEB128 helpers. They work on a byte slice with an explicit end so that
// every read stays inside the region (section or function body) it belongs
// to: an immediate that runs past its body is malformed even if more bytes
// follow in the file. They report success with a bool rather than an error
// because they run once per immediate on the hot path; callers turn a false
// into an error that carries the offset.

// Maximum encoded lengths, as the spec bounds them. A longer encoding is
// malformed even if its value would fit.
const (
	maxLen32 = 5  // u32, s32 and s33
	maxLen64 = 10 // s64
)

// skipLEB returns the offset just past the LEB128 number that starts at
// b[pos], which must end before end and use at most max bytes. It only
// measures: range checks on the value are the validator's business, and the
// length is what decides where the next instruction starts.
func skipLEB(b []byte, pos, end, max int) (int, bool) {
	if end > len(b) {
		return pos, false
	}
	for i := 0; i < max; i++ {
		if pos >= end {
			return pos, false
		}
		c := b[pos]
		pos++
		if c < 0x80 {
			return pos, true
		}
	}
	return pos, false
}

// readU32 decodes an unsigned LEB128 u32 at b[pos:end]. It rejects values
// that do not fit in 32 bits, like wazero does, because the values it
// returns are counts and sizes that drive further parsing.
func readU32(b []byte, pos, end int) (uint32, int, bool) {
	if end > len(b) {
		return 0, pos, false
	}
	var v uint32
	for i := 0; i < maxLen32; i++ {
		if pos >= end {
			return 0, pos, false
		}
		c := b[pos]
		pos++
		if i == maxLen32-1 && c&0xf0 != 0 {
			// The fifth byte carries bits 28..31 only; anything above
			// (or a continuation bit) would overflow.
			return 0, pos, false
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, pos, true
		}
	}
	return 0, pos, false
}

// readS33 decodes a signed LEB128 number of at most 33 bits (the encoding of
// block types and heap types) at b[pos:end]. It mirrors wazero's decoder bit
// for bit (mask to 33 bits, then sign-extend from bit 32) because the value
// decides whether a heap type follows, so any disagreement with wazero about
// it would shift every later instruction boundary.
func readS33(b []byte, pos, end int) (int64, int, bool) {
	if end > len(b) {
		return 0, pos, false
	}
	const mask33 = 1<<33 - 1
	var v int64
	var c byte
	shift := 0
	for i := 0; ; i++ {
		if i == maxLen32 || pos >= end {
			// wazero tolerates a fifth byte with its continuation bit
			// set; rejecting it is stricter, hence safe.
			return 0, pos, false
		}
		c = b[pos]
		pos++
		v |= int64(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			break
		}
	}
	if shift < 33 && c&0x40 != 0 {
		v |= mask33 << shift
	}
	v &= mask33
	if v&(1<<32) != 0 {
		v -= 1 << 33
	}
	return v, pos, true
}

// appendULEB appends v as canonical (shortest) unsigned LEB128.
func appendULEB(out []byte, v uint64) []byte {
	for v >= 0x80 {
		out = append(out, byte(v)|0x80)
		v >>= 7
	}
	return append(out, byte(v))
}

// ulebLen is the length of the canonical unsigned LEB128 encoding of v.
func ulebLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
