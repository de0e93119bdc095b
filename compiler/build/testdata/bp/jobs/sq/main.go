package main

import (
	"strconv"

	"github.com/ferryrun/ferry/guest"
)

func main() {
	guest.Handle(func(in []byte) ([]byte, error) {
		x, err := strconv.Atoi(string(in))
		if err != nil {
			return nil, err
		}
		return []byte(strconv.Itoa(x * x)), nil
	})
}
