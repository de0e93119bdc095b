// Package event is the payload Ferry's Lambda bootstrap (cmd/ferry-lambda)
// accepts and answers, shared by the bootstrap and the Lambda host so the
// two cannot drift. It imports only the standard library and jsonbytes.
//
// The bootstrap accepts three payloads (docs/lambda.md):
//
//   - Ferry's call, {"ferry":{"v":1,"input":"<base64>","digest":…}}, answered
//     with a Response: the output and what the call cost.
//   - Tangle's FaaS payload, {"job_id":N,"args":[bytes]}, answered with
//     {"job_id":N,"result":[bytes]}, so Tangle's own Lambda executor can
//     call a Ferry function.
//   - A warm-up: Tangle's {} or {"ferry":{"v":1,"warm":true}}, answered
//     without running the job.
//
// A failed call goes through the Runtime API's error path; its errorType
// is one of the ErrorType constants, which the host maps back to Ferry's
// kinds of failure.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ferryrun/ferry/hosts/jsonbytes"
)

// Version is the Ferry payload version this package writes and reads.
const Version = 1

// Request is any payload the bootstrap accepts.
type Request struct {
	// Ferry is Ferry's own call (or warm-up).
	Ferry *Call `json:"ferry,omitempty"`
	// JobID and Args are Tangle's FaaS payload.
	JobID *uint32         `json:"job_id,omitempty"`
	Args  jsonbytes.Bytes `json:"args,omitempty"`
}

