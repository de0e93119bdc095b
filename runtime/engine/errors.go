package engine

import (
	"errors"
	"fmt"
)

// ErrCompile wraps every compilation (validation) failure.
var ErrCompile = errors.New("compile module")

// TrapKind names why a guest trapped.
type TrapKind string

// Trap kinds. Engines map their own trap codes to these.
const (
	TrapUnreachable       TrapKind = "unreachable"
	TrapStackOverflow     TrapKind = "stack_overflow"
	TrapOutOfBounds       TrapKind = "out_of_bounds_memory"
	TrapDivideByZero      TrapKind = "integer_divide_by_zero"
	TrapIntegerOverflow   TrapKind = "integer_overflow"
	TrapInvalidConversion TrapKind = "invalid_conversion"
	TrapIndirectCall      TrapKind = "indirect_call"
	TrapTable             TrapKind = "table_access"
	TrapHostPanic         TrapKind = "host_panic"
	TrapOther             TrapKind = "other"
)

// Trap is a guest trap.
type Trap struct {
	Kind TrapKind
	// Detail is the engine's message, including a guest stack trace when
	// the engine provides one.
	Detail string
}

func (t *Trap) Error() string { return "trap: " + string(t.Kind) }

// ExitError is a guest's proc_exit with a status other than zero.
type ExitError struct{ Code uint32 }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// InterruptedError reports that the guest was stopped because its context
// ended. Cause is context.DeadlineExceeded or context.Canceled.
type InterruptedError struct{ Cause error }

func (e *InterruptedError) Error() string { return "interrupted: " + e.Cause.Error() }
func (e *InterruptedError) Unwrap() error { return e.Cause }

// MemoryLimitError reports a module whose minimum memory is over the cap.
type MemoryLimitError struct{ Need, Limit uint64 }

func (e *MemoryLimitError) Error() string {
	return fmt.Sprintf("module needs %d bytes of memory at start, limit is %d", e.Need, e.Limit)
}

// FuelExhaustedError reports a guest call that spent all of its fuel
// (Options.Fuel) and was stopped. The same input stops at the same point on
// every run.
type FuelExhaustedError struct{ Fuel uint64 }

func (e *FuelExhaustedError) Error() string {
	return fmt.Sprintf("fuel exhausted: the call spent all of its %d units", e.Fuel)
}
