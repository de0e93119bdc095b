package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// lines joins its arguments into a multi-line file.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

// posOf is the 1-based line and column of the nth (0-based) occurrence of
// needle in s, computed independently of the package's lineCol.
func posOf(t *testing.T, s, needle string, nth int) (int, int) {
	t.Helper()
	off := -1
	for i := 0; i <= nth; i++ {
		j := strings.Index(s[off+1:], needle)
		require.GreaterOrEqual(t, j, 0, "needle %q (#%d) not in input", needle, nth)
		off += 1 + j
	}
	before := s[:off]
	line := strings.Count(before, "\n") + 1
	col := off + 1
	if i := strings.LastIndex(before, "\n"); i >= 0 {
		col = off - i
	}
	return line, col
}

// policyErrors flattens a (possibly joined) error into its *Error values.
func policyErrors(err error) []*Error {
	if err == nil {
		return nil
	}
	var out []*Error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, policyErrors(e)...)
		}
		return out
	}
	var e *Error
	if errors.As(err, &e) {
		out = append(out, e)
	}
	return out
}

// errorFor is the *Error reported for field.
func errorFor(t *testing.T, err error, field string) *Error {
	t.Helper()
	require.Error(t, err)
	var fields []string
	for _, e := range policyErrors(err) {
		if e.Field == field {
			return e
		}
		fields = append(fields, e.Field)
	}
	require.Failf(t, "no error for field", "want %q, have %q (%v)", field, fields, err)
	return nil
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func mustParse(t *testing.T, data string) *Policy {
	t.Helper()
	p, err := Parse("test.json", []byte(data))
	require.NoError(t, err)
	return p
}

// asJSON decodes b into generic JSON values, to compare documents without
// regard to formatting or key order.
func asJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return m
}

func without(m map[string]any, keys ...string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

const (
	cfAccount  = "0123456789abcdef0123456789abcdef"
	cfAccount2 = "fedcba9876543210fedcba9876543210"
	azureSub   = "12345678-90ab-cdef-1234-567890abcdef"
)
