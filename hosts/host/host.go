// Package host is the contract every place a job can run implements: the
// local runtime, a custom-FaaS HTTP host, AWS Lambda, Cloudflare Workers.
// It is deliberately small and imports only the standard library, so the
// orchestrator and every host depend on it and on nothing heavier.
//
// A Host deploys a job's module, invokes it, and removes it. Extras that not
// every host has (warming, health, stats, batches) are separate one-method
// interfaces, found by type assertion. Errors are typed (errors.go) so the
// orchestrator can tell a job that failed from a host that failed: it
// retries and fails over on the second, never on the first.
package host

import (
	"context"
	"fmt"
	"time"
)

// Host is a place jobs run. Implementations are safe for concurrent use.
type Host interface {
	// Name identifies the host in plans, logs and metrics ("local",
	// "custom/faas.example.com", "aws-lambda/us-east-1").
	Name() string
	// Deploy makes the job invocable and returns its handle. Deploying a
	// job that is already deployed with the same module returns the same
	// deployment; with a changed module it replaces the old one.
	Deploy(ctx context.Context, job Job) (*Deployment, error)
	// Invoke runs the deployed job once.
	Invoke(ctx context.Context, d *Deployment, req Request) (*Response, error)
	// Remove undeploys the job. Invoking it afterwards is ErrNotFound.
	Remove(ctx context.Context, d *Deployment) error
}

// Job is what a host deploys.
type Job struct {
	// Name is the job's name: a letter or digit, then up to 127 of
	// [A-Za-z0-9._-] (blueprint job names are the narrower [a-z0-9_-]{1,64}).
	Name string
	// Module is the WebAssembly module; Digest its "sha256:<hex>".
	Module []byte
	Digest string
	// Limits are enforced by the host, not just recorded.
	Limits Limits
	// Pure jobs (no state, no network) may reuse instances and may be
	// retried and hedged.
	Pure bool
	// AllowHosts are the hosts the job's HTTP requests may reach.
	AllowHosts []string
	// StateNamespace is where a stateful job's state lives in the host's
	// store; default Name. Deployments of one job on every host share it.
	StateNamespace string
}

// Limits bound one invocation.
type Limits struct {
	// MemoryMB caps the job's linear memory. 0: the host's default.
	MemoryMB int
	// Timeout is the wall-clock budget of one invocation. 0: the host's
	// default.
	Timeout time.Duration
	// MaxInputBytes and MaxOutputBytes cap the payload. 0: the host's
	// default.
	MaxInputBytes  int
	MaxOutputBytes int
}

// Deployment is a deployed job.
type Deployment struct {
	// ID is the host's own name for it (a function name, an ARN, a path).
	ID string
	// Job and Digest say what is deployed.
	Job    string
	Digest string
	// Host and Region say where.
	Host   string
	Region string
	// Endpoint is where the host reaches it, if it has one.
	Endpoint string
	// Limits as the host applies them (defaults filled in).
	Limits Limits
	// Pure is the job's purity, which decides what is safe to retry.
	Pure bool
}

// Request is one invocation.
type Request struct {
	Input []byte
	// InvocationID correlates logs across hosts; empty: the host makes one.
	InvocationID string
	// IdempotencyKey, when set, makes a stateful job take effect once per
	// key: the key commits with the job's state changes and output, and a
	// second delivery returns that output without running the job again
	// (a retry after a crash or an ambiguous failure). Hosts that run
	// jobs with Ferry's runtime honour it; it has no effect on jobs
	// without state.
	IdempotencyKey string
}

// Response is what an invocation returned and what it cost.
type Response struct {
	Output []byte
	// Duration is the time the job ran, as the host measured it.
	Duration time.Duration
	// Billed is the time the host bills (rounded to its granularity);
	// equal to Duration for hosts that do not bill.
	Billed time.Duration
	// MemoryUsedBytes is the largest linear memory the job reached.
	MemoryUsedBytes uint64
	// EnvironmentMemoryBytes is the peak resident memory of the whole
	// environment that served the call (runtime, engine and instance),
	// where the host reports one: Lambda's Max Memory Used. Zero when the
	// host does not say.
	EnvironmentMemoryBytes uint64
	// Cold is true when the call had to create an instance or environment
	// first.
	Cold bool
	// Host and Region say where it ran.
	Host   string
	Region string
	// InvocationID as used by the host.
	InvocationID string
	// Logs are the lines the job logged, when the host returns them.
	Logs []string
}

// Warmer prepares instances ahead of calls.
type Warmer interface {
	// Warm makes up to n instances ready and returns how many are.
	Warm(ctx context.Context, d *Deployment, n int) (int, error)
}

// HealthChecker reports whether a deployment can take calls.
type HealthChecker interface {
	Health(ctx context.Context, d *Deployment) (Health, error)
}

// Health is a deployment's state.
type Health struct {
	Healthy          bool
	LastInvocation   time.Time // zero: never invoked
	TotalInvocations int64
	Detail           string
}

// StatsReporter reports a deployment's counters.
type StatsReporter interface {
	Stats(ctx context.Context, d *Deployment) (Stats, error)
}

// Stats are a deployment's counters since it was deployed.
type Stats struct {
	Invocations int64
	Errors      int64
	ColdStarts  int64
	// Busy is the total time invocations ran.
	Busy time.Duration
}

// BatchInvoker runs several requests in one round trip.
type BatchInvoker interface {
	// InvokeBatch returns one result per request, in order; a failed
	// request has a nil Response and its error.
	InvokeBatch(ctx context.Context, d *Deployment, reqs []Request) []Result
}

// Result is one request's outcome in a batch.
type Result struct {
	Response *Response
	Err      error
}

type progressKey struct{}

// WithProgress returns ctx carrying f, which a host's Deploy calls once per
// step it takes ("create", "upload", "wait active", …), so a command can
// show progress. A Deploy that changes nothing calls it not at all.
func WithProgress(ctx context.Context, f func(step string)) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

// Progress reports a step to the function WithProgress put on ctx, if any.
func Progress(ctx context.Context, format string, args ...any) {
	if f, ok := ctx.Value(progressKey{}).(func(string)); ok {
		f(fmt.Sprintf(format, args...))
	}
}
