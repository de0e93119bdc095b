// counter is a stateful job: it adds the input (a decimal integer, default 1)
// to a counter kept in Ferry's state store and returns the new value. The
// state outlives the instance, so two invocations return 1 then 2.
package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ferryrun/ferry/guest"
)

const key = "counter"

func main() {
	guest.Handle(func(in []byte) ([]byte, error) {
		delta := int64(1)
		if s := strings.TrimSpace(string(in)); s != "" {
			d, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("increment %q is not an integer", s)
			}
			delta = d
		}
		var n int64
		v, ok, err := guest.StateGet(key)
		if err != nil {
			return nil, err
		}
		if ok {
			if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				return nil, fmt.Errorf("stored counter %q is corrupt", v)
			}
		}
		n += delta
		if err := guest.StateSet(key, []byte(strconv.FormatInt(n, 10))); err != nil {
			return nil, err
		}
		guest.Logf("counter is now %d", n)
		return []byte(strconv.FormatInt(n, 10)), nil
	})
}
