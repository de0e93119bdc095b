// Package guest is the SDK for Ferry jobs written in Go. A job is an ordinary
// Go program:
//
//	package main
//
//	import "github.com/ferryrun/ferry/guest"
//
//	func main() {
//		guest.Handle(func(in []byte) ([]byte, error) {
//			return bytes.ToUpper(in), nil
//		})
//	}
//
// Built with GOOS=wasip1 GOARCH=wasm and -buildmode=c-shared it is a Ferry
// reactor (the fast path: the host copies input and output in bulk); built
// without -buildmode it is a WASI command (stdin in, stdout out). Built for the
// machine you develop on, Handle reads stdin and writes stdout, and state lives
// in memory, so handlers can be unit-tested with plain `go test`.
//
// The package never exposes the ABI (docs/abi.md in the Ferry repository); it
// has no dependencies outside the standard library, and imports nothing heavy,
// because everything it imports is initialised in every instance.
package guest

import (
	"errors"
	"fmt"
)

// Handler is a job: it turns one input into one output. An error fails the
// invocation with the error's message as a job error.
type Handler func(in []byte) ([]byte, error)

// Level is a log level.
type Level int32

// Log levels, as numbered by the ABI.
const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Errors returned by the state and HTTP helpers. Compare with errors.Is.
var (
	// ErrDenied means the job was not granted the capability or host.
	ErrDenied = errors.New("ferry: denied by host")
	// ErrTooLarge means a key, value, request or response exceeded a limit.
	ErrTooLarge = errors.New("ferry: over the host's size limit")
	// ErrHostFailed means the host could not complete the call.
	ErrHostFailed = errors.New("ferry: host call failed")
	// ErrInvalid means the host rejected the arguments.
	ErrInvalid = errors.New("ferry: invalid argument")
	// ErrRateLimited means the job made more calls than the host allows.
	ErrRateLimited = errors.New("ferry: too many host calls")
)

// Host status codes (negative returns of host functions).
const (
	codeNotFound    = -1
	codeDenied      = -2
	codeTooLarge    = -3
	codeFailed      = -4
	codeInvalid     = -5
	codeRateLimited = -6
)

func codeErr(op string, code int32) error {
	var e error
	switch code {
	case codeDenied:
		e = ErrDenied
	case codeTooLarge:
		e = ErrTooLarge
	case codeFailed:
		e = ErrHostFailed
	case codeInvalid:
		e = ErrInvalid
	case codeRateLimited:
		e = ErrRateLimited
	default:
		return fmt.Errorf("%s: host returned code %d", op, code)
	}
	return fmt.Errorf("%s: %w", op, e)
}

// Log writes one line to the host's log, tagged with the job and invocation.
func Log(level Level, msg string) { hostLog(level, msg) }

// Debug logs at debug level.
func Debug(msg string) { hostLog(LevelDebug, msg) }

// Info logs at info level.
func Info(msg string) { hostLog(LevelInfo, msg) }

// Warn logs at warn level.
func Warn(msg string) { hostLog(LevelWarn, msg) }

// Logf formats and logs at info level.
func Logf(format string, args ...any) { hostLog(LevelInfo, fmt.Sprintf(format, args...)) }

// StateGet reads a value from the job's state. ok is false when the key is
// absent.
func StateGet(key string) (value []byte, ok bool, err error) { return stateGet(key) }

// StateSet writes a value to the job's state.
func StateSet(key string, value []byte) error { return stateSet(key, value) }

// StateDelete removes a key from the job's state. Removing an absent key is
// not an error.
func StateDelete(key string) error { return stateDelete(key) }

// Request is an outgoing HTTP request. Only hosts the job was granted are
// reachable.
type Request struct {
	Method string // GET when empty
	URL    string
	Header map[string]string
	Body   []byte
}

// Response is an HTTP response.
type Response struct {
	Status int
	Header map[string]string
	Body   []byte
}

// Fetch sends an HTTP request through the host.
func Fetch(req Request) (*Response, error) {
	if req.Method == "" {
		req.Method = "GET"
	}
	return fetch(req)
}
