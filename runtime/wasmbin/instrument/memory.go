package instrument

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/ferryrun/ferry/runtime/wasmbin"
)

// ErrMemoryTooSmall is returned by CapMemory when the module's memory starts
// larger than the cap: no maximum could hold it.
var ErrMemoryTooSmall = errors.New("memory cap below the module's initial memory")

// maxMemoryPages is the most pages a 32-bit memory can have (4 GiB).
const maxMemoryPages = 1 << 16

// CapMemory returns a copy of a wasm binary whose memory 0, defined by the
// module, has a maximum of at most maxPages 64 KiB pages: the smaller of its
// own maximum, if any, and maxPages. A cap above 65536 pages (4 GiB, the
// most a 32-bit memory can have) is taken as 65536. The shared flag is kept.
// A module without a memory is returned unchanged (as a copy), and so is one
// whose maximum is already within the cap. Only the memory section is
// re-encoded. The input is not modified.
//
// Errors wrap ErrMalformed for input that is not a well-formed module,
// ErrMemoryTooSmall when the memory's minimum is above the cap, and
// ErrUnsupported when memory 0 is imported (the importer sets its limits) or
// is a 64-bit memory.
func CapMemory(wasm []byte, maxPages uint32) ([]byte, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], wasmbin.Magic) {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, wasmbin.ErrNotWasm)
	}
	if !bytes.Equal(wasm[4:8], wasmbin.Version) {
		return nil, fmt.Errorf("%w: unsupported binary version % x", ErrMalformed, wasm[4:8])
	}
	maxPages = min(maxPages, maxMemoryPages)
	secs, err := splitSections(wasm)
	if err != nil {
		return nil, err
	}
	var mem *section
	for i := range secs {
		switch s := &secs[i]; s.id {
		case secImport:
			imported, err := countImports(wasm, s)
			if err != nil {
				return nil, err
			}
			if imported.memories > 0 {
				return nil, unsupported(s.start, "memory 0 is imported")
			}
		case secMemory:
			mem = s
		}
	}
	if mem == nil {
		return bytes.Clone(wasm), nil
	}

	n, pos, ok := readU32(wasm, mem.content, mem.end)
	if !ok {
		return nil, malformed(mem.content, "memory count")
	}
	if n == 0 {
		if pos != mem.end {
			return nil, malformed(pos, "memory section has %d trailing bytes", mem.end-pos)
		}
		return bytes.Clone(wasm), nil
	}
	// Memory 0: flags, minimum, optional maximum.
	first := pos
	if pos >= mem.end {
		return nil, malformed(pos, "memory 0 limits")
	}
	flags := wasm[pos]
	if flags&0x04 != 0 {
		return nil, unsupported(first, "64-bit memory (limits flags %#x)", flags)
	}
	if flags > 0x03 {
		return nil, unsupported(first, "unknown memory limits flags %#x", flags)
	}
	minimum, afterMin, ok := readU32(wasm, pos+1, mem.end)
	if !ok {
		return nil, malformed(first, "memory 0 minimum")
	}
	pos = afterMin
	hasMax := flags&0x01 != 0
	maximum := uint32(math.MaxUint32)
	if hasMax {
		if maximum, pos, ok = readU32(wasm, pos, mem.end); !ok {
			return nil, malformed(first, "memory 0 maximum")
		}
	}
	rest := pos // the other memories, if any
	for i := uint32(1); i < n; i++ {
		if pos, ok = skipLimits(wasm, pos, mem.end); !ok {
			return nil, malformed(pos, "memory %d limits", i)
		}
	}
	if pos != mem.end {
		return nil, malformed(pos, "memory section has %d trailing bytes", mem.end-pos)
	}
	if minimum > maxPages {
		return nil, fmt.Errorf("%w: the module's memory starts at %d pages (%s MiB), above the cap of %d pages (%s MiB)",
			ErrMemoryTooSmall, minimum, pagesMiB(minimum), maxPages, pagesMiB(maxPages))
	}
	if hasMax && maximum <= maxPages {
		return bytes.Clone(wasm), nil
	}

	var content []byte
	content = appendULEB(content, uint64(n))
	content = append(content, flags|0x01)                // has maximum; shared kept
	content = append(content, wasm[first+1:afterMin]...) // the minimum as it was encoded
	content = appendULEB(content, uint64(maxPages))      // the new maximum
	content = append(content, wasm[rest:mem.end]...)     // the other memories
	out := make([]byte, 0, len(wasm)+len(content)-(mem.end-mem.content)+5)
	out = append(out, wasm[:mem.start]...)
	out = append(out, secMemory)
	out = appendULEB(out, uint64(len(content)))
	out = append(out, content...)
	return append(out, wasm[mem.end:]...), nil
}

// pagesMiB formats a number of 64 KiB pages in MiB.
func pagesMiB(pages uint32) string {
	return strconv.FormatFloat(float64(pages)/16, 'f', -1, 64)
}
