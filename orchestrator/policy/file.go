package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// MaxFileSize is the largest policy file Load and Parse accept.
const MaxFileSize = 1 << 20

// Path is where the policy lives: $XDG_CONFIG_HOME/tangle/deployment-policy.json
// when XDG_CONFIG_HOME is an absolute path, else
// ~/.config/tangle/deployment-policy.json.
func Path() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "tangle", "deployment-policy.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("policy path: %w", err)
	}
	return filepath.Join(home, ".config", "tangle", "deployment-policy.json"), nil
}

// Load reads the policy at path. A missing file gives Default and
// exists=false; a malformed or invalid one is an error naming the file,
// the line and column, and the field.
func Load(path string) (p *Policy, exists bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, true, fmt.Errorf("read policy %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, true, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize), Err: ErrSyntax}
	}
	p, err = Parse(path, b)
	return p, true, err
}

// Parse decodes and validates a policy; file names it in errors.
func Parse(file string, data []byte) (*Policy, error) {
	p, err := decode(file, data)
	if err != nil {
		return nil, err
	}
	if err := p.validate(file, data); err != nil {
		return nil, err
	}
	return p, nil
}

// decode turns the bytes into a Policy without validating it.
func decode(file string, data []byte) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize), Err: ErrSyntax}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: file, Line: 1, Col: 1, Msg: "empty file; delete it to use the defaults", Err: ErrSyntax}
	}
	pos := func(off int64) (int, int) { return lineCol(data, off) }
	p := &Policy{}
	if err := json.Unmarshal(data, p); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		var fe *fieldError
		e := &Error{File: file, Err: ErrSyntax}
		switch {
		case errors.As(err, &se):
			// Offset counts the offending byte; point at it.
			e.Line, e.Col = pos(max(se.Offset-1, 0))
			e.Msg = se.Error()
		case errors.As(err, &te):
			e.Line, e.Col = pos(te.Offset)
			e.Field = te.Field
			e.Msg = typeMsg(te)
			e.Err = ErrInvalid
		case errors.As(err, &fe):
			e.Field, e.Msg, e.Err = fe.field, fe.msg, ErrInvalid
			// The document's start: where a problem with the whole file
			// is, and what offsets of the top-level value count from.
			start := int64(len(data) - len(bytes.TrimLeft(data, " \t\r\n")))
			if fe.field == "" {
				e.Line, e.Col = pos(start)
				break
			}
			where := locate(data)
			near := int64(-1)
			if fe.off >= 0 {
				if base, ok := where[fe.section]; ok {
					near = base + fe.off
				}
			}
			if path, off, ok := find(where, fe.field, near); ok {
				e.Field = path
				e.Line, e.Col = pos(off)
			}
		default:
			e.Msg = err.Error()
		}
		return nil, e
	}
	return p, nil
}

func jsonType(goKind string) string {
	switch goKind {
	case "int", "int64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	}
	return "an object"
}

func typeMsg(te *json.UnmarshalTypeError) string {
	return fmt.Sprintf("want %s, found a JSON %s", jsonType(te.Type.Kind().String()), te.Value)
}

// fieldError is a decoding error that knows its field. off, when not -1, is
// where in the section's value the error was found: it tells apart the
// entries of an array, whose fields encoding/json names without indices.
type fieldError struct {
	field, msg string
	section    string // top-level key off counts from
	off        int64
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// MarshalJSON writes the sections Ferry owns and every other section as it
// was read.
func (p *Policy) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(p.other)+2)
	for k, v := range p.other {
		m[k] = v
	}
	m["serverless"] = &p.Serverless
	if !p.Ferry.empty() {
		m["ferry"] = p.Ferry
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a policy. A missing or null serverless section, or a
// missing field in it, takes the Tangle manager's default.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return prefix(err, "")
	}
	if top == nil {
		return &fieldError{msg: "the policy must be a JSON object, not null", off: -1}
	}
	*p = *Default()
	if raw, ok := top["serverless"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &p.Serverless); err != nil {
			return prefix(err, "serverless")
		}
	}
	if raw, ok := top["ferry"]; ok && !isNull(raw) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var e Extensions
		if err := dec.Decode(&e); err != nil {
			if name, ok := unknownField(err); ok {
				return &fieldError{field: findUnknown(raw, "ferry", name), msg: "unknown field (docs/policy.md lists the fields)", off: -1}
			}
			return prefix(err, "ferry")
		}
		p.Ferry = &e
		p.compact()
	}
	delete(top, "serverless")
	delete(top, "ferry")
	if len(top) > 0 {
		p.other = top
	}
	return nil
}

