package wasmrt

import (
	"errors"
	"fmt"
	"time"
)

// Limits bound one invocation. Every field has a finite default, safe on a
// shared machine; raise them deliberately. The zero value of a field means
// "use the default", never "unlimited".
type Limits struct {
	// MaxMemoryBytes caps guest linear memory. Default 128 MiB (a Cloudflare
	// Workers isolate's budget), at most 4 GiB.
	MaxMemoryBytes uint64 `json:"max_memory_bytes"`
	// Timeout is the wall-clock budget of one invocation; the guest is
	// interrupted when it runs out. Default 10 s.
	Timeout time.Duration `json:"timeout"`
	// MaxInputBytes and MaxOutputBytes cap the payload. Default 6 MiB each
	// (AWS Lambda's synchronous payload limit).
	MaxInputBytes  int `json:"max_input_bytes"`
	MaxOutputBytes int `json:"max_output_bytes"`
	// MaxLogBytes caps what one invocation may log (ferry.log and stderr).
	// Default 64 KiB; the rest is dropped and the drop is noted.
	MaxLogBytes int `json:"max_log_bytes"`
	// MaxStateKeyBytes and MaxStateValueBytes cap state entries. Default
	// 1 KiB and 1 MiB.
	MaxStateKeyBytes   int `json:"max_state_key_bytes"`
	MaxStateValueBytes int `json:"max_state_value_bytes"`
	// MaxStateWriteBytes caps what one invocation may write to state
	// (keys and values, buffered until it commits). Default 8 MiB.
	MaxStateWriteBytes int `json:"max_state_write_bytes"`
	// MaxStateAttempts caps how often a stateful job runs again because
	// its state changed under it. Default 64.
	MaxStateAttempts int `json:"max_state_attempts"`
	// MaxHostCalls caps state and HTTP calls per invocation. Default 10000.
	MaxHostCalls int `json:"max_host_calls"`
	// MaxHTTPRequests, MaxHTTPResponseBytes and HTTPTimeout bound outgoing
	// HTTP. Defaults 16 requests, 4 MiB, 5 s.
	MaxHTTPRequests      int           `json:"max_http_requests"`
	MaxHTTPResponseBytes int           `json:"max_http_response_bytes"`
	HTTPTimeout          time.Duration `json:"http_timeout"`
}

// Default limits.
const (
	DefaultMaxMemoryBytes       = 128 << 20
	DefaultTimeout              = 10 * time.Second
	DefaultMaxInputBytes        = 6 << 20
	DefaultMaxOutputBytes       = 6 << 20
	DefaultMaxLogBytes          = 64 << 10
	DefaultMaxStateKeyBytes     = 1 << 10
	DefaultMaxStateValueBytes   = 1 << 20
	DefaultMaxStateWriteBytes   = 8 << 20
	DefaultMaxStateAttempts     = 64
	DefaultMaxHostCalls         = 10000
	DefaultMaxHTTPRequests      = 16
	DefaultMaxHTTPResponseBytes = 4 << 20
	DefaultHTTPTimeout          = 5 * time.Second

	maxMemoryBytes = 4 << 30 // wasm32's address space
	maxPayload     = 1 << 30
)

// DefaultLimits returns the defaults.
func DefaultLimits() Limits { return Limits{}.withDefaults() }

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if l.MaxMemoryBytes == 0 {
		l.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultTimeout
	}
	if l.HTTPTimeout == 0 {
		l.HTTPTimeout = DefaultHTTPTimeout
	}
	def(&l.MaxInputBytes, DefaultMaxInputBytes)
	def(&l.MaxOutputBytes, DefaultMaxOutputBytes)
	def(&l.MaxLogBytes, DefaultMaxLogBytes)
	def(&l.MaxStateKeyBytes, DefaultMaxStateKeyBytes)
	def(&l.MaxStateValueBytes, DefaultMaxStateValueBytes)
	def(&l.MaxStateWriteBytes, DefaultMaxStateWriteBytes)
	def(&l.MaxStateAttempts, DefaultMaxStateAttempts)
	def(&l.MaxHostCalls, DefaultMaxHostCalls)
	def(&l.MaxHTTPRequests, DefaultMaxHTTPRequests)
	def(&l.MaxHTTPResponseBytes, DefaultMaxHTTPResponseBytes)
	return l
}

// ErrInvalidLimits wraps every Validate failure.
var ErrInvalidLimits = errors.New("invalid limits")

// Validate reports a negative or out-of-range limit.
func (l Limits) Validate() error {
	var errs []error
	bad := func(name string, v any, why string) {
		errs = append(errs, fmt.Errorf("%w: %s = %v: %s", ErrInvalidLimits, name, v, why))
	}
	if l.MaxMemoryBytes > maxMemoryBytes {
		bad("max memory", l.MaxMemoryBytes, "over wasm32's 4 GiB")
	}
	if l.Timeout < 0 {
		bad("timeout", l.Timeout, "negative")
	}
	if l.HTTPTimeout < 0 {
		bad("http timeout", l.HTTPTimeout, "negative")
	}
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{
		{"max input bytes", l.MaxInputBytes, maxPayload},
		{"max output bytes", l.MaxOutputBytes, maxPayload},
		{"max log bytes", l.MaxLogBytes, maxPayload},
		{"max state key bytes", l.MaxStateKeyBytes, 1 << 20},
		{"max state value bytes", l.MaxStateValueBytes, maxPayload},
		{"max state write bytes", l.MaxStateWriteBytes, maxPayload},
		{"max state attempts", l.MaxStateAttempts, 1 << 16},
		{"max host calls", l.MaxHostCalls, 1 << 30},
		{"max http requests", l.MaxHTTPRequests, 1 << 20},
		{"max http response bytes", l.MaxHTTPResponseBytes, maxPayload},
	} {
		switch {
		case f.v < 0:
			bad(f.name, f.v, "negative")
		case f.v > f.max:
			bad(f.name, f.v, fmt.Sprintf("over the maximum %d", f.max))
		}
	}
	return errors.Join(errs...)
}
