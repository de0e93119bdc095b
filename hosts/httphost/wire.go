package httphost

import (
	"time"

	"github.com/ferryrun/ferry/hosts/jsonbytes"
)

// Bytes is a byte string as the protocol puts it in JSON: an array of
// numbers 0–255 (serde's encoding of Vec<u8>), never base64.
type Bytes = jsonbytes.Bytes

// ErrNotBytes is what Bytes.UnmarshalJSON returns for anything but an array
// of integers 0–255.
var ErrNotBytes = jsonbytes.ErrNotBytes

func parseBytes(data []byte) (Bytes, error) { return jsonbytes.Parse(data) }

func appendBytes(dst, b []byte) []byte { return jsonbytes.Append(dst, b) }

// InvokeRequest is the body of POST …/invoke and POST /job/{id}.
type InvokeRequest struct {
	// JobID is the Tangle job id; echoed back.
	JobID uint32 `json:"job_id"`
	// Args is the job's input.
	Args Bytes `json:"args"`
	// InvocationID (Ferry) correlates logs; the header X-Ferry-Invocation-Id
	// does the same.
	InvocationID string `json:"invocation_id,omitempty"`
	// IdempotencyKey (Ferry) makes a stateful job take effect once per
	// key (host.Request.IdempotencyKey); the header
	// X-Ferry-Idempotency-Key does the same.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// InvokeResponse is the body of an invocation's answer: 200 with Success,
// or 500 with Error (and Ferry's Code and Details).
type InvokeResponse struct {
	JobID   uint32 `json:"job_id"`
	Result  Bytes  `json:"result"`
	Success bool   `json:"success"`
	// ExecutionMs and MemoryUsedMB are the protocol's whole numbers
	// (rounded up); ExecutionUs and MemoryUsedBytes are Ferry's exact ones.
	ExecutionMs  int64 `json:"execution_ms"`
	MemoryUsedMB int64 `json:"memory_used_mb"`

	Error   string   `json:"error,omitempty"`
	Code    string   `json:"code,omitempty"`
	Details *Details `json:"details,omitempty"`

	ExecutionUs     int64    `json:"execution_us"`
	MemoryUsedBytes uint64   `json:"memory_used_bytes"`
	Cold            bool     `json:"cold"`
	InvocationID    string   `json:"invocation_id,omitempty"`
	Logs            []string `json:"logs,omitempty"`
	// Status is set in batch results only: the status the call would
	// have had on its own.
	Status int `json:"status,omitempty"`
}

// Details is the structured part of an error body.
type Details struct {
	// Kind is the failure's kind: for a job, the runtime's kind (trap,
	// exit, guest_error, abi_violation, timeout, memory_limit,
	// input_too_large, output_too_large, canceled).
	Kind string `json:"kind,omitempty"`
	// FunctionID names the function concerned.
	FunctionID string `json:"function_id,omitempty"`
	// Limit is the limit that was exceeded, when one was: bytes, or
	// milliseconds for a timeout.
	Limit int64 `json:"limit,omitempty"`
	// Problems lists every problem with a request, when there are several.
	Problems []string `json:"problems,omitempty"`
}

// ErrorBody is the body of every error answer except an invocation's.
type ErrorBody struct {
	Error      string   `json:"error"`
	Code       string   `json:"code"`
	FunctionID string   `json:"function_id,omitempty"`
	Details    *Details `json:"details,omitempty"`
}

// Error codes. The first four are the reference server's; the rest are
// Ferry's.
const (
	CodeConflict       = "CONFLICT"
	CodeNotFound       = "NOT_FOUND"
	CodeInfrastructure = "INFRASTRUCTURE_ERROR"
	CodeExecution      = "EXECUTION_ERROR"

	CodeInvalidRequest   = "INVALID_REQUEST"
	CodeInvalidPackage   = "INVALID_PACKAGE"
	CodeUnauthorized     = "UNAUTHORIZED"
	CodeTooLarge         = "PAYLOAD_TOO_LARGE"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeUnavailable      = "UNAVAILABLE"
)

// Config is the deployment configuration: the X-Blueprint-Config header,
// base64 of this JSON. The first four fields are the protocol's; the rest
// are Ferry's.
type Config struct {
	MemoryMB       int               `json:"memory_mb,omitempty"`
	TimeoutSecs    int               `json:"timeout_secs,omitempty"`
	MaxConcurrency int               `json:"max_concurrency,omitempty"`
	EnvVars        map[string]string `json:"env_vars,omitempty"`

	// TimeoutMs is a finer timeout than TimeoutSecs; give one or the other.
	TimeoutMs      int      `json:"timeout_ms,omitempty"`
	MaxInputBytes  int      `json:"max_input_bytes,omitempty"`
	MaxOutputBytes int      `json:"max_output_bytes,omitempty"`
	AllowHosts     []string `json:"allow_hosts,omitempty"`
	// JobID routes the Tangle client's POST /job/{id} to this function.
	JobID *uint32 `json:"job_id,omitempty"`
	// StateNamespace is where the function's state lives in the host's
	// store: Ferry's client sends the job name, so every version of a job
	// on every host shares one state. Default: the package manifest's job
	// name, else the function id.
	StateNamespace string `json:"state_namespace,omitempty"`
}

// Function is what PUT answers (status "deployed") and GET returns (with
// DeployedAt and BinarySizeBytes).
type Function struct {
	FunctionID  string `json:"function_id"`
	Endpoint    string `json:"endpoint"`
	Status      string `json:"status"`
	ColdStartMs int64  `json:"cold_start_ms"`
	MemoryMB    int    `json:"memory_mb"`
	TimeoutSecs int    `json:"timeout_secs"`

	DeployedAt      *time.Time `json:"deployed_at,omitempty"`
	BinarySizeBytes int64      `json:"binary_size_bytes,omitempty"`

	// Ferry's fields.
	Digest         string   `json:"digest"`
	TimeoutMs      int      `json:"timeout_ms"`
	MaxConcurrency int      `json:"max_concurrency"`
	MaxInputBytes  int      `json:"max_input_bytes"`
	MaxOutputBytes int      `json:"max_output_bytes"`
	AllowHosts     []string `json:"allow_hosts,omitempty"`
	JobID          *uint32  `json:"job_id,omitempty"`
	Pure           bool     `json:"pure"`
	Shape          string   `json:"shape,omitempty"`
}

// Health is the body of GET …/health.
type Health struct {
	FunctionID       string     `json:"function_id"`
	Status           string     `json:"status"`
	LastInvocation   *time.Time `json:"last_invocation"`
	TotalInvocations int64      `json:"total_invocations"`
	Error            string     `json:"error,omitempty"`
}

// Warmed is the body of POST …/warm.
type Warmed struct {
	FunctionID      string `json:"function_id"`
	Status          string `json:"status"`
	InstancesWarmed int    `json:"instances_warmed"`
}

// Deleted is the body of DELETE.
type Deleted struct {
	FunctionID string `json:"function_id"`
	Status     string `json:"status"`
}

// BatchRequest is the body of POST …/invoke-batch (Ferry's extension): up
// to MaxBatch invocations of one function in one round trip.
type BatchRequest struct {
	Requests []InvokeRequest `json:"requests"`
}

// BatchResponse answers a batch: one result per request, in order, each
// with its own Status.
type BatchResponse struct {
	FunctionID string           `json:"function_id"`
	Results    []InvokeResponse `json:"results"`
}

// MaxBatch is the most requests one batch may carry.
const MaxBatch = 256
