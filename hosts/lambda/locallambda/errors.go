package locallambda

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("locallambda: invalid config")

// apiError is a service error as Lambda's restJson1 protocol carries it:
// the status, the code in X-Amzn-ErrorType, and a JSON body whose "Type"
// says whose fault it was. The body does not carry the code; SDKs read it
// from the header (API_Invoke.html "Errors"; smithy-go restjson1's error
// decoding: X-Amzn-ErrorType, then __type, then code).
type apiError struct {
	status  int
	code    string
	message string
	reason  string // TooManyRequestsException's Reason
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func (e *apiError) write(w http.ResponseWriter) {
	typ := "User"
	if e.status >= 500 {
		typ = "Service"
	}
	body := map[string]string{"Type": typ, "message": e.message}
	if e.reason != "" {
		body["Reason"] = e.reason
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("X-Amzn-ErrorType", e.code)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// Codes and statuses from API_Invoke.html, API_CreateFunction.html and the
// SDK model's error shapes (aws-sdk-go-v2 service/lambda schemas).

func errNotFound(arn string) *apiError {
	return &apiError{http.StatusNotFound, "ResourceNotFoundException", "Function not found: " + arn, ""}
}

func errConflict(msg string) *apiError {
	return &apiError{http.StatusConflict, "ResourceConflictException", msg, ""}
}

func errInvalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf(format, args...), ""}
}

// errValidation words a constraint violation the way Lambda's model
// validation does, under InvalidParameterValueException as the service's
// documented parameter errors (API_CreateFunction.html "Errors").
func errValidation(value any, field, constraint string) *apiError {
	return errInvalid("1 validation error detected: Value '%v' at '%s' failed to satisfy constraint: %s", value, field, constraint)
}

func errTooLarge(msg string) *apiError {
	// Modelled as RequestTooLargeException, seen on the wire as
	// RequestEntityTooLargeException (API_Invoke.html, and as observed in
	// public issue threads, docs/local-lambda.md).
	return &apiError{http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", msg, ""}
}

func errThrottled() *apiError {
	// API_Invoke.html: TooManyRequestsException 429, Reason enum.
	return &apiError{http.StatusTooManyRequests, "TooManyRequestsException", "Rate Exceeded.", "ConcurrentInvocationLimitExceeded"}
}

func errService(msg string) *apiError {
	return &apiError{http.StatusInternalServerError, "ServiceException", msg, ""}
}

// functionError is the body of a function error Lambda itself produces
// (crash, timeout, oversize reply); the SDK hands it back as the Invoke
// payload under X-Amz-Function-Error: Unhandled (API_Invoke.html, golang-exceptions.html). The key
// order follows the captured payloads.
type functionError struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

func (f functionError) body() []byte {
	b, _ := json.Marshal(f)
	return b
}

// exitedError is what the caller gets when the runtime process exits
// before answering (real-AWS captures in cargo-lambda #572 and floci #3314, matching the
// RIE's wording).
func exitedError(requestID, exit string) functionError {
	return functionError{"Runtime.ExitError", "RequestId: " + requestID + " Error: " + exitReason(exit)}
}

// exitReason words a process's end the way Lambda does: "exit status 0" is
// "without providing a reason".
func exitReason(exit string) string {
	if exit == "" || exit == "exit status 0" {
		return "Runtime exited without providing a reason"
	}
	return "Runtime exited with error: " + exit
}

// timeoutError is the 2026 capture of a timed-out invoke (floci #3314;
// troubleshooting-execution.html has the older timestamped form).
func timeoutError(requestID string, seconds float64) functionError {
	return functionError{"Sandbox.Timedout", fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", requestID, seconds)}
}

// responseTooLargeError is the RIE's wording (aws-lambda-runtime-interface-emulator
// rapi/handler, invocationresponse).
func responseTooLargeError(n int64) functionError {
	return functionError{"Function.ResponseSizeTooLarge", fmt.Sprintf("Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes).", n, maxResponseBytes)}
}

// outOfMemoryError is what Lambda reports when the sandbox outgrows its
// memory size (not in the spec; see docs/local-lambda.md).
func outOfMemoryError(requestID string) functionError {
	return functionError{"Runtime.OutOfMemory", "RequestId: " + requestID + " Error: Runtime exited with error: signal: killed"}
}

// invalidEntrypointError reports a bootstrap that could not be started
// (Runtime.InvalidEntrypoint, runtimes-custom.html; the messages are
// unverified, see docs/local-lambda.md).
func invalidEntrypointError(requestID, why string) functionError {
	return functionError{"Runtime.InvalidEntrypoint", "RequestId: " + requestID + " Error: " + why}
}
