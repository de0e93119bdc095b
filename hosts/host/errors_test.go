package host

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestError_KindsAndRetry(t *testing.T) {
	cause := errors.New("connection refused")
	tests := []struct {
		name        string
		err         error
		kind        error
		jobFault    bool
		retryPure   bool
		retryImpure bool
	}{
		{"job", &Error{Kind: ErrJob, Op: "invoke", Host: "h", Job: "j", Err: errors.New("trap")}, ErrJob, true, false, false},
		{"limit", &Error{Kind: ErrLimit, Op: "invoke"}, ErrLimit, true, false, false},
		{"timeout", &Error{Kind: ErrTimeout, Op: "invoke"}, ErrTimeout, true, false, false},
		{"host", &Error{Kind: ErrHost, Op: "invoke", Err: cause}, ErrHost, false, true, false},
		{"not delivered", &Error{Kind: ErrHost, Op: "invoke", Err: cause, NotDelivered: true}, ErrHost, false, true, true},
		{"not found", &Error{Kind: ErrNotFound, Op: "invoke"}, ErrNotFound, false, false, false},
		{"wrapped", fmt.Errorf("route: %w", &Error{Kind: ErrHost, Op: "invoke"}), ErrHost, false, true, false},
		{"foreign error", errors.New("other"), nil, false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.kind != nil {
				assert.ErrorIs(t, tc.err, tc.kind)
			}
			for _, k := range []error{ErrJob, ErrLimit, ErrTimeout, ErrHost, ErrNotFound} {
				if k != tc.kind {
					assert.NotErrorIs(t, tc.err, k)
				}
			}
			assert.Equal(t, tc.jobFault, IsJobFault(tc.err))
			assert.Equal(t, tc.retryPure, Retryable(tc.err, true))
			assert.Equal(t, tc.retryImpure, Retryable(tc.err, false))
		})
	}
	e := Errorf(ErrHost, "deploy", "custom/x", "square", "status %d", 503)
	assert.Equal(t, "deploy square on custom/x: host failed: status 503", e.Error())
	assert.ErrorIs(t, &Error{Kind: ErrHost, Err: cause}, cause, "the cause stays reachable")
}
