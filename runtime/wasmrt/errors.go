package wasmrt

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferryrun/ferry/runtime/engine"
)

// Kind classifies a failed invocation.
type Kind string

// Kinds of JobError. Every one is the guest's doing (or its input's), never
// the host's: callers may retry a host error elsewhere, but a job error would
// fail the same way on any host.
const (
	KindTimeout      Kind = "timeout"
	KindCPULimit     Kind = "cpu_limit" // the call's fuel ran out (Config.Fuel)
	KindCanceled     Kind = "canceled"
	KindMemoryLimit  Kind = "memory_limit"
	KindInputLimit   Kind = "input_too_large"
	KindOutputLimit  Kind = "output_too_large"
	KindTrap         Kind = "trap"
	KindExit         Kind = "exit"
	KindGuestError   Kind = "guest_error"
	KindABIViolation Kind = "abi_violation"
)

// Sentinels, one per Kind, for errors.Is. A *JobError matches its kind's.
var (
	ErrTimeout      = errors.New("job timed out")
	ErrCPULimit     = errors.New("job exceeded its CPU limit")
	ErrCanceled     = errors.New("job canceled")
	ErrMemoryLimit  = errors.New("job exceeded its memory limit")
	ErrInputLimit   = errors.New("job input too large")
	ErrOutputLimit  = errors.New("job output too large")
	ErrTrap         = errors.New("job trapped")
	ErrExit         = errors.New("job exited with non-zero status")
	ErrGuestError   = errors.New("job reported an error")
	ErrABIViolation = errors.New("job violated the ABI")

	// ErrContention is a stateful invocation that never committed because
	// other invocations kept changing the state it read. It is the host's
	// failure (too much concurrent traffic on one key), not the job's.
	ErrContention = errors.New("state contention")

	// ErrClosed is returned by a Runtime or Module used after Close.
	ErrClosed = errors.New("closed")
	// ErrReuseNotPure is returned by Load for Reuse on a module that is not
	// pure: reusing an instance would carry one call's memory into another.
	ErrReuseNotPure = errors.New("instance reuse is only allowed for pure jobs")
)

var kindSentinel = map[Kind]error{
	KindTimeout:      ErrTimeout,
	KindCPULimit:     ErrCPULimit,
	KindCanceled:     ErrCanceled,
	KindMemoryLimit:  ErrMemoryLimit,
	KindInputLimit:   ErrInputLimit,
	KindOutputLimit:  ErrOutputLimit,
	KindTrap:         ErrTrap,
	KindExit:         ErrExit,
	KindGuestError:   ErrGuestError,
	KindABIViolation: ErrABIViolation,
}

// JobError is a failed invocation whose cause is the guest or its input.
type JobError struct {
	Kind Kind
	Job  string
	// Message is one line saying what happened and which limit was hit.
	Message string
	// Trap is set for KindTrap.
	Trap engine.TrapKind
	// ExitCode is set for KindExit.
	ExitCode uint32
	// Limit is the limit that was hit, for the *_limit kinds and timeouts.
	Limit any
	// Detail holds the engine's full message (a guest stack trace) when any.
	Detail string
}

func (e *JobError) Error() string {
	if e.Job == "" {
		return e.Message
	}
	return fmt.Sprintf("job %s: %s", e.Job, e.Message)
}

// Is matches the sentinel of e's kind.
func (e *JobError) Is(target error) bool { return kindSentinel[e.Kind] == target }

// jobErr classifies an engine error.
func jobErr(job string, err error, inst engine.Instance, lim Limits) *JobError {
	if inst != nil && inst.MemoryLimitHit() {
		return &JobError{Kind: KindMemoryLimit, Job: job, Limit: lim.MaxMemoryBytes,
			Message: fmt.Sprintf("memory limit of %s exceeded (the guest tried to grow its memory past it, then failed: %v)", bytesStr(lim.MaxMemoryBytes), err)}
	}
	var (
		trap *engine.Trap
		exit *engine.ExitError
		intr *engine.InterruptedError
		mem  *engine.MemoryLimitError
		fuel *engine.FuelExhaustedError
	)
	switch {
	case errors.As(err, &fuel):
		return &JobError{Kind: KindCPULimit, Job: job, Limit: fuel.Fuel,
			Message: fmt.Sprintf("CPU limit exceeded: the call spent all of its %d units of fuel", fuel.Fuel)}
	case errors.As(err, &intr):
		if errors.Is(intr.Cause, context.DeadlineExceeded) {
			return &JobError{Kind: KindTimeout, Job: job, Limit: lim.Timeout,
				Message: fmt.Sprintf("timed out after %s (timeout limit); the guest was interrupted", lim.Timeout)}
		}
		return &JobError{Kind: KindCanceled, Job: job, Message: "canceled by the caller; the guest was interrupted"}
	case errors.As(err, &mem):
		return &JobError{Kind: KindMemoryLimit, Job: job, Limit: lim.MaxMemoryBytes,
			Message: fmt.Sprintf("module needs %s of memory at start, over the memory limit of %s", bytesStr(mem.Need), bytesStr(lim.MaxMemoryBytes))}
	case errors.As(err, &trap):
		return &JobError{Kind: KindTrap, Job: job, Trap: trap.Kind, Detail: trap.Detail,
			Message: fmt.Sprintf("trapped: %s", trapText(trap.Kind))}
	case errors.As(err, &exit):
		return &JobError{Kind: KindExit, Job: job, ExitCode: exit.Code,
			Message: fmt.Sprintf("exited with status %d", exit.Code)}
	}
	return nil
}

func trapText(k engine.TrapKind) string {
	switch k {
	case engine.TrapUnreachable:
		return "unreachable instruction executed"
	case engine.TrapStackOverflow:
		return "stack overflow (call depth limit)"
	case engine.TrapOutOfBounds:
		return "out-of-bounds memory access"
	case engine.TrapDivideByZero:
		return "integer divide by zero"
	case engine.TrapHostPanic:
		return "a host function failed"
	}
	return string(k)
}

func bytesStr(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
