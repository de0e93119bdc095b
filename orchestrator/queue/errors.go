package queue

import "errors"

// Sentinel errors. Errors from the queue wrap one of them (or a bbolt
// error) with %w and say what was being done.
var (
	// ErrNotFound: no such invocation, or it has expired.
	ErrNotFound = errors.New("invocation not found")
	// ErrFull: Config.MaxPending invocations are queued or running.
	ErrFull = errors.New("queue full")
	// ErrTooLarge: the input is over Config.MaxInputBytes.
	ErrTooLarge = errors.New("input too large")
	// ErrIdempotencyMismatch: the idempotency key was used before, for
	// the same job, with a different input.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different input")
	// ErrInvalid: the submission is malformed (no job name, or an
	// idempotency key that is too long).
	ErrInvalid = errors.New("invalid submission")
	// ErrClosed: Close was called.
	ErrClosed = errors.New("queue closed")
)

// Error kinds the queue itself records in Invocation.ErrorKind; every
// other kind is the Runner's.
const (
	// KindInterrupted: the orchestrator stopped while the invocation ran,
	// and its job is not safe to run twice, so it was not run again.
	KindInterrupted = "interrupted"
	// KindPanic: the Runner panicked.
	KindPanic = "panic"
)
