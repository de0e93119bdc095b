// Package wasmbin reads the parts of a WebAssembly binary that Ferry needs
// without compiling it: the import and export sections, the memory limits and
// the custom section names. It is deliberately small and defensive: every
// length is bounds-checked, so it is safe on untrusted input (it is fuzzed).
//
// It does not validate function bodies; the engine does that when it
// compiles the module. Use it for cheap inspection (ABI shape, capabilities,
// memory needs) before paying for compilation.
package wasmbin

import (
	"errors"
	"fmt"
)

// Magic and Version open every WebAssembly binary module.
var (
	Magic   = []byte{0x00, 'a', 's', 'm'}
	Version = []byte{0x01, 0x00, 0x00, 0x00}
)

// ErrNotWasm is returned when the input does not start with the wasm magic.
var ErrNotWasm = errors.New("not a WebAssembly module (bad magic number)")

// ErrMalformed is wrapped by every error about a module that starts like wasm
// but cannot be read: truncated sections, bad lengths, unknown kinds.
var ErrMalformed = errors.New("malformed WebAssembly module")

// ExternKind is the kind of an import or export.
type ExternKind byte

// The extern kinds of the core specification.
const (
	KindFunc   ExternKind = 0
	KindTable  ExternKind = 1
	KindMemory ExternKind = 2
	KindGlobal ExternKind = 3
	KindTag    ExternKind = 4
)

