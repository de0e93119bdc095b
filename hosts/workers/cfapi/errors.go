package cfapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudflare/cloudflare-go/v7/workers"
)

// Kinds of failure. An error from the client matches at most one of them
// with errors.Is; a server error (5xx) or a broken connection matches none.
var (
	// ErrAuth: the token is wrong, lacks a permission, or the account is
	// not entitled to Workers.
	ErrAuth = errors.New("not authorized")
	// ErrNotFound: no such Worker (or the account has no workers.dev
	// subdomain).
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: the Worker, or one of its variables, is over a size
	// limit.
	ErrTooLarge = errors.New("too large")
	// ErrInvalid: the request or the script is wrong (bad name, missing
	// module, start-up exception, binding without a name, ...). Sending
	// the same request again fails the same way.
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: someone else changed the Worker at the same time, or a
	// Durable Object migration's tag precondition failed.
	ErrConflict = errors.New("conflict")
	// ErrQuota: too many Workers or variables on the account, or rate
	// limited.
	ErrQuota = errors.New("over quota")
)

// ErrorDetail is one entry of the v4 envelope's "errors" array.
type ErrorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// APIError is Cloudflare's answer to a failed call: its HTTP status and
// the envelope's errors, with the operation and Worker it was about.
// errors.Is matches it against the kinds above; errors.As reaches the
// SDK's *cloudflare.Error (the same type as *workers.Error) in Err.
type APIError struct {
	// Op is what the client was doing ("upload", "delete", "read",
	// "put secret on", "enable workers.dev for", "read account subdomain").
	Op string
	// Script is the Worker's name; empty for account-wide operations.
	Script string
	// Status is the HTTP status of the last attempt.
	Status int
	// Errors are the envelope's errors, in order.
	Errors []ErrorDetail
	// Err is the SDK's error; nil when the answer was a 2xx envelope
	// saying "success": false.
	Err error

	kind error
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("cfapi: ")
	b.WriteString(where(e.Op, e.Script))
	if e.kind != nil {
		b.WriteString(": ")
		b.WriteString(e.kind.Error())
	}
	if e.Err != nil {
		// The SDK's message names the method and URL and quotes the answer
		// whole; keep it as it is.
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
		return b.String()
	}
	fmt.Fprintf(&b, ": HTTP %d", e.Status)
	for _, d := range e.Errors {
		fmt.Fprintf(&b, "; %d %s", d.Code, d.Message)
	}
	return b.String()
}

// Unwrap exposes the kind (when there is one) and the SDK's error.
func (e *APIError) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// HasCode reports whether Cloudflare answered with the error code.
func (e *APIError) HasCode(code int) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// Error codes the client acts on. The table of codes is in
// https://developers.cloudflare.com/workers/observability/errors/ (and the
// codes Wrangler names in its own error handling); 10061, 10074 and 10079
// are from reports of Durable Object migrations that the API refused:
// https://github.com/cloudflare/workers-sdk/issues/10034,
// https://github.com/cloudflare/workers-sdk/issues/705.
const (
	codeMigrationTagPrecondition = 10079
)

var kindOfCode = map[int]error{
	10000: ErrAuth,     // authentication error (also: a token used on another account's path)
	9106:  ErrAuth,     // missing auth headers (https://developers.cloudflare.com/workers/tooling/api/requests/, an old page)
	10023: ErrAuth,     // workers.api.error.unauthorized
	10015: ErrAuth,     // account not entitled to Workers
	10007: ErrNotFound, // Worker or workers.dev subdomain not found
	10027: ErrTooLarge, // workers.api.error.script_too_large
	10054: ErrTooLarge, // a variable or secret too large
	10006: ErrInvalid,  // code could not be parsed
	10016: ErrInvalid,  // invalid Worker name
	10021: ErrInvalid,  // validation error: bad metadata part, start-up exception, no such module
	10026: ErrInvalid,  // request body could not be parsed
	10052: ErrInvalid,  // a binding without a name
	10056: ErrInvalid,  // binding not found
	10061: ErrInvalid,  // Durable Object class without a migration, or not exported
	10068: ErrInvalid,  // no event handler registered
	10069: ErrInvalid,  // unsupported event handler
	10074: ErrInvalid,  // a migration that recreates an existing class
	7000:  ErrInvalid,  // no route for that URI
	7003:  ErrInvalid,  // could not route: bad object identifier
	10035: ErrConflict, // concurrent modification
	10079: ErrConflict, // migration tag precondition failed
	10037: ErrQuota,    // too many Workers on the account
	10055: ErrQuota,    // too many variables or secrets
}

// classify picks the kind of an answer: the first error code the client
// knows, else the HTTP status.
func classify(status int, details []ErrorDetail) error {
	for _, d := range details {
		if k, ok := kindOfCode[d.Code]; ok {
			return k
		}
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrAuth
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusConflict:
		return ErrConflict
	case http.StatusTooManyRequests:
		return ErrQuota
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return ErrInvalid
	}
	return nil
}

// fromSDK turns an error from an SDK call into the client's: an answer
// becomes an *APIError; anything else (a broken connection, a cancelled
// context) is wrapped with what was being done.
func fromSDK(op, script string, err error) error {
	var sdkErr *workers.Error
	if !errors.As(err, &sdkErr) {
		return fmt.Errorf("cfapi: %s: %w", where(op, script), err)
	}
	e := &APIError{Op: op, Script: script, Status: sdkErr.StatusCode, Err: sdkErr}
	for _, d := range sdkErr.Errors {
		e.Errors = append(e.Errors, ErrorDetail{Code: int(d.Code), Message: d.Message})
	}
	e.kind = classify(e.Status, e.Errors)
	return e
}

// invalid is a request the client refuses to send.
func invalid(op, script string, problems ...string) error {
	return fmt.Errorf("cfapi: %s: %w: %s", where(op, script), ErrInvalid, strings.Join(problems, "; "))
}

func where(op, script string) string {
	if script == "" {
		return op
	}
	return fmt.Sprintf("%s worker %q", op, script)
}
