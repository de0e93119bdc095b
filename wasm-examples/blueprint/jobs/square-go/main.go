// square is the blueprint's canonical job: a u64 in (decimal text), its
// square out (decimal text, up to 128 bits).
package main

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ferryrun/ferry/guest"
)

func main() {
	guest.Handle(func(in []byte) ([]byte, error) {
		x, err := strconv.ParseUint(strings.TrimSpace(string(in)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want a u64: %w", err)
		}
		sq := new(big.Int).Mul(new(big.Int).SetUint64(x), new(big.Int).SetUint64(x))
		return []byte(sq.String()), nil
	})
}
