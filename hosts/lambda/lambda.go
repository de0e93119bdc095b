// Package lambda is the AWS Lambda host: it deploys a job as a Lambda
// function on the provided.al2023 runtime — Ferry's bootstrap
// (cmd/ferry-lambda) zipped with the job's module.wasm and manifest.json —
// and invokes it through the Lambda API with aws-sdk-go-v2.
//
// One Host serves one region with one client. Deploying to several regions
// is several hosts (the policy lists one aws-lambda provider per region,
// and `ferry deploy` and `ferry serve` make a host for each).
//
// A function is named after its job (Config.FunctionPrefix + the job), so a
// redeploy updates the same function: UpdateFunctionCode, then
// UpdateFunctionConfiguration, each waited for with the SDK's waiters. Every
// call carries the digest of the module the caller deployed; a function
// that now holds another module refuses it (host.ErrNotFound), so an old
// deployment handle never runs new code. docs/lambda.md has the details.
package lambda

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/hostpkg"
	"github.com/ferryrun/ferry/hosts/lambda/bootstrap"
	"github.com/ferryrun/ferry/hosts/lambda/event"
	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

// Architectures, as Lambda spells them.
const (
	ArchARM64 = "arm64"
	ArchX86   = "x86_64"
)

// Defaults and Lambda's limits (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
const (
	DefaultPrefix = "ferry-"
	// DefaultOverheadMB is memory the bootstrap needs besides the job's
	// linear memory: Ferry's runtime, compiled code, the Go heap. Measured
	// on the local Lambda for the 2.8 MB Go sha256 guest (Max Memory
	// Used): 90 MB on the interpreter, 84 MB compiled, and 155 MB at the
	// peak of the tiered engine's background compilation, when both
	// engines hold the module.
	DefaultOverheadMB = 128
	minMemoryMB       = 128
	maxMemoryMB       = 10240
	maxTimeoutSecs    = 900
	// MaxPayloadBytes is the synchronous Invoke request limit (6 MiB).
	MaxPayloadBytes = 6 << 20
	// MaxZipBytes is the largest zip CreateFunction takes directly (50 MB).
	MaxZipBytes = 50 << 20
	// timeoutSlack is added to the job's timeout for Lambda's: the
	// bootstrap's own timer fires first and reports a precise error.
	timeoutSlack = time.Second
)

// Environment variables of a function that the host owns.
const (
	envDigest = "FERRY_DIGEST"
	envJob    = "FERRY_JOB"
)

// Config configures a Host.
type Config struct {
	// Region is the AWS region; required.
	Region string
	// Name is the host's name; default "aws-lambda/<region>".
	Name string
	// AWS is the SDK configuration (credentials, retries, endpoint
	// resolution). Its Region is replaced by Region.
	AWS aws.Config
	// BaseEndpoint overrides the Lambda API's endpoint (a VPC endpoint,
	// or `ferry host lambda-local`).
	BaseEndpoint string
	// Role is the execution role ARN; Deploy requires it.
	Role string
	// Arch is arm64 (default) or x86_64; Bootstrap must be built for it.
	Arch string
	// Bootstrap is the ferry-lambda executable for Arch; Deploy requires
	// it.
	Bootstrap []byte
	// FunctionPrefix starts every function name; default "ferry-".
	FunctionPrefix string
	// State is the state store stateful jobs use on Lambda, a spec the
	// bootstrap opens (dynamodb://TABLE?region=…); empty: stateful jobs
	// are refused at deploy.
	State string
	// Engine is the bootstrap's engine (bootstrap.Engine*); default
	// tiered.
	Engine string
	// OverheadMB is added to a job's memory for the function's;
	// default DefaultOverheadMB.
	OverheadMB int
	// Env is added to every function's environment.
	Env map[string]string
	// WaitMinDelay and WaitMax tune the SDK's waiters; zero: the SDK's
	// defaults (1 s, and 5 minutes).
	WaitMinDelay time.Duration
	WaitMax      time.Duration
	// Logger may be nil.
	Logger *slog.Logger
}

