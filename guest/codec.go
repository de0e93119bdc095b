package guest

import (
	"encoding/binary"
	"errors"
	"sort"
)

// The HTTP request and response travel as length-prefixed little-endian
// records (docs/abi.md, "http_request"): no JSON, so the SDK stays small and
// any language can speak it.

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func encodeRequest(r Request) []byte {
	b := make([]byte, 0, 64+len(r.URL)+len(r.Body))
	b = appendStr(b, r.Method)
	b = appendStr(b, r.URL)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = appendStr(b, k)
		b = appendStr(b, r.Header[k])
	}
	b = appendStr(b, string(r.Body))
	return b
}

var errShort = errors.New("ferry: malformed response from host")

type dec struct{ b []byte }

func (d *dec) u32() (uint32, error) {
	if len(d.b) < 4 {
		return 0, errShort
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v, nil
}

func (d *dec) bytes() ([]byte, error) {
	n, err := d.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(d.b)) {
		return nil, errShort
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v, nil
}

func decodeResponse(b []byte) (*Response, error) {
	d := &dec{b: b}
	status, err := d.u32()
	if err != nil {
		return nil, err
	}
	n, err := d.u32()
	if err != nil {
		return nil, err
	}
	resp := &Response{Status: int(status), Header: map[string]string{}}
	for range n {
		k, err := d.bytes()
		if err != nil {
			return nil, err
		}
		v, err := d.bytes()
		if err != nil {
			return nil, err
		}
		resp.Header[string(k)] = string(v)
	}
	if resp.Body, err = d.bytes(); err != nil {
		return nil, err
	}
	return resp, nil
}
