package host

import (
	"errors"
	"fmt"
)

// Kinds of failure. Every error a host returns from Deploy, Invoke or Remove
// matches exactly one of them with errors.Is.
var (
	// ErrNotFound: no such deployment (never deployed, or removed).
	ErrNotFound = errors.New("deployment not found")
	// ErrLimit: the call broke a limit (input, output or memory size). The
	// same input fails the same way anywhere with the same limits.
	ErrLimit = errors.New("limit exceeded")
	// ErrTimeout: the job ran out of time.
	ErrTimeout = errors.New("timed out")
	// ErrJob: the job itself failed (trap, non-zero exit, guest error, ABI
	// violation). Not the host's fault; retrying elsewhere will not help.
	ErrJob = errors.New("job failed")
	// ErrHost: the infrastructure failed (network, server error,
	// throttling, a refused module). Another host or a retry may succeed.
	ErrHost = errors.New("host failed")
)

// Error is a host's error with what callers branch on.
type Error struct {
	// Kind is one of the sentinels above.
	Kind error
	// Op is "deploy", "invoke" or "remove"; Host and Job say where.
	Op   string
	Host string
	Job  string
	// NotDelivered is true when the request provably never reached the
	// job (connection refused, DNS failure): retrying is safe even for a
	// job with side effects.
	NotDelivered bool
	// Err is the underlying cause.
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s on %s: %v", e.Op, e.Job, e.Host, e.Kind)
	if e.Err != nil && e.Err != e.Kind {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes both the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Errorf builds an *Error of kind for op on host and job.
func Errorf(kind error, op, hostName, job, format string, args ...any) *Error {
	return &Error{Kind: kind, Op: op, Host: hostName, Job: job, Err: fmt.Errorf(format, args...)}
}

// Retryable reports whether err may be retried (on the same host or
// another): host failures for pure jobs, and failures that never reached
// the job for any job. Job errors, limits and timeouts are never retried.
func Retryable(err error, pure bool) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	if e.NotDelivered {
		return true
	}
	return pure && errors.Is(err, ErrHost)
}

// IsJobFault reports whether err is the job's own doing (ErrJob, ErrLimit,
// ErrTimeout) rather than the host's.
func IsJobFault(err error) bool {
	return errors.Is(err, ErrJob) || errors.Is(err, ErrLimit) || errors.Is(err, ErrTimeout)
}
