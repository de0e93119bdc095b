// Package jsonbytes is a byte string as Tangle's protocols put it in JSON:
// an array of numbers 0–255 (serde's encoding of Vec<u8>), never base64.
// The custom-FaaS HTTP protocol and Tangle's Lambda payload both use it.
// Parsing is strict and bounded by the input: it allocates at most half
// the input's length and says exactly what is wrong.
package jsonbytes

import (
	"errors"
	"fmt"
	"strconv"
)

// Bytes is a byte string as the protocol puts it in JSON: an array of
// numbers 0–255 (serde's encoding of Vec<u8>), never base64.
type Bytes []byte

// MarshalJSON implements json.Marshaler.
func (b Bytes) MarshalJSON() ([]byte, error) { return Append(make([]byte, 0, 2+4*len(b)), b), nil }

// Append appends b as a JSON array of numbers.
func Append(dst, b []byte) []byte {
	dst = append(dst, '[')
	for i, c := range b {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch {
		case c >= 100:
			dst = append(dst, '0'+c/100, '0'+c/10%10, '0'+c%10)
		case c >= 10:
			dst = append(dst, '0'+c/10, '0'+c%10)
		default:
			dst = append(dst, '0'+c)
		}
	}
	return append(dst, ']')
}

// ErrNotBytes is what UnmarshalJSON returns for anything but an array of
// integers 0–255.
var ErrNotBytes = errors.New("not bytes: want a JSON array of integers 0–255")

// UnmarshalJSON implements json.Unmarshaler. It accepts exactly an array of
// integers 0–255 (whitespace allowed) and says what is wrong otherwise.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	out, err := Parse(data)
	if err != nil {
		return err
	}
	*b = out
	return nil
}

// Parse parses a JSON array of byte values. It does not rely on the
// caller having validated the JSON.
func Parse(data []byte) (Bytes, error) {
	i := skipSpace(data, 0)
	if i == len(data) {
		return nil, fmt.Errorf("%w: empty", ErrNotBytes)
	}
	switch data[i] {
	case '[':
	case '"':
		return nil, fmt.Errorf("%w: got a string (base64 is not accepted)", ErrNotBytes)
	case 'n':
		return nil, fmt.Errorf("%w: got null", ErrNotBytes)
	case '{':
		return nil, fmt.Errorf("%w: got an object", ErrNotBytes)
	default:
		return nil, fmt.Errorf("%w: got %s", ErrNotBytes, clip(data[i:]))
	}
	// Every element takes at least two bytes ("0,"), so this never
	// over-allocates by more than 2×.
	out := make(Bytes, 0, len(data)/2)
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		if skipSpace(data, i+1) != len(data) {
			return nil, fmt.Errorf("%w: trailing data after the array", ErrNotBytes)
		}
		return out, nil
	}
	for n := 0; ; n++ {
		if i == len(data) {
			return nil, fmt.Errorf("%w: unterminated array", ErrNotBytes)
		}
		start := i
		v := 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			v = v*10 + int(data[i]-'0')
			i++
			if v > 255 {
				for i < len(data) && data[i] >= '0' && data[i] <= '9' {
					i++
				}
				return nil, fmt.Errorf("%w: element %d is %s, not a byte", ErrNotBytes, n, clip(data[start:i]))
			}
		}
		if i == start || (i-start > 1 && data[start] == '0') {
			end := i
			for end < len(data) && data[end] != ',' && data[end] != ']' && end-start < 24 {
				end++
			}
			return nil, fmt.Errorf("%w: element %d is %s, not an integer 0–255", ErrNotBytes, n, clip(data[start:end]))
		}
		if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
			return nil, fmt.Errorf("%w: element %d is not an integer", ErrNotBytes, n)
		}
		out = append(out, byte(v))
		i = skipSpace(data, i)
		if i == len(data) {
			return nil, fmt.Errorf("%w: unterminated array", ErrNotBytes)
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			if skipSpace(data, i+1) != len(data) {
				return nil, fmt.Errorf("%w: trailing data after the array", ErrNotBytes)
			}
			return out, nil
		default:
			return nil, fmt.Errorf("%w: unexpected %q after element %d", ErrNotBytes, data[i], n)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func clip(b []byte) string {
	const max = 16
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}
