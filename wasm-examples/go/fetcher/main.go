// fetcher GETs the URL given as input and returns the response body. It can
// reach only the hosts the job was granted (ferry run --allow-host).
package main

import (
	"fmt"
	"strings"

	"github.com/ferryrun/ferry/guest"
)

func main() {
	guest.Handle(func(in []byte) ([]byte, error) {
		url := strings.TrimSpace(string(in))
		resp, err := guest.Fetch(guest.Request{URL: url})
		if err != nil {
			return nil, err
		}
		guest.Logf("GET %s: %d, %d bytes", url, resp.Status, len(resp.Body))
		if resp.Status >= 400 {
			return nil, fmt.Errorf("GET %s: status %d", url, resp.Status)
		}
		return resp.Body, nil
	})
}
