//go:build !wasip1

package guest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCodec_RoundTrip(t *testing.T) {
	req := Request{Method: "POST", URL: "http://x/y", Header: map[string]string{"b": "2", "a": "1"}, Body: []byte("hi")}
	b := encodeRequest(req)
	// The request encoding is fixed by the ABI: method, url, sorted headers, body.
	d := &dec{b: b}
	for _, want := range []string{"POST", "http://x/y"} {
		got, err := d.bytes()
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	if n, _ := d.u32(); n != 2 {
		t.Fatalf("header count %d", n)
	}
	for _, want := range []string{"a", "1", "b", "2", "hi"} {
		got, err := d.bytes()
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	if len(d.b) != 0 {
		t.Fatalf("%d trailing bytes", len(d.b))
	}
}

func TestDecodeResponse_Truncated(t *testing.T) {
	full := []byte{200, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 'a', 'b', 'c'}
	resp, err := decodeResponse(full)
	if err != nil || resp.Status != 200 || string(resp.Body) != "abc" {
		t.Fatalf("got %+v, %v", resp, err)
	}
	for i := range len(full) {
		if _, err := decodeResponse(full[:i]); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
}

func TestRun_Native(t *testing.T) {
	var out bytes.Buffer
	err := run(func(in []byte) ([]byte, error) { return bytes.ToUpper(in), nil }, strings.NewReader("abc"), &out)
	if err != nil || out.String() != "ABC" {
		t.Fatalf("got %q, %v", out.String(), err)
	}
	err = run(func([]byte) ([]byte, error) { return nil, errors.New("boom") }, strings.NewReader(""), &out)
	if err == nil || err.Error() != "boom" {
		t.Fatalf("got %v", err)
	}
}

func TestState_Native(t *testing.T) {
	if _, ok, _ := StateGet("k"); ok {
		t.Fatal("unexpected key")
	}
	if err := StateSet("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := StateGet("k"); !ok || string(v) != "v" {
		t.Fatalf("got %q %v", v, ok)
	}
	if err := StateDelete("k"); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(Request{URL: "http://example.invalid"}); !errors.Is(err, ErrDenied) {
		t.Fatalf("fetch: %v", err)
	}
}
