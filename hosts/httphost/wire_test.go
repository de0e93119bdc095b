package httphost

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBytes_RoundTripAllValues(t *testing.T) {
	all := make(Bytes, 256)
	nums := make([]int, 256)
	for i := range all {
		all[i] = byte(i)
		nums[i] = i
	}
	got, err := json.Marshal(all)
	require.NoError(t, err)
	want, err := json.Marshal(nums)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "Bytes must marshal like serde's Vec<u8>: a number array")

	var back Bytes
	require.NoError(t, json.Unmarshal(got, &back))
	assert.Equal(t, all, back)

	// Each value alone, and inside a struct field.
	for i := range 256 {
		b, err := json.Marshal(struct {
			A Bytes `json:"a"`
		}{Bytes{byte(i)}})
		require.NoError(t, err)
		require.Equal(t, `{"a":[`+strconv.Itoa(i)+`]}`, string(b))
		var v struct {
			A Bytes `json:"a"`
		}
		require.NoError(t, json.Unmarshal(b, &v))
		require.Equal(t, Bytes{byte(i)}, v.A)
	}

	// Empty and nil both marshal as [], and [] unmarshals as empty, not nil
	// (so "args": [] is not "args missing").
	for _, b := range []Bytes{nil, {}} {
		out, err := json.Marshal(b)
		require.NoError(t, err)
		assert.Equal(t, "[]", string(out))
	}
	var empty Bytes
	require.NoError(t, json.Unmarshal([]byte(" [ ] "), &empty))
	assert.NotNil(t, empty)
	assert.Empty(t, empty)
}

func TestBytes_Whitespace(t *testing.T) {
	for _, in := range []string{"[1,2,3]", " [ 1 , 2 , 3 ] ", "\n[\t1,\r\n2,3\n]\n", "[1 ,2 ,3]"} {
		got, err := parseBytes([]byte(in))
		require.NoError(t, err, "%q", in)
		assert.Equal(t, Bytes{1, 2, 3}, got, "%q", in)
	}
}

func TestBytes_Invalid(t *testing.T) {
	cases := []struct {
		in  string
		msg string // the message must contain this
	}{
		{``, "empty"},
		{`   `, "empty"},
		{`"AQID"`, "base64"},
		{`null`, "null"},
		{`{}`, "object"},
		{`{"0":1}`, "object"},
		// The message double-quotes what it got (got "\"1\""): cosmetic, see
		// the report; only check it names it.
		{`1`, `1`},
		{`true`, "true"},
		{`[`, "unterminated"},
		{`[1`, "unterminated"},
		{`[1,`, "unterminated"},
		{`[1 `, "unterminated"},
		{`[1,]`, "element 1"},
		{`[,1]`, "element 0"},
		{`[256]`, "256"},
		{`[1000]`, "1000"},
		{`[99999999999999999999999999]`, "not a byte"},
		{`[-1]`, "-1"},
		{`[-0]`, "-0"},
		{`[1.5]`, "not an integer"},
		{`[1.0]`, "not an integer"},
		{`[1e2]`, "not an integer"},
		{`[1E2]`, "not an integer"},
		{`[01]`, "01"},
		{`[00]`, "00"},
		{`["1"]`, "element 0"},
		{`[null]`, "element 0"},
		{`[[1]]`, "element 0"},
		{`[true]`, "element 0"},
		{`[1 2]`, "unexpected"},
		{`[1;2]`, "unexpected"},
		{`[1]]`, "trailing"},
		{`[1] x`, "trailing"},
		{`[] []`, "trailing"},
		{`[0x10]`, "unexpected"},
		{`[+1]`, "element 0"},
		{"[\u00a01]", "element 0"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseBytes([]byte(tc.in))
			require.Error(t, err, "parsed %q as %v", tc.in, got)
			assert.True(t, errors.Is(err, ErrNotBytes), "%v does not wrap ErrNotBytes", err)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Nil(t, got)

			// Through encoding/json, when the input is valid JSON the
			// error is ours (and still wraps ErrNotBytes).
			if json.Valid([]byte(tc.in)) {
				var b Bytes
				err := json.Unmarshal([]byte(tc.in), &b)
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrNotBytes), "%v", err)
			}
		})
	}
}

// The error message quotes at most a short prefix of what it got.
func TestBytes_InvalidMessageIsShort(t *testing.T) {
	_, err := parseBytes([]byte("x" + strings.Repeat("y", 10000)))
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 200)
	_, err = parseBytes([]byte("[" + strings.Repeat("9", 10000) + "]"))
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNotBytes))
}