// Validate checks the configuration a host needs to exist; Deploy checks
// what deploying needs (Role, Bootstrap).
func (c Config) Validate() error {
	var errs []error
	if c.Region == "" {
		errs = append(errs, errors.New("no region"))
	}
	switch c.Arch {
	case "", ArchARM64, ArchX86:
	default:
		errs = append(errs, fmt.Errorf("arch %q: want %s or %s", c.Arch, ArchARM64, ArchX86))
	}
	switch c.Engine {
	case "", bootstrap.EngineTiered, bootstrap.EngineCompiler, bootstrap.EngineInterpreter:
	default:
		errs = append(errs, fmt.Errorf("engine %q: want tiered, compiler or interpreter", c.Engine))
	}
	if c.FunctionPrefix != "" && !prefixRE.MatchString(c.FunctionPrefix) {
		errs = append(errs, fmt.Errorf("function prefix %q: want up to 24 of [A-Za-z0-9_-]", c.FunctionPrefix))
	}
	if c.OverheadMB < 0 {
		errs = append(errs, fmt.Errorf("negative overhead %d MB", c.OverheadMB))
	}
	return errors.Join(errs...)
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,24}$`)

// Host deploys and invokes jobs as Lambda functions in one region.
type Host struct {
	cfg    Config
	name   string
	client *awslambda.Client
	log    *slog.Logger

	mu   sync.Mutex
	jobs map[string]*sync.Mutex // per function: one deploy at a time
}

var (
	_ host.Host          = (*Host)(nil)
	_ host.HealthChecker = (*Host)(nil)
	_ host.Warmer        = (*Host)(nil)
)

// New returns a host for cfg.Region.
func New(cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lambda host: %w", err)
	}
	if cfg.Arch == "" {
		cfg.Arch = ArchARM64
	}
	if cfg.FunctionPrefix == "" {
		cfg.FunctionPrefix = DefaultPrefix
	}
	if cfg.OverheadMB == 0 {
		cfg.OverheadMB = DefaultOverheadMB
	}
	name := cfg.Name
	if name == "" {
		name = "aws-lambda/" + cfg.Region
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	awsCfg := cfg.AWS.Copy()
	awsCfg.Region = cfg.Region
	client := awslambda.NewFromConfig(awsCfg, func(o *awslambda.Options) {
		if cfg.BaseEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.BaseEndpoint)
		}
	})
	return &Host{cfg: cfg, name: name, client: client, log: log, jobs: map[string]*sync.Mutex{}}, nil
}

// Name implements host.Host.
func (h *Host) Name() string { return h.name }

// Client is the host's Lambda client.
func (h *Host) Client() *awslambda.Client { return h.client }

var invalidNameRE = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// FunctionName is the Lambda function a job deploys to: the prefix and
// the job's name, with characters Lambda refuses replaced and a hash
// suffix whenever the name had to change, so two jobs never share one.
func (h *Host) FunctionName(job string) string {
	name := h.cfg.FunctionPrefix + job
	clean := invalidNameRE.ReplaceAllString(name, "_")
	if clean == name && len(name) <= 64 {
		return name
	}
	sum := sha256.Sum256([]byte(job))
	suffix := fmt.Sprintf("-%x", sum[:4])
	if len(clean) > 64-len(suffix) {
		clean = clean[:64-len(suffix)]
	}
	return clean + suffix
}

func (h *Host) lock(fn string) func() {
	h.mu.Lock()
	m, ok := h.jobs[fn]
	if !ok {
		m = &sync.Mutex{}
		h.jobs[fn] = m
	}
	h.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// WithProgress is host.WithProgress.
func WithProgress(ctx context.Context, f func(step string)) context.Context {
	return host.WithProgress(ctx, f)
}

func progress(ctx context.Context, format string, args ...any) { host.Progress(ctx, format, args...) }

// Deploy implements host.Host: it creates the job's function, or updates
// its code and configuration when they changed, and waits until it is
// ready. An unchanged job is not uploaded again.
func (h *Host) Deploy(ctx context.Context, job host.Job) (*host.Deployment, error) {
	fail := func(kind error, format string, args ...any) (*host.Deployment, error) {
		return nil, host.Errorf(kind, "deploy", h.name, job.Name, format, args...)
	}
	if h.cfg.Role == "" {
		return fail(host.ErrHost, "no execution role: Lambda functions need an IAM role to run as; set it with `ferry cloud policy --faas-provider aws-lambda --faas-aws-role arn:aws:iam::ACCOUNT:role/NAME`")
	}
	if len(h.cfg.Bootstrap) == 0 {
		return fail(host.ErrHost, "no bootstrap executable for %s (build it with `make lambda`)", h.cfg.Arch)
	}
	digest := modstore.Digest(job.Module)
	if job.Digest != "" && job.Digest != digest {
		return fail(host.ErrHost, "module bytes hash to %s, not %s", digest, job.Digest)
	}
	// Lambda would only find out at the first call's init; refuse a module
	// the bootstrap cannot run now, as every host does.
	info, err := abi.Describe(job.Module)
	if err != nil {
		return fail(host.ErrHost, "refused module: %w", err)
	}
	stateful := info.Has(abi.CapState)
	if stateful && h.cfg.State == "" {
		return fail(host.ErrHost, "job keeps state, and no state store is configured for Lambda (set ferry.state.url to dynamodb://TABLE?region=…)")
	}
	lim, err := h.limits(job.Limits)
	if err != nil {
		return fail(host.ErrHost, "%v", err)
	}
	zip, err := hostpkg.Build(job.Module, hostpkg.Manifest{
		Job: job.Name, Pure: info.Pure(), AllowHosts: job.AllowHosts,
		Limits: hostpkg.Limits{MemoryMB: job.Limits.MemoryMB, TimeoutMs: int(lim.Timeout.Milliseconds()),
			MaxInputBytes: job.Limits.MaxInputBytes, MaxOutputBytes: job.Limits.MaxOutputBytes},
	}, map[string][]byte{hostpkg.BootstrapFile: h.cfg.Bootstrap})
	if err != nil {
		return fail(host.ErrHost, "package: %w", err)
	}
	if len(zip) > MaxZipBytes {
		return fail(host.ErrLimit, "the package is %d bytes; Lambda takes at most %d directly", len(zip), MaxZipBytes)
	}
	fn := h.FunctionName(job.Name)
	env := h.environment(job, digest, stateful)
	want := functionConfig{memoryMB: h.memoryMB(job.Limits), timeoutSecs: timeoutSecs(lim.Timeout), env: env}

	defer h.lock(fn)()
	cur, err := h.client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(fn)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		progress(ctx, "create function %s", fn)
		_, err = h.client.CreateFunction(ctx, &awslambda.CreateFunctionInput{
			FunctionName:  aws.String(fn),
			Role:          aws.String(h.cfg.Role),
			Runtime:       types.RuntimeProvidedal2023,
			Handler:       aws.String("bootstrap"),
			Architectures: []types.Architecture{types.Architecture(h.cfg.Arch)},
			Code:          &types.FunctionCode{ZipFile: zip},
			MemorySize:    aws.Int32(int32(want.memoryMB)),
			Timeout:       aws.Int32(int32(want.timeoutSecs)),
			Environment:   &types.Environment{Variables: env},
			Description:   aws.String(fmt.Sprintf("Ferry job %s (%s)", job.Name, digest)),
		})
		if err != nil {
			return nil, h.sdkError("deploy", job.Name, err)
		}
		progress(ctx, "wait until %s is active", fn)
		if err := h.waitActive(ctx, fn); err != nil {
			return nil, h.sdkError("deploy", job.Name, err)
		}
	case err != nil:
		return nil, h.sdkError("deploy", job.Name, err)
	default:
		c := cur.Configuration
		if aws.ToString(c.CodeSha256) != codeSHA(zip) {
			progress(ctx, "update code of %s", fn)
			_, err := h.client.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{
				FunctionName: aws.String(fn), ZipFile: zip, Architectures: []types.Architecture{types.Architecture(h.cfg.Arch)},
			})
			if err != nil {
				return nil, h.sdkError("deploy", job.Name, err)
			}
			progress(ctx, "wait for the code update")
			if err := h.waitUpdated(ctx, fn); err != nil {
				return nil, h.sdkError("deploy", job.Name, err)
			}
		}
		if !want.matches(c) || aws.ToString(c.Role) != h.cfg.Role {
			progress(ctx, "update configuration of %s", fn)
			_, err := h.client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String(fn),
				Role:         aws.String(h.cfg.Role),
				MemorySize:   aws.Int32(int32(want.memoryMB)),
				Timeout:      aws.Int32(int32(want.timeoutSecs)),
				Environment:  &types.Environment{Variables: env},
			})
			if err != nil {
				return nil, h.sdkError("deploy", job.Name, err)
			}
			progress(ctx, "wait for the configuration update")
			if err := h.waitUpdated(ctx, fn); err != nil {
				return nil, h.sdkError("deploy", job.Name, err)
			}
		}
	}
	got, err := h.client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(fn)})
	if err != nil {
		return nil, h.sdkError("deploy", job.Name, err)
	}
	if s := got.Configuration.State; s != types.StateActive {
		return fail(host.ErrHost, "function %s is %s: %s", fn, s, aws.ToString(got.Configuration.StateReason))
	}
	lim.MemoryMB = job.Limits.MemoryMB
	if lim.MemoryMB == 0 {
		lim.MemoryMB = int(wasmrt.DefaultLimits().MaxMemoryBytes >> 20)
	}
	return &host.Deployment{
		ID: fn, Job: job.Name, Digest: digest, Host: h.name, Region: h.cfg.Region,
		Endpoint: aws.ToString(got.Configuration.FunctionArn), Limits: lim, Pure: info.Pure(),
	}, nil
}

// limits fills in the limits the bootstrap will apply.
func (h *Host) limits(l host.Limits) (host.Limits, error) {
	if l.MemoryMB < 0 || l.Timeout < 0 || l.MaxInputBytes < 0 || l.MaxOutputBytes < 0 {
		return host.Limits{}, fmt.Errorf("negative limit in %+v", l)
	}
	d := wasmrt.DefaultLimits()
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.Timeout+timeoutSlack > maxTimeoutSecs*time.Second {
		return host.Limits{}, fmt.Errorf("timeout %s: Lambda runs a function at most %d s", l.Timeout, maxTimeoutSecs)
	}
	if l.MaxInputBytes == 0 || l.MaxInputBytes > MaxPayloadBytes*3/4 {
		// Ferry's payload carries the input in base64.
		l.MaxInputBytes = min(d.MaxInputBytes, MaxPayloadBytes*3/4-1024)
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = min(d.MaxOutputBytes, MaxPayloadBytes*3/4-1024)
	}
	if mb := h.memoryMB(l); mb > maxMemoryMB {
		return host.Limits{}, fmt.Errorf("memory %d MB plus the runtime's %d MB is over Lambda's %d MB", l.MemoryMB, h.cfg.OverheadMB, maxMemoryMB)
	}
	return l, nil
}

// memoryMB is the function's memory: the job's plus the runtime's, at
// least Lambda's minimum.
func (h *Host) memoryMB(l host.Limits) int {
	mem := l.MemoryMB
	if mem == 0 {
		mem = int(wasmrt.DefaultLimits().MaxMemoryBytes >> 20)
	}
	return max(minMemoryMB, mem+h.cfg.OverheadMB)
}

func timeoutSecs(d time.Duration) int {
	return min(maxTimeoutSecs, int(math.Ceil((d + timeoutSlack).Seconds())))
}

func (h *Host) environment(job host.Job, digest string, stateful bool) map[string]string {
	env := map[string]string{envDigest: digest, envJob: job.Name}
	for k, v := range h.cfg.Env {
		env[k] = v
	}
	if h.cfg.Engine != "" {
		env[bootstrap.EnvEngine] = h.cfg.Engine
	}
	if stateful {
		env[bootstrap.EnvState] = h.cfg.State
		ns := job.StateNamespace
		if ns == "" {
			ns = job.Name
		}
		env[bootstrap.EnvStateNamespace] = ns
	}
	return env
}

// functionConfig is what Deploy sets besides the code.
type functionConfig struct {
	memoryMB, timeoutSecs int
	env                   map[string]string
}

func (f functionConfig) matches(c *types.FunctionConfiguration) bool {
	if int(aws.ToInt32(c.MemorySize)) != f.memoryMB || int(aws.ToInt32(c.Timeout)) != f.timeoutSecs {
		return false
	}
	var have map[string]string
	if c.Environment != nil {
		have = c.Environment.Variables
	}
	if len(have) != len(f.env) {
		return false
	}
	for k, v := range f.env {
		if have[k] != v {
			return false
		}
	}
	return true
}

// codeSHA is CodeSha256 as Lambda reports it: base64 of the zip's SHA-256.
func codeSHA(zip []byte) string {
	sum := sha256.Sum256(zip)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (h *Host) waitActive(ctx context.Context, fn string) error {
	w := awslambda.NewFunctionActiveV2Waiter(h.client, func(o *awslambda.FunctionActiveV2WaiterOptions) {
		if h.cfg.WaitMinDelay > 0 {
			o.MinDelay = h.cfg.WaitMinDelay
			o.MaxDelay = max(o.MinDelay, min(o.MaxDelay, 10*h.cfg.WaitMinDelay))
		}
	})
	return w.Wait(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(fn)}, h.waitMax())
}

func (h *Host) waitUpdated(ctx context.Context, fn string) error {
	w := awslambda.NewFunctionUpdatedV2Waiter(h.client, func(o *awslambda.FunctionUpdatedV2WaiterOptions) {
		if h.cfg.WaitMinDelay > 0 {
			o.MinDelay = h.cfg.WaitMinDelay
			o.MaxDelay = max(o.MinDelay, min(o.MaxDelay, 10*h.cfg.WaitMinDelay))
		}
	})
	return w.Wait(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(fn)}, h.waitMax())
}

func (h *Host) waitMax() time.Duration {
	if h.cfg.WaitMax > 0 {
		return h.cfg.WaitMax
	}
	return 5 * time.Minute
}

// noRetry sends an Invoke once: whether a job with side effects may run
// again is the orchestrator's decision (host.Retryable), not the SDK's.
func noRetry(o *awslambda.Options) { o.RetryMaxAttempts = 1 }

// Invoke implements host.Host.
func (h *Host) Invoke(ctx context.Context, d *host.Deployment, req host.Request) (*host.Response, error) {
	if d == nil {
		return nil, host.Errorf(host.ErrNotFound, "invoke", h.name, "", "nil deployment")
	}
	if d.Limits.MaxInputBytes > 0 && len(req.Input) > d.Limits.MaxInputBytes {
		return nil, host.Errorf(host.ErrLimit, "invoke", h.name, d.Job, "input is %d bytes, over the job's limit of %d", len(req.Input), d.Limits.MaxInputBytes)
	}
	payload, err := json.Marshal(event.Request{Ferry: &event.Call{
		V: event.Version, Input: req.Input, Digest: d.Digest, InvocationID: req.InvocationID, IdempotencyKey: req.IdempotencyKey,
	}})
	if err != nil {
		return nil, host.Errorf(host.ErrHost, "invoke", h.name, d.Job, "encode: %w", err)
	}
	if len(payload) > MaxPayloadBytes {
		return nil, host.Errorf(host.ErrLimit, "invoke", h.name, d.Job, "the payload is %d bytes; Lambda takes at most %d", len(payload), MaxPayloadBytes)
	}
	start := time.Now()
	out, err := h.client.Invoke(ctx, &awslambda.InvokeInput{
		FunctionName: aws.String(d.ID), Payload: payload, LogType: types.LogTypeTail,
	}, noRetry)
	if err != nil {
		return nil, h.sdkError("invoke", d.Job, err)
	}
	rep := parseReport(out.LogResult)
	if out.FunctionError != nil {
		return nil, h.functionError(d.Job, out.Payload, rep)
	}
	var r event.Response
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		return nil, host.Errorf(host.ErrHost, "invoke", h.name, d.Job, "the function answered something that is not Ferry's response: %v", err)
	}
	res := &host.Response{
		Output: r.Output, Duration: time.Duration(r.DurationUs) * time.Microsecond, MemoryUsedBytes: r.MemoryUsedBytes,
		Host: h.name, Region: h.cfg.Region, InvocationID: r.InvocationID, Logs: r.Logs,
	}
	if rep.ok {
		res.Duration = rep.duration
		res.Billed = rep.billed
		res.Cold = rep.init > 0
		res.EnvironmentMemoryBytes = uint64(rep.maxMemoryUsedMB) << 20
	} else {
		res.Billed = res.Duration
		h.log.Debug("no REPORT line in the invoke log", "job", d.Job, "elapsed", time.Since(start))
	}
	return res, nil
}

// functionError maps a function error (HTTP 200 with X-Amz-Function-Error)
// to Ferry's kinds.
func (h *Host) functionError(job string, payload []byte, rep report) error {
	var b event.ErrorBody
	_ = json.Unmarshal(payload, &b)
	msg := b.ErrorMessage
	if msg == "" {
		msg = strings.TrimSpace(string(payload))
	}
	class := event.ClassOf(b.ErrorType)
	if b.ErrorType == "" && strings.Contains(msg, "Task timed out after") {
		class = event.ClassTimeout // Lambda's older timeout message has no type
	}
	kind := map[event.Class]error{
		event.ClassHost: host.ErrHost, event.ClassJob: host.ErrJob, event.ClassTimeout: host.ErrTimeout,
		event.ClassLimit: host.ErrLimit, event.ClassNotFound: host.ErrNotFound,
	}[class]
	return &host.Error{Kind: kind, Op: "invoke", Host: h.name, Job: job, Err: &FunctionError{Type: b.ErrorType, Message: msg, Cold: rep.init > 0}}
}

// FunctionError is a function's error as Lambda relayed it.
type FunctionError struct {
	// Type is the errorType (event.Type* for Ferry's bootstrap, or
	// Lambda's own such as Runtime.ExitError, Sandbox.Timedout).
	Type    string
	Message string
	// Cold is true when the failed call started a new environment.
	Cold bool
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// sdkError translates the SDK's errors to Ferry's kinds
// (docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors).
func (h *Host) sdkError(op, job string, err error) error {
	e := &host.Error{Kind: host.ErrHost, Op: op, Host: h.name, Job: job, Err: err}
	var (
		nf       *types.ResourceNotFoundException
		throttle *types.TooManyRequestsException
		conflict *types.ResourceConflictException
		tooLarge *types.RequestTooLargeException
		api      smithy.APIError
	)
	switch {
	case errors.As(err, &nf):
		e.Kind = host.ErrNotFound
	case errors.As(err, &throttle), errors.As(err, &conflict):
		// Refused before the function ran: safe to send elsewhere.
		e.NotDelivered = true
	case errors.As(err, &tooLarge):
		e.Kind = host.ErrLimit
	case errors.As(err, &api) && api.ErrorCode() == "RequestEntityTooLargeException":
		e.Kind = host.ErrLimit
	case errors.Is(err, syscall.ECONNREFUSED):
		e.NotDelivered = true
	}
	return e
}

// Remove implements host.Host: DeleteFunction, if the function still
// holds the deployment's module.
func (h *Host) Remove(ctx context.Context, d *host.Deployment) error {
	if d == nil {
		return host.Errorf(host.ErrNotFound, "remove", h.name, "", "nil deployment")
	}
	defer h.lock(d.ID)()
	if _, err := h.current(ctx, "remove", d); err != nil {
		return err
	}
	if _, err := h.client.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String(d.ID)}); err != nil {
		return h.sdkError("remove", d.Job, err)
	}
	return nil
}

// current returns d's function configuration, or ErrNotFound when the
// function is gone or holds another module.
func (h *Host) current(ctx context.Context, op string, d *host.Deployment) (*types.FunctionConfiguration, error) {
	got, err := h.client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(d.ID)})
	if err != nil {
		return nil, h.sdkError(op, d.Job, err)
	}
	c := got.Configuration
	if c == nil || c.Environment == nil || c.Environment.Variables[envDigest] != d.Digest {
		return nil, host.Errorf(host.ErrNotFound, op, h.name, d.Job, "function %s no longer holds %s", d.ID, d.Digest)
	}
	return c, nil
}

// Health implements host.HealthChecker: the function exists, holds the
// deployment's module, and is Active with no failed update.
func (h *Host) Health(ctx context.Context, d *host.Deployment) (host.Health, error) {
	if d == nil {
		return host.Health{}, host.Errorf(host.ErrNotFound, "health", h.name, "", "nil deployment")
	}
	c, err := h.current(ctx, "health", d)
	if err != nil {
		return host.Health{}, err
	}
	hl := host.Health{Healthy: c.State == types.StateActive && c.LastUpdateStatus != types.LastUpdateStatusFailed,
		Detail: fmt.Sprintf("state %s, last update %s", c.State, c.LastUpdateStatus)}
	if !hl.Healthy {
		return hl, host.Errorf(host.ErrHost, "health", h.name, d.Job, "function %s: %s %s", d.ID, hl.Detail, aws.ToString(c.StateReason))
	}
	return hl, nil
}

// Warm implements host.Warmer: n concurrent warm-up calls, each answered
// by the bootstrap without running the job. Lambda gives concurrent calls
// separate environments, so up to n environments are left warm.
func (h *Host) Warm(ctx context.Context, d *host.Deployment, n int) (int, error) {
	if d == nil {
		return 0, host.Errorf(host.ErrNotFound, "warm", h.name, "", "nil deployment")
	}
	payload, _ := json.Marshal(event.Request{Ferry: &event.Call{V: event.Version, Warm: true, Digest: d.Digest}})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ready int
		errs  []error
	)
	for range max(n, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := h.client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(d.ID), Payload: payload}, noRetry)
			if err == nil && out.FunctionError != nil {
				err = h.functionError(d.Job, out.Payload, report{})
			} else if err != nil {
				err = h.sdkError("warm", d.Job, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ready++
		}()
	}
	wg.Wait()
	if ready == 0 && len(errs) > 0 {
		return 0, errs[0]
	}
	return ready, nil
}
