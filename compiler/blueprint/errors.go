package blueprint

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// Sentinel errors. Every problem Load, Parse, Validate and InferLanguage
// report wraps exactly one of them; several problems come back joined
// (errors.Join), so errors.Is finds each.
var (
	// ErrTooLarge: the file is bigger than MaxFileSize.
	ErrTooLarge = errors.New("blueprint file too large")
	// ErrSyntax: the file is not valid TOML.
	ErrSyntax = errors.New("TOML syntax error")
	// ErrUnknownKey: the file sets a key the schema does not have.
	ErrUnknownKey = errors.New("unknown key")
	// ErrWrongType: a key holds a value of the wrong TOML type.
	ErrWrongType = errors.New("wrong type")
	// ErrInvalid: a value breaks a rule of the schema.
	ErrInvalid = errors.New("invalid value")
	// ErrSourceNotFound: a job's source is not in the blueprint folder.
	ErrSourceNotFound = errors.New("job source not found")
	// ErrSampleNotFound: a sample input file is not in the blueprint folder.
	ErrSampleNotFound = errors.New("sample file not found")
	// ErrUnknownLanguage: a job's language is not set and cannot be inferred
	// from its source.
	ErrUnknownLanguage = errors.New("cannot infer job language")
)

// PosError is a problem at a place in the file: a syntax error, an unknown
// key or a value of the wrong type. It prints as "file:line:column: msg".
type PosError struct {
	File   string
	Line   int // 1-based
	Column int // 1-based
	// Key is the dotted key the problem is about ("blueprint.jobs.x.memory");
	// empty for syntax errors that are not about a key.
	Key string
	Msg string
	// Err is the sentinel (ErrSyntax, ErrUnknownKey or ErrWrongType).
	Err error
	// Cause is go-toml's error, if any.
	Cause error
}

func (e *PosError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Unwrap returns the sentinel and go-toml's error.
func (e *PosError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// FieldError is a problem with one field, named by its dotted path. It prints
// as "path = value: msg", or "path: msg" when there is no value to show.
type FieldError struct {
	// Path is the dotted field path, e.g. "blueprint.jobs.heavy.memory" or
	// "blueprint.serverless.regions[1]".
	Path string
	// Value is the offending value; nil when the field is missing.
	Value any
	Msg   string
	// Err is the sentinel; ErrInvalid when nil.
	Err error
}

func (e *FieldError) Error() string {
	if e.Value == nil {
		return e.Path + ": " + e.Msg
	}
	return e.Path + " = " + formatValue(e.Value) + ": " + e.Msg
}

// Unwrap returns the sentinel.
func (e *FieldError) Unwrap() error {
	if e.Err == nil {
		return ErrInvalid
	}
	return e.Err
}

// formatValue writes v the way TOML would.
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case float64:
		switch {
		case math.IsNaN(v):
			return "nan"
		case math.IsInf(v, 1):
			return "inf"
		case math.IsInf(v, -1):
			return "-inf"
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.String {
		return strconv.Quote(rv.String()) // Language, Shape, Provider
	}
	return fmt.Sprint(v)
}

// unwrapJoined splits an errors.Join result into its parts; any other error
// is returned alone.
func unwrapJoined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if _, isPos := err.(*PosError); !isPos {
			return j.Unwrap()
		}
	}
	return []error{err}
}

// inFile prefixes each problem in err with the file name, keeping them
// joined.
func inFile(name string, err error) error {
	parts := unwrapJoined(err)
	out := make([]error, 0, len(parts))
	for _, e := range parts {
		if _, isPos := e.(*PosError); isPos {
			out = append(out, e) // already "file:line:col: ..."
			continue
		}
		out = append(out, fmt.Errorf("%s: %w", name, e))
	}
	return errors.Join(out...)
}