// FuzzParseBytes: parseBytes never panics; whatever it accepts is a JSON
// array of integers that encoding/json decodes to the same values, and
// appendBytes writes back something it parses to the same bytes. What
// encoding/json decodes as an array of integers 0–255 (written without a
// sign), parseBytes accepts.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{
		`[]`, `[0]`, `[255]`, `[256]`, `[1,2,3]`, ` [ 1 , 2 ] `, `[-1]`, `[-0]`, `[1.5]`, `[1e2]`, `[01]`,
		`"AQID"`, `null`, `{}`, `[`, `[1,]`, `[1]]`, `[1] `, `[99999999999999999999]`, "[\n0,\t255\r]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseBytes(data)
		var ints []int
		jerr := json.Unmarshal(data, &ints)
		if err != nil {
			if !errors.Is(err, ErrNotBytes) {
				t.Fatalf("parseBytes(%q): error %v does not wrap ErrNotBytes", data, err)
			}
			if got != nil {
				t.Fatalf("parseBytes(%q): error %v with a result %v", data, err, got)
			}
			// encoding/json would have accepted it as bytes: parseBytes must
			// agree, except for signs (-0), which the protocol never sends.
			trimmed := bytes.TrimLeft(data, " \t\r\n")
			if jerr == nil && len(trimmed) > 0 && trimmed[0] == '[' && !bytes.ContainsRune(data, '-') && allBytes(ints) {
				t.Fatalf("parseBytes(%q) refused what encoding/json decodes as bytes %v: %v", data, ints, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("parseBytes accepted invalid JSON %q as %v", data, got)
		}
		if jerr != nil {
			t.Fatalf("parseBytes(%q) = %v, but encoding/json says %v", data, got, jerr)
		}
		if len(ints) != len(got) {
			t.Fatalf("parseBytes(%q) = %v, encoding/json %v", data, got, ints)
		}
		for i, v := range ints {
			if v != int(got[i]) {
				t.Fatalf("parseBytes(%q) = %v, encoding/json %v", data, got, ints)
			}
		}
		enc := appendBytes(nil, got)
		again, err := parseBytes(enc)
		if err != nil {
			t.Fatalf("appendBytes(%v) = %q does not parse: %v", got, enc, err)
		}
		if !bytes.Equal(again, got) {
			t.Fatalf("round trip of %v gave %v (via %q)", got, again, enc)
		}
		if std, _ := json.Marshal(ints); !bytes.Equal(std, enc) && len(ints) > 0 {
			t.Fatalf("appendBytes(%v) = %q, encoding/json writes %q", got, enc, std)
		}
	})
}

func allBytes(v []int) bool {
	for _, x := range v {
		if x < 0 || x > 255 {
			return false
		}
	}
	return true
}

func TestAppendInvokeResponse(t *testing.T) {
	cases := []InvokeResponse{
		{JobID: 0, Result: Bytes{}},
		{JobID: 42, Result: Bytes{0, 1, 9, 10, 99, 100, 255}, Success: true, ExecutionMs: 3, MemoryUsedMB: 1,
			ExecutionUs: 2501, MemoryUsedBytes: 65536, Cold: true, InvocationID: "inv-1:a.b_c",
			Logs: []string{"plain", `with "quotes"`, "new\nline", "tab\tand \\ backslash", "<html> & ünïcödé ✓", "ctl \x01\x1f", ""}},
		{JobID: 4294967295, Result: Bytes{}, Success: false, ExecutionMs: 9, MemoryUsedMB: 16,
			Error: "trapped: \"unreachable\"\nat func 3\r\n\tand \\ more <&>", Code: CodeExecution,
			Details:     &Details{Kind: "trap", FunctionID: "fn.1", Limit: 16 << 20, Problems: []string{`a "b"`}},
			ExecutionUs: 9000, MemoryUsedBytes: 16 << 20, InvocationID: "x"},
		{JobID: 1, Result: Bytes{}, Error: "invalid utf-8: \xff\xfe", Code: CodeInfrastructure, Details: &Details{Kind: "host"}},
	}
	for i, in := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			buf := appendInvokeResponse([]byte("prefix"), &in)
			require.True(t, bytes.HasPrefix(buf, []byte("prefix")), "appends to dst")
			js := buf[len("prefix"):]
			require.True(t, json.Valid(js), "not JSON: %s", js)

			var out InvokeResponse
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&out), "%s", js)
			want := in
			want.Error = viaJSON(t, in.Error)
			assert.Equal(t, want, out, "%s", js)

			// The protocol's fields are always there, result as an array.
			var m map[string]any
			require.NoError(t, json.Unmarshal(js, &m))
			for _, k := range []string{"job_id", "result", "success", "execution_ms", "memory_used_mb"} {
				assert.Contains(t, m, k)
			}
			assert.IsType(t, []any{}, m["result"])

			// And it is what encoding/json would say.
			std, err := json.Marshal(&in)
			require.NoError(t, err)
			assert.JSONEq(t, string(std), string(js))
		})
	}
}

func TestAppendInvokeResponse_NilResultIsEmptyArray(t *testing.T) {
	js := appendInvokeResponse(nil, &InvokeResponse{JobID: 1})
	assert.Contains(t, string(js), `"result":[]`)
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `"`, `\`, "\n", "\x00", "<>&", "é", "\u2028", "\xff"} {
		got := appendString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(got, &back), "%q → %s", s, got)
		assert.Equal(t, viaJSON(t, s), back)
	}
}

// viaJSON is s after an encoding/json round trip (invalid UTF-8 replaced).
func viaJSON(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	var out string
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// FuzzParseConfig: the X-Blueprint-Config header never panics the parser,
// and whatever it accepts is within bounds.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"memory_mb":256,"timeout_secs":30,"max_concurrency":4,"env_vars":{}}`,
		`{"timeout_ms":250,"allow_hosts":["api.example.com"],"job_id":3}`,
		`{"memory_mb":10240}`, `{"unknown":1}`, `{}`, `null`, `[]`, `{"env_vars":{"A":"b"}}`,
	} {
		f.Add(base64.StdEncoding.EncodeToString([]byte(s)))
	}
	f.Add("not base64!")
	f.Fuzz(func(t *testing.T, h string) {
		c, err := parseConfig(h)
		if err != nil {
			return
		}
		if c.MemoryMB < 0 || c.MemoryMB > MaxMemoryMB || c.TimeoutSecs < 0 || c.TimeoutSecs > MaxTimeoutSecs ||
			c.MaxConcurrency < 0 || c.MaxConcurrency > DefaultMaxConcurrency || len(c.EnvVars) > 0 {
			t.Fatalf("accepted out-of-bounds config %+v from %q", c, h)
		}
	})
}