func (k ExternKind) String() string {
	switch k {
	case KindFunc:
		return "func"
	case KindTable:
		return "table"
	case KindMemory:
		return "memory"
	case KindGlobal:
		return "global"
	case KindTag:
		return "tag"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// ValType is a value type byte.
type ValType byte

// Value types.
const (
	I32       ValType = 0x7f
	I64       ValType = 0x7e
	F32       ValType = 0x7d
	F64       ValType = 0x7c
	V128      ValType = 0x7b
	FuncRef   ValType = 0x70
	ExternRef ValType = 0x6f
)

func (v ValType) String() string {
	switch v {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case V128:
		return "v128"
	case FuncRef:
		return "funcref"
	case ExternRef:
		return "externref"
	}
	return fmt.Sprintf("type(0x%x)", byte(v))
}

// FuncType is a function signature.
type FuncType struct {
	Params  []ValType
	Results []ValType
}

func (f FuncType) String() string {
	s := "("
	for i, p := range f.Params {
		if i > 0 {
			s += ", "
		}
		s += p.String()
	}
	s += ")"
	switch len(f.Results) {
	case 0:
	case 1:
		s += " -> " + f.Results[0].String()
	default:
		s += " -> ("
		for i, r := range f.Results {
			if i > 0 {
				s += ", "
			}
			s += r.String()
		}
		s += ")"
	}
	return s
}

// Equal reports whether two signatures are identical.
func (f FuncType) Equal(o FuncType) bool {
	if len(f.Params) != len(o.Params) || len(f.Results) != len(o.Results) {
		return false
	}
	for i := range f.Params {
		if f.Params[i] != o.Params[i] {
			return false
		}
	}
	for i := range f.Results {
		if f.Results[i] != o.Results[i] {
			return false
		}
	}
	return true
}

// Limits are the page limits of a memory or table.
type Limits struct {
	Min    uint64
	Max    uint64
	HasMax bool
	Shared bool
	Is64   bool
}

// Import is one entry of the import section.
type Import struct {
	Module string
	Name   string
	Kind   ExternKind
	// Type is set for function imports.
	Type *FuncType
	// Memory is set for memory imports.
	Memory *Limits
}

// Export is one entry of the export section.
type Export struct {
	Name  string
	Kind  ExternKind
	Index uint32
	// Type is set for function exports whose type could be resolved.
	Type *FuncType
}

// Module is what Parse reads from a binary.
type Module struct {
	Types    []FuncType
	Imports  []Import
	Exports  []Export
	Memories []Limits // defined (not imported) memories
	// Customs holds the names of custom sections, in order.
	Customs []string
	// HasStart reports whether the module has a start section, which runs at
	// instantiation before any export can be called.
	HasStart bool

	funcTypeIdx []uint32 // type index per function, imports first
}

// Export returns the export with the given name.
func (m *Module) Export(name string) (Export, bool) {
	for _, e := range m.Exports {
		if e.Name == name {
			return e, true
		}
	}
	return Export{}, false
}

// Limits bound what Parse accepts, so a hostile module cannot make the parser
// allocate unboundedly. The defaults fit any real module.
const (
	maxEntries = 1 << 20
	maxName    = 1 << 16
)

// sectionRank is the canonical order of the known sections (tag, 13, sits
// between memory and global; data count, 12, between element and code).
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// Parse reads a module binary. It returns ErrNotWasm when the magic number is
// absent, and an error wrapping ErrMalformed for anything else it cannot read.
func Parse(b []byte) (*Module, error) {
	if len(b) < 8 || string(b[:4]) != string(Magic) {
		return nil, ErrNotWasm
	}
	if string(b[4:8]) != string(Version) {
		return nil, fmt.Errorf("%w: unsupported binary version %x (only version 1 modules are supported; components are not)", ErrMalformed, b[4:8])
	}
	r := &reader{b: b, off: 8}
	m := &Module{}
	lastRank := 0
	for r.off < len(r.b) {
		start := r.off
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("section %d at offset %d: %w", id, start, err)
		}
		if uint64(size) > uint64(len(r.b)-r.off) {
			return nil, fmt.Errorf("%w: section %d at offset %d claims %d bytes, only %d remain (truncated module?)", ErrMalformed, id, start, size, len(r.b)-r.off)
		}
		body := &reader{b: r.b[r.off : r.off+int(size)], base: r.off}
		r.off += int(size)
		if id != 0 {
			// Known sections appear at most once, in canonical order; the
			// function section's meaning depends on the imports before it.
			rank, ok := sectionRank[id]
			if ok && rank <= lastRank {
				return nil, fmt.Errorf("%w: section %d at offset %d is out of order or repeated", ErrMalformed, id, start)
			}
			lastRank = rank
		}
		if err := m.section(id, body); err != nil {
			return nil, fmt.Errorf("section %d at offset %d: %w", id, start, err)
		}
	}
	for i := range m.Exports {
		e := &m.Exports[i]
		if e.Kind != KindFunc || int(e.Index) >= len(m.funcTypeIdx) {
			continue
		}
		if ti := m.funcTypeIdx[e.Index]; int(ti) < len(m.Types) {
			t := m.Types[ti]
			e.Type = &t
		}
	}
	return m, nil
}

func (m *Module) section(id byte, r *reader) error {
	switch id {
	case 0:
		name, err := r.name()
		if err != nil {
			return err
		}
		m.Customs = append(m.Customs, name)
		return nil
	case 1:
		return m.typeSection(r)
	case 2:
		return m.importSection(r)
	case 3:
		n, err := r.count()
		if err != nil {
			return err
		}
		for range n {
			ti, err := r.u32()
			if err != nil {
				return err
			}
			m.funcTypeIdx = append(m.funcTypeIdx, ti)
		}
		return nil
	case 5:
		n, err := r.count()
		if err != nil {
			return err
		}
		for range n {
			l, err := r.limits()
			if err != nil {
				return err
			}
			m.Memories = append(m.Memories, l)
		}
		return nil
	case 7:
		return m.exportSection(r)
	case 8:
		m.HasStart = true
		return nil
	case 4, 6, 9, 10, 11, 12, 13:
		return nil // not needed for inspection; the engine validates them
	}
	return fmt.Errorf("%w: unknown section id %d", ErrMalformed, id)
}

func (m *Module) typeSection(r *reader) error {
	n, err := r.count()
	if err != nil {
		return err
	}
	for i := range n {
		form, err := r.byte()
		if err != nil {
			return err
		}
		if form != 0x60 {
			return fmt.Errorf("%w: type %d: unsupported type form 0x%x", ErrMalformed, i, form)
		}
		var ft FuncType
		for _, dst := range []*[]ValType{&ft.Params, &ft.Results} {
			k, err := r.count()
			if err != nil {
				return err
			}
			for range k {
				v, err := r.byte()
				if err != nil {
					return err
				}
				*dst = append(*dst, ValType(v))
			}
		}
		m.Types = append(m.Types, ft)
	}
	return nil
}

func (m *Module) importSection(r *reader) error {
	n, err := r.count()
	if err != nil {
		return err
	}
	for range n {
		var im Import
		if im.Module, err = r.name(); err != nil {
			return err
		}
		if im.Name, err = r.name(); err != nil {
			return err
		}
		k, err := r.byte()
		if err != nil {
			return err
		}
		im.Kind = ExternKind(k)
		switch im.Kind {
		case KindFunc:
			ti, err := r.u32()
			if err != nil {
				return err
			}
			m.funcTypeIdx = append(m.funcTypeIdx, ti)
			if int(ti) >= len(m.Types) {
				return fmt.Errorf("%w: import %s.%s uses type %d of %d", ErrMalformed, im.Module, im.Name, ti, len(m.Types))
			}
			t := m.Types[ti]
			im.Type = &t
		case KindTable:
			if _, err := r.byte(); err != nil {
				return err
			}
			if _, err := r.limits(); err != nil {
				return err
			}
		case KindMemory:
			l, err := r.limits()
			if err != nil {
				return err
			}
			im.Memory = &l
		case KindGlobal:
			if _, err := r.byte(); err != nil {
				return err
			}
			if _, err := r.byte(); err != nil {
				return err
			}
		case KindTag:
			if _, err := r.byte(); err != nil {
				return err
			}
			if _, err := r.u32(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: import %s.%s has unknown kind %d", ErrMalformed, im.Module, im.Name, k)
		}
		m.Imports = append(m.Imports, im)
	}
	return nil
}

func (m *Module) exportSection(r *reader) error {
	n, err := r.count()
	if err != nil {
		return err
	}
	for range n {
		var e Export
		if e.Name, err = r.name(); err != nil {
			return err
		}
		k, err := r.byte()
		if err != nil {
			return err
		}
		if k > byte(KindTag) {
			return fmt.Errorf("%w: export %q has unknown kind %d", ErrMalformed, e.Name, k)
		}
		e.Kind = ExternKind(k)
		if e.Index, err = r.u32(); err != nil {
			return err
		}
		m.Exports = append(m.Exports, e)
	}
	return nil
}

type reader struct {
	b    []byte
	off  int
	base int // offset of b within the whole module, for messages
}

func (r *reader) errEOF() error {
	return fmt.Errorf("%w: unexpected end at offset %d", ErrMalformed, r.base+r.off)
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, r.errEOF()
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) uleb(maxBits uint) (uint64, error) {
	var v uint64
	var shift uint
	for {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift >= maxBits {
			return 0, fmt.Errorf("%w: LEB128 integer too long at offset %d", ErrMalformed, r.base+r.off)
		}
		if shift+7 > maxBits && uint64(c&0x7f)>>(maxBits-shift) != 0 {
			// The last byte may only carry the bits that still fit.
			return 0, fmt.Errorf("%w: LEB128 integer overflows %d bits at offset %d", ErrMalformed, maxBits, r.base+r.off)
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
		shift += 7
	}
}

func (r *reader) u32() (uint32, error) {
	v, err := r.uleb(32)
	return uint32(v), err
}

// count reads a vector length and rejects ones that cannot fit in what is
// left of the section (every entry takes at least one byte).
func (r *reader) count() (uint32, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if n > maxEntries || int(n) > len(r.b)-r.off {
		return 0, fmt.Errorf("%w: vector of %d entries at offset %d does not fit", ErrMalformed, n, r.base+r.off)
	}
	return n, nil
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	if n > maxName || int(n) > len(r.b)-r.off {
		return "", fmt.Errorf("%w: name of %d bytes at offset %d does not fit", ErrMalformed, n, r.base+r.off)
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s, nil
}

func (r *reader) limits() (Limits, error) {
	flags, err := r.byte()
	if err != nil {
		return Limits{}, err
	}
	if flags > 0x07 {
		return Limits{}, fmt.Errorf("%w: bad limits flags 0x%x at offset %d", ErrMalformed, flags, r.base+r.off)
	}
	l := Limits{HasMax: flags&1 != 0, Shared: flags&2 != 0, Is64: flags&4 != 0}
	bits := uint(32)
	if l.Is64 {
		bits = 64
	}
	if l.Min, err = r.uleb(bits); err != nil {
		return Limits{}, err
	}
	if l.HasMax {
		if l.Max, err = r.uleb(bits); err != nil {
			return Limits{}, err
		}
	}
	return l, nil
}