// Call is Ferry's invocation.
type Call struct {
	V int `json:"v"`
	// Input is the job's input (base64 in JSON).
	Input []byte `json:"input,omitempty"`
	// Digest is the module the caller deployed, "sha256:<hex>": a function
	// that now holds another module answers ErrNotDeployed instead of
	// running the wrong code.
	Digest string `json:"digest,omitempty"`
	// InvocationID correlates logs; IdempotencyKey makes a stateful job
	// take effect once per key (host.Request).
	InvocationID   string `json:"invocation_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Warm asks for a warm-up: load, answer, run nothing.
	Warm bool `json:"warm,omitempty"`
}

// Response answers a Ferry call.
type Response struct {
	Output []byte `json:"output"`
	// DurationUs is the time the job ran in the bootstrap.
	DurationUs int64 `json:"duration_us"`
	// MemoryUsedBytes is the job's peak linear memory.
	MemoryUsedBytes uint64 `json:"memory_used_bytes"`
	// Instantiated is true when the call created its instance.
	Instantiated bool   `json:"instantiated,omitempty"`
	InvocationID string `json:"invocation_id,omitempty"`
	// Replayed is true when the idempotency key had already committed
	// and the recorded output was returned without running.
	Replayed bool     `json:"replayed,omitempty"`
	Logs     []string `json:"logs,omitempty"`
	// Engine is the engine that ran the call (Engine* constants).
	Engine string `json:"engine,omitempty"`
}

// Warmed answers a warm-up.
type Warmed struct {
	Warm   bool   `json:"warm"`
	Job    string `json:"job"`
	Digest string `json:"digest"`
	Engine string `json:"engine"`
}

// TangleResponse answers Tangle's payload.
type TangleResponse struct {
	JobID  uint32          `json:"job_id"`
	Result jsonbytes.Bytes `json:"result"`
}

// Engines the bootstrap reports.
const (
	EngineInterpreter = "interpreter"
	EngineCompiler    = "compiler"
)

// Kind says which of the three payloads a Request is.
type Kind int

// Kinds of payload.
const (
	KindFerry Kind = iota + 1
	KindTangle
	KindWarm
)

// ErrBadRequest wraps every payload Parse refuses.
var ErrBadRequest = errors.New("bad request")

// MaxPayloadBytes is Lambda's synchronous Invoke limit (6 MiB); the
// bootstrap never sees more.
const MaxPayloadBytes = 6 << 20

// Parse reads a payload and says which kind it is.
func Parse(payload []byte) (*Request, Kind, error) {
	trimmed := bytes.TrimSpace(payload)
	if bytes.Equal(trimmed, []byte("{}")) {
		// Tangle's executor warms a function with an empty object.
		return &Request{}, KindWarm, nil
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, 0, fmt.Errorf("%w: want a JSON object ({\"ferry\":…} or Tangle's {\"job_id\":…,\"args\":[…]})", ErrBadRequest)
	}
	var r Request
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return nil, 0, fmt.Errorf("%w: trailing data after the object", ErrBadRequest)
	}
	switch {
	case r.Ferry != nil && (r.JobID != nil || r.Args != nil):
		return nil, 0, fmt.Errorf("%w: a payload is either Ferry's or Tangle's, not both", ErrBadRequest)
	case r.Ferry != nil:
		if r.Ferry.V != Version {
			return nil, 0, fmt.Errorf("%w: payload version %d; this bootstrap speaks %d", ErrBadRequest, r.Ferry.V, Version)
		}
		if r.Ferry.Warm {
			return &r, KindWarm, nil
		}
		return &r, KindFerry, nil
	case r.JobID != nil:
		return &r, KindTangle, nil
	}
	return nil, 0, fmt.Errorf("%w: no \"ferry\" call and no Tangle \"job_id\"", ErrBadRequest)
}

// ErrorType is a failed call's errorType on the Runtime API's error path
// (docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html: free-form,
// "Category.Reason" by convention).
type ErrorType string

// Error types. The job's own failures carry the runtime's kind of failure
// (runtime/wasmrt Kind) in the name.
const (
	TypeTrap           ErrorType = "Ferry.Trap"
	TypeExit           ErrorType = "Ferry.Exit"
	TypeGuestError     ErrorType = "Ferry.GuestError"
	TypeABIViolation   ErrorType = "Ferry.ABIViolation"
	TypeTimeout        ErrorType = "Ferry.Timeout"
	TypeMemoryLimit    ErrorType = "Ferry.MemoryLimit"
	TypeInputTooLarge  ErrorType = "Ferry.InputTooLarge"
	TypeOutputTooLarge ErrorType = "Ferry.OutputTooLarge"
	// TypeNotDeployed: the function holds another module than the caller
	// deployed (the call's digest does not match).
	TypeNotDeployed ErrorType = "Ferry.NotDeployed"
	// TypeBadRequest: the payload was not one the bootstrap accepts.
	TypeBadRequest ErrorType = "Ferry.BadRequest"
	// TypeHost: the bootstrap failed around the job (state store
	// unreachable, contention, canceled).
	TypeHost ErrorType = "Ferry.HostError"
	// TypeInit: the bootstrap could not load its package; posted to
	// /runtime/init/error.
	TypeInit ErrorType = "Ferry.InitError"
)

// Class is what a failure means to the caller, mirroring hosts/host's
// kinds without importing them.
type Class int

// Classes of failure.
const (
	ClassHost Class = iota // the infrastructure failed; another host may succeed
	ClassJob               // the job failed; it would anywhere
	ClassTimeout
	ClassLimit
	ClassNotFound
)

// ClassOf maps an errorType, Ferry's or Lambda's own, to its class.
// Unknown types are host failures: something other than the job broke.
func ClassOf(t string) Class {
	switch ErrorType(t) {
	case TypeTrap, TypeExit, TypeGuestError, TypeABIViolation:
		return ClassJob
	case TypeTimeout:
		return ClassTimeout
	case TypeMemoryLimit, TypeInputTooLarge, TypeOutputTooLarge:
		return ClassLimit
	case TypeNotDeployed:
		return ClassNotFound
	}
	switch t {
	case "Sandbox.Timedout":
		// Lambda's own timeout: the function ran past its configured
		// time (the bootstrap's own timer normally fires first).
		return ClassTimeout
	case "Function.ResponseSizeTooLarge":
		return ClassLimit
	}
	return ClassHost
}

// ErrorBody is the Runtime API's error document, as Invoke relays it.
type ErrorBody struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}
