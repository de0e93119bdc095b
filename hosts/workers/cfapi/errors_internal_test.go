package cfapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		codes   []int
		want    error
		wantNil bool
	}{
		{name: "code before status", status: 400, codes: []int{10027}, want: ErrTooLarge},
		{name: "first known code", status: 400, codes: []int{1, 10037, 10021}, want: ErrQuota},
		{name: "401 without a code", status: 401, want: ErrAuth},
		{name: "403 with an unknown code", status: 403, codes: []int{9109}, want: ErrAuth},
		{name: "404", status: 404, want: ErrNotFound},
		{name: "413", status: 413, want: ErrTooLarge},
		{name: "409", status: 409, want: ErrConflict},
		{name: "429", status: 429, codes: []int{971}, want: ErrQuota},
		{name: "422", status: 422, want: ErrInvalid},
		{name: "migration tag precondition", status: 400, codes: []int{10079}, want: ErrConflict},
		{name: "server error", status: 502, wantNil: true},
		{name: "server error with an unknown code", status: 500, codes: []int{10013}, wantNil: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var details []ErrorDetail
			for _, c := range tc.codes {
				details = append(details, ErrorDetail{Code: c})
			}
			got := classify(tc.status, details)
			if tc.wantNil {
				assert.Nil(t, got)
				return
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestTries_EarlierFailed(t *testing.T) {
	cases := []struct {
		name  string
		tries tries
		want  bool
	}{
		{"no attempt", nil, false},
		{"one failed attempt", tries{500}, false},
		{"a 5xx, then an answer", tries{503, 404}, true},
		{"no answer, then an answer", tries{0, 404}, true},
		{"a 429, then an answer", tries{429, 404}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.tries.earlierFailed())
		})
	}
}
