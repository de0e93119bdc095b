// jsontransform reads an order as JSON and returns a summary: the item count,
// the total, and the item names sorted. It exercises encoding/json in a guest.
//
//	in:  {"items":[{"name":"b","price":2.5,"qty":2},{"name":"a","price":1,"qty":1}]}
//	out: {"count":2,"total":6,"names":["a","b"]}
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/ferryrun/ferry/guest"
)

type order struct {
	Items []struct {
		Name  string  `json:"name"`
		Price float64 `json:"price"`
		Qty   int     `json:"qty"`
	} `json:"items"`
}

type summary struct {
	Count int      `json:"count"`
	Total float64  `json:"total"`
	Names []string `json:"names"`
}

func main() { guest.Handle(transform) }

func transform(in []byte) ([]byte, error) {
	var o order
	if err := json.Unmarshal(in, &o); err != nil {
		return nil, fmt.Errorf("decode order: %w", err)
	}
	if len(o.Items) == 0 {
		return nil, errors.New("order has no items")
	}
	s := summary{Count: len(o.Items), Names: make([]string, 0, len(o.Items))}
	for _, it := range o.Items {
		if it.Qty < 0 || it.Price < 0 {
			return nil, fmt.Errorf("item %q: negative price or quantity", it.Name)
		}
		s.Total += it.Price * float64(it.Qty)
		s.Names = append(s.Names, it.Name)
	}
	sort.Strings(s.Names)
	return json.Marshal(s)
}
