package blueprint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// document is the whole file: everything lives under [blueprint].
type document struct {
	Blueprint Blueprint `toml:"blueprint"`
}

// Load reads, parses and validates the blueprint.toml at path, then checks
// it against the blueprint folder (the file's directory): every job source
// and sample file must exist inside it, and a job without a language gets
// the one InferLanguage finds. Problems are reported as Parse does, all
// joined, each prefixed with path.
func Load(path string) (*Blueprint, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	b, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: blueprint folder: %w", path, err)
	}
	b.Dir = dir
	if err := b.checkFiles(); err != nil {
		return nil, inFile(path, err)
	}
	return b, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read blueprint: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read blueprint %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, MaxFileSize)
	}
	return data, nil
}

// Parse decodes and validates a blueprint.toml held in data; name is the
// file name used in messages. It touches no file system: Dir stays empty,
// languages are not inferred and samples are not checked (Load does that).
//
// Decoding is strict. A TOML syntax error, an unknown key or a value of the
// wrong type is a *PosError printed as "name:line:column: ..."; every
// unknown key is reported, not just the first. A document that decodes is
// then validated, and each problem Validate finds is reported prefixed with
// name. All problems come back joined with errors.Join.
func Parse(name string, data []byte) (*Blueprint, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d", name, ErrTooLarge, len(data), MaxFileSize)
	}
	// First as plain TOML, so that every error here is the document's own
	// (syntax, duplicate keys, out-of-range numbers), then strictly against
	// the schema, so that every error there is the schema's.
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		return nil, decodeError(name, err, ErrSyntax)
	}
	var doc document
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, decodeError(name, err, ErrWrongType)
	}
	b := &doc.Blueprint
	for n, j := range b.Jobs {
		j.Name = n
		b.Jobs[n] = j
	}
	if err := b.Validate(); err != nil {
		return nil, inFile(name, err)
	}
	return b, nil
}

// decodeError turns go-toml's errors into *PosErrors. kind is the sentinel
// of a plain *toml.DecodeError: ErrSyntax when decoding into a map,
// ErrWrongType when decoding into the schema.
func decodeError(name string, err error, kind error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make([]error, 0, len(strict.Errors))
		for i := range strict.Errors {
			de := &strict.Errors[i]
			line, col := de.Position()
			key := formatKey(de.Key())
			msg := fmt.Sprintf("unknown key %q", key)
			if s := suggest(de.Key()); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, &PosError{File: name, Line: line, Column: col, Key: key, Msg: msg, Err: ErrUnknownKey, Cause: de})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return fmt.Errorf("%s: %w: %w", name, kind, err)
	}
	line, col := de.Position()
	key := formatKey(de.Key())
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	switch {
	case kind == ErrSyntax:
		msg = "TOML syntax error: " + msg
	case typeMismatchRE.MatchString(msg):
		m := typeMismatchRE.FindStringSubmatch(msg)
		got, target := m[1], m[2] // target: the Go type decoded into
		msg = fmt.Sprintf("wrong type for %q: got %s", key, got)
		if want := schemaType(de.Key()); want != nil {
			if want.Kind() == reflect.Slice && !strings.HasPrefix(target, "[]") {
				// An element of the array, not the array itself.
				msg = fmt.Sprintf("wrong type for %q: got %s in the array, want %s", key, got, describeType(want))
			} else {
				msg += ", want " + describeType(want)
			}
		}
	default:
		msg = fmt.Sprintf("wrong type for %q: %s", key, msg)
	}
	return &PosError{File: name, Line: line, Column: col, Key: key, Msg: msg, Err: kind, Cause: de}
}

var (
	typeMismatchRE = regexp.MustCompile(`^cannot decode TOML (.+?) into (?:struct field \S+ of type )?(\S+)$`)
	bareKeyRE      = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// formatKey writes a key as TOML would: parts joined by dots, quoted when
// they are not bare keys.
func formatKey(k toml.Key) string {
	parts := make([]string, len(k))
	for i, p := range k {
		parts[i] = quoteKeyPart(p)
	}
	return strings.Join(parts, ".")
}

func quoteKeyPart(p string) string {
	if bareKeyRE.MatchString(p) {
		return p
	}
	return strconv.Quote(p)
}

// schemaType follows key through the schema and returns the Go type of what
// it names, or nil when the schema has no such key.
func schemaType(key toml.Key) reflect.Type {
	t := reflect.TypeFor[document]()
	for _, part := range key {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByTag(t, part)
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
	}
	return t
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("toml"), ","); tag == name && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// describeType names a schema type in TOML's words.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array of " + describeType(t.Elem()) + "s"
	case reflect.Struct, reflect.Map:
		return "table"
	}
	return t.String()
}

// suggest returns the known key closest to an unknown key's last part, if
// one is close enough to be a typo.
func suggest(key toml.Key) string {
	if len(key) == 0 {
		return ""
	}
	parent := schemaType(key[:len(key)-1])
	if parent == nil || parent.Kind() != reflect.Struct {
		return ""
	}
	unknown := key[len(key)-1]
	best, bestDist := "", 3 // at most two edits
	for i := range parent.NumField() {
		tag, _, _ := strings.Cut(parent.Field(i).Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if d := editDistance(unknown, tag); d < bestDist && d < len(tag) {
			best, bestDist = tag, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes; it
// gives up (returning a large value) on long strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// checkFiles checks the blueprint against its folder b.Dir: each job's
// source exists (and its language is inferred when not set), and each sample
// file exists and is a regular file. Paths are resolved inside the folder
// (os.Root), so a symbolic link cannot lead out of it.
func (b *Blueprint) checkFiles() error {
	root, err := os.OpenRoot(b.Dir)
	if err != nil {
		return fmt.Errorf("open blueprint folder: %w", err)
	}
	defer root.Close()
	var errs []error
	for _, name := range b.JobNames() {
		j := b.Jobs[name]
		jp := "blueprint.jobs." + quoteKeyPart(name)
		if _, err := root.Stat(filepath.FromSlash(j.Source)); err != nil {
			errs = append(errs, &FieldError{Path: jp + ".source", Value: j.Source, Msg: fsMsg(err), Err: ErrSourceNotFound})
		} else if j.Language == "" {
			lang, err := inferIn(root, j.Source)
			if err != nil {
				msg, sentinel := inferMsg(err)
				errs = append(errs, &FieldError{Path: jp + ".source", Value: j.Source, Msg: msg + "; set language", Err: sentinel})
			}
			j.Language = lang
		}
		for i, s := range j.Samples {
			fi, err := root.Stat(filepath.FromSlash(s))
			switch {
			case err != nil:
				errs = append(errs, &FieldError{Path: fmt.Sprintf("%s.samples[%d]", jp, i), Value: s, Msg: "sample file " + fsMsg(err), Err: ErrSampleNotFound})
			case !fi.Mode().IsRegular():
				errs = append(errs, &FieldError{Path: fmt.Sprintf("%s.samples[%d]", jp, i), Value: s, Msg: "sample is not a regular file", Err: ErrSampleNotFound})
			}
		}
		b.Jobs[name] = j
	}
	return errors.Join(errs...)
}

// fsMsg says why a path in the blueprint folder could not be used.
func fsMsg(err error) string {
	if errors.Is(err, os.ErrNotExist) {
		return "not found in the blueprint folder"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// inferMsg is the inference error without the repeated source name, and
// its sentinel.
func inferMsg(err error) (string, error) {
	var ie *inferError
	if errors.As(err, &ie) {
		return ie.msg, ie.err
	}
	return err.Error(), ErrUnknownLanguage
}
