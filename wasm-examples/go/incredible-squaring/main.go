// incredible-squaring is the canonical blueprint job: a u64 in, its square
// out. The square of a u64 needs 128 bits, so nothing overflows.
//
// Input and output formats:
//   - decimal text ("12345") in, decimal text out;
//   - 8 bytes (big-endian u64) in, 16 bytes (big-endian u128) out;
//   - 32 bytes (an ABI-encoded uint256 holding a u64, as Tangle jobs send)
//     in, 32 bytes ABI-encoded out.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/ferryrun/ferry/guest"
)

func main() { guest.Handle(square) }

func square(in []byte) ([]byte, error) {
	if s := strings.TrimSpace(string(in)); s != "" && isDigits(s) {
		x, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("input %q is not a u64: %w", s, err)
		}
		hi, lo := bits.Mul64(x, x)
		n := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
		n.Or(n, new(big.Int).SetUint64(lo))
		return []byte(n.String()), nil
	}
	switch len(in) {
	case 8:
		hi, lo := bits.Mul64(binary.BigEndian.Uint64(in), binary.BigEndian.Uint64(in))
		out := binary.BigEndian.AppendUint64(nil, hi)
		return binary.BigEndian.AppendUint64(out, lo), nil
	case 32:
		for _, b := range in[:24] {
			if b != 0 {
				return nil, errors.New("ABI-encoded input does not fit in a u64")
			}
		}
		x := binary.BigEndian.Uint64(in[24:])
		hi, lo := bits.Mul64(x, x)
		out := make([]byte, 16, 32)
		out = binary.BigEndian.AppendUint64(out, hi)
		return binary.BigEndian.AppendUint64(out, lo), nil
	}
	return nil, fmt.Errorf("want a u64 as decimal text, 8 big-endian bytes or a 32-byte ABI word; got %d bytes", len(in))
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
