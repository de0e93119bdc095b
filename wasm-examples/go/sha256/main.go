// sha256 hashes its input and returns the digest as lowercase hex. It is the
// compute-heavy example used to compare wasm with native Go.
package main

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/ferryrun/ferry/guest"
)

func main() {
	guest.Handle(func(in []byte) ([]byte, error) {
		sum := sha256.Sum256(in)
		return []byte(hex.EncodeToString(sum[:])), nil
	})
}
