package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; every *Error matches one of them with errors.Is.
var (
	// ErrSyntax: the file is not JSON (or is empty, or too large).
	ErrSyntax = errors.New("malformed policy")
	// ErrInvalid: the JSON is fine but a value is wrong.
	ErrInvalid = errors.New("invalid policy")
	// ErrUsage: an update (from flags) is inconsistent.
	ErrUsage = errors.New("invalid policy change")
)

// Error is a problem at a place in the policy file.
type Error struct {
	File      string // empty for a policy not read from a file
	Line, Col int    // 0 when unknown
	Field     string // dotted path, "ferry.providers[1].endpoint"; empty for the whole file
	Msg       string
	Err       error // ErrSyntax or ErrInvalid
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