// prefix puts a section name in front of the field of a type error (whose
// offset is relative to the section, so locate finds the position again).
func prefix(err error, section string) error {
	join := func(field string) string {
		if section == "" || field == "" {
			return section + field
		}
		return section + "." + field
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &fieldError{field: join(te.Field), msg: typeMsg(te), section: section, off: te.Offset}
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		// fe's offset, if any, counts from a value inside the section.
		return &fieldError{field: join(fe.field), msg: fe.msg, off: -1}
	}
	return fmt.Errorf("%s: %w", section, err)
}

var unknownFieldRE = regexp.MustCompile(`^json: unknown field "(.*)"$`)

func unknownField(err error) (string, bool) {
	m := unknownFieldRE.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	return m[1], true
}

// findUnknown finds the full path of an unknown key name inside the ferry
// section: the first key so named (encoding/json reports the first) where
// Extensions has no such field. A key of the same name where it is a field
// ("region" in a provider) is not it.
func findUnknown(raw []byte, section, name string) string {
	best, bestOff := "", int64(-1)
	for path, off := range locate(raw) {
		if path != name && !strings.HasSuffix(path, "."+name) {
			continue
		}
		if knownField(reflect.TypeFor[Extensions](), indexRE.ReplaceAllString(path, "")) {
			continue
		}
		if bestOff < 0 || off < bestOff {
			best, bestOff = path, off
		}
	}
	if bestOff < 0 {
		return section + "." + name
	}
	return section + "." + best
}

// knownField reports whether path ("providers.limits.memory_mb", without
// indices) names a field of t, matching names as encoding/json does:
// without regard to case.
func knownField(t reflect.Type, path string) bool {
	for _, name := range strings.Split(path, ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return false
		}
		found := false
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "" {
				tag = f.Name
			}
			if f.IsExported() && tag != "-" && strings.EqualFold(tag, name) {
				t, found = f.Type, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// MarshalJSON writes the section with the keys Ferry does not know kept.
func (s *Serverless) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(s.other)+5)
	for k, v := range s.other {
		m[k] = v
	}
	m["enable"] = s.Enable
	m["provider"] = s.Provider
	m["default_memory_mb"] = s.DefaultMemoryMB
	m["default_timeout_secs"] = s.DefaultTimeoutSecs
	m["fallback_to_vm"] = s.FallbackToVM
	return json.Marshal(m)
}

// UnmarshalJSON reads the section over the defaults already in s. Keys
// match exactly, as the Tangle CLI reads them: encoding/json alone would
// also take "ENABLE" for "enable", a key the Tangle CLI ignores (and Ferry
// keeps).
func (s *Serverless) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	var provider *TangleProvider
	for _, f := range []struct {
		key string
		dst any // null leaves it as it is
	}{
		{"enable", &s.Enable}, {"provider", &provider}, {"default_memory_mb", &s.DefaultMemoryMB},
		{"default_timeout_secs", &s.DefaultTimeoutSecs}, {"fallback_to_vm", &s.FallbackToVM},
	} {
		raw, ok := all[f.key]
		if !ok {
			continue
		}
		delete(all, f.key)
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return prefix(err, f.key)
		}
	}
	if provider != nil {
		s.Provider = *provider
		// The Tangle CLI's own default for a Lambda without a region.
		if s.Provider.Type == AWSLambda && s.Provider.Region == "" {
			s.Provider.Region = DefaultAWSRegion
		}
	}
	if len(all) > 0 {
		s.other = all
	} else {
		s.other = nil
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// Encode is the file's bytes: indented JSON and a final newline.
func (p *Policy) Encode() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	out.WriteByte('\n')
	// Load refuses files over MaxFileSize, and indenting can triple a
	// compact file: write it compact then, and refuse what still is.
	if out.Len() > MaxFileSize {
		out.Reset()
		out.Write(b)
		out.WriteByte('\n')
	}
	if out.Len() > MaxFileSize {
		return nil, fmt.Errorf("encode policy: %d bytes, more than the %d a policy file may have", out.Len(), MaxFileSize)
	}
	return out.Bytes(), nil
}

// Save validates p and writes it to path atomically: a temporary file in
// the same directory, synced, then renamed over the old one, mode 0600. On
// any failure the old file is left as it was.
func Save(path string, p *Policy) error {
	if err := p.validate(path, nil); err != nil {
		return err
	}
	b, err := p.Encode()
	if err != nil {
		return err
	}
	return writeAtomic(path, b, os.Rename)
}

func writeAtomic(path string, b []byte, rename func(old, new string) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write policy: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write policy: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write policy %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write policy %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write policy %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write policy %s: %w", path, err)
	}
	if err := rename(tmp, path); err != nil {
		return fmt.Errorf("write policy %s: %w", path, err)
	}
	// Make the rename itself durable; a failure here loses nothing.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// locate maps every value's path ("serverless.provider.type",
// "ferry.providers[1].endpoint") to its byte offset in data. It stops at
// the first syntax error; what it found so far stays.
func locate(data []byte) map[string]int64 {
	out := map[string]int64{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		path    string
		array   bool
		index   int
		key     string // the key whose value comes next (objects)
		wantKey bool   // the next token is a key (objects)
	}
	var stack []frame
	valueStart := func() int64 {
		off := dec.InputOffset()
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n:,", data[off]) >= 0 {
			off++
		}
		return off
	}
	child := func() (string, bool) {
		if len(stack) == 0 {
			return "", true
		}
		top := &stack[len(stack)-1]
		if top.array {
			p := top.path + "[" + strconv.Itoa(top.index) + "]"
			top.index++
			return p, true
		}
		if top.wantKey {
			return "", false
		}
		p := top.key
		if top.path != "" {
			p = top.path + "." + top.key
		}
		top.key, top.wantKey = "", true
		return p, true
	}
	for {
		start := valueStart()
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				path, _ := child()
				if path != "" {
					out[path] = start
				}
				stack = append(stack, frame{path: path, array: t == '[', wantKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		default:
			if top := len(stack) - 1; top >= 0 && stack[top].wantKey {
				if s, ok := t.(string); ok {
					stack[top].key, stack[top].wantKey = s, false
					continue
				}
			}
			if path, ok := child(); ok && path != "" {
				out[path] = start
			}
		}
	}
}

// find looks a field up in locate's map. encoding/json names fields without
// array indices ("ferry.providers.region"), so when the exact path is not
// there an element path that matches without its indices is used: the last
// one that starts at or before near, the offset where the error was found,
// or the first one when near is -1 or before all of them.
func find(where map[string]int64, field string, near int64) (string, int64, bool) {
	if off, ok := where[field]; ok {
		return field, off, true
	}
	first, firstPath := int64(-1), ""
	last, lastPath := int64(-1), ""
	for path, off := range where {
		// A field is never an array element itself.
		if strings.HasSuffix(path, "]") || indexRE.ReplaceAllString(path, "") != field {
			continue
		}
		if first < 0 || off < first {
			first, firstPath = off, path
		}
		if near >= 0 && off <= near && off > last {
			last, lastPath = off, path
		}
	}
	if last >= 0 {
		return lastPath, last, true
	}
	return firstPath, first, first >= 0
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}
