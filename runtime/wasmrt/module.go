package wasmrt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/engine"
	"github.com/ferryrun/ferry/runtime/state"
)

// Module is a loaded job: its compiled code, limits and instance pool. It is
// safe for concurrent use.
type Module struct {
	rt   *Runtime
	name string
	ns   string // state namespace
	// retryGate serialises this process's retries of conflicting state
	// transactions (capacity 1): a first attempt runs freely, but once
	// it has conflicted, its retries take turns with the other retriers
	// here, so a hot key costs a queue, not a storm of re-runs. Other
	// processes sharing the store still conflict, but only with one
	// retrier each.
	retryGate     chan struct{}
	digest        string
	info          *abi.Info
	limits        Limits
	allow         allowList
	compiled      engine.Compiled
	reuse         bool
	deterministic bool
	seed          uint64
	log           *slog.Logger
	pool          *pool

	closeOnce sync.Once
	closed    atomic.Bool
	inflight  sync.WaitGroup
}

// Name is the job name.
func (m *Module) Name() string { return m.name }

// Digest is the sha256 digest of the module bytes.
func (m *Module) Digest() string { return m.digest }

// Info is what the ABI check read from the module.
func (m *Module) Info() *abi.Info { return m.info }

// Limits are the module's effective limits, defaults filled in.
func (m *Module) Limits() Limits { return m.limits }

// Deterministic reports whether the sandbox fixes clocks and randomness.
func (m *Module) Deterministic() bool { return m.deterministic }

// Result is a successful invocation.
type Result struct {
	Output []byte
	// Duration is the time the guest ran, instantiation excluded when the
	// instance came warm from the pool.
	Duration time.Duration
	// Instantiate is the time spent creating the instance on the hot path:
	// zero when the pool had one ready.
	Instantiate time.Duration
	// PeakMemoryBytes is the guest's largest linear memory size.
	PeakMemoryBytes uint64
	InvocationID    string
	Logs            []LogLine
	// Attempts is how many times a stateful job ran before its state
	// committed (1 without conflicts); Replayed is set when the output
	// is the recorded one of an earlier delivery with the same
	// idempotency key, and the job did not run.
	Attempts int
	Replayed bool
}

// LogLine is one line a guest logged.
type LogLine struct {
	Level  slog.Level `json:"level"`
	Msg    string     `json:"msg"`
	Source string     `json:"source"` // "ferry.log" or "stderr"
}

// InvokeOption adjusts one invocation.
type InvokeOption func(*invokeOptions)

type invokeOptions struct {
	id             string
	idempotencyKey string
	timeout        time.Duration
}

// WithInvocationID sets the id used in logs; default a random one.
func WithInvocationID(id string) InvokeOption { return func(o *invokeOptions) { o.id = id } }

// WithIdempotencyKey makes a stateful job's effect happen once per key:
// the key is committed with the job's state changes and output, and a
// later invocation with the same key returns that output without running.
// It has no effect on a job that does not use state.
func WithIdempotencyKey(key string) InvokeOption {
	return func(o *invokeOptions) { o.idempotencyKey = key }
}

// WithTimeout lowers the timeout for one invocation. It cannot raise it
// above the module's limit.
func WithTimeout(d time.Duration) InvokeOption { return func(o *invokeOptions) { o.timeout = d } }

// instance is a pooled engine instance with its swappable stdio.
type instance struct {
	engine.Instance
	io     *stdio
	alloc  engine.Function
	run    engine.Function
	start  engine.Function
	stack  [2]uint64
	warmed time.Duration // time it took to create, for reporting
	// intr stops the instance's calls (watch.go); nil: the engine can
	// stop them only through their context.
	intr  engine.Interrupter
	watch watch
}

// stdio routes an instance's WASI streams to the current invocation.
type stdio struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type stdinProxy struct{ s *stdio }

func (p stdinProxy) Read(b []byte) (int, error) {
	if p.s.stdin == nil {
		return 0, io.EOF
	}
	return p.s.stdin.Read(b)
}

type stdoutProxy struct{ s *stdio }

func (p stdoutProxy) Write(b []byte) (int, error) {
	if p.s.stdout == nil {
		return len(b), nil
	}
	return p.s.stdout.Write(b)
}

type stderrProxy struct{ s *stdio }

func (p stderrProxy) Write(b []byte) (int, error) {
	if p.s.stderr == nil {
		return len(b), nil
	}
	return p.s.stderr.Write(b)
}

// newInstance instantiates and, for a reactor, runs _initialize, bounded by
// the module's timeout so a guest that never finishes initialising cannot
// wedge the pool.
func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, m.limits.Timeout)
	defer cancel()
	sio := &stdio{}
	// Output from a reactor's initialisation is log, not job output.
	initLog := &logSink{m: m, source: "stderr", limit: m.limits.MaxLogBytes, id: "init"}
	sio.stderr, sio.stdout = initLog, initLog
	ei, err := m.compiled.Instantiate(ctx, engine.InstanceConfig{
		Stdin:          stdinProxy{sio},
		Stdout:         stdoutProxy{sio},
		Stderr:         stderrProxy{sio},
		MaxMemoryBytes: m.limits.MaxMemoryBytes,
		Deterministic:  m.deterministic,
		Seed:           m.seed,
	})
	if err != nil {
		if je := jobErr(m.name, err, nil, m.limits); je != nil {
			je.Message = "instantiate: " + je.Message
			return nil, je
		}
		return nil, fmt.Errorf("instantiate %s: %w", m.name, err)
	}
	inst := &instance{Instance: ei, io: sio}
	inst.intr, _ = ei.(engine.Interrupter)
	if m.info.Shape == abi.Command {
		inst.start = ei.Function(abi.ExportStart)
	} else {
		inst.alloc = ei.Function(abi.ExportAlloc)
		inst.run = ei.Function(abi.ExportRun)
		if m.info.HasInitialize {
			inv := m.newInvocation("init")
			err := ei.Function(abi.ExportInitialize).CallWithStack(withInvocation(ctx, inv), inst.stack[:])
			initLog.flush()
			if err != nil {
				_ = ei.Close(context.Background())
				if je := jobErr(m.name, err, ei, m.limits); je != nil {
					je.Message = "initialise: " + je.Message
					return nil, je
				}
				return nil, fmt.Errorf("initialise %s: %w", m.name, err)
			}
		}
	}
	inst.warmed = time.Since(start)
	return inst, nil
}

// Invoke runs the job once on input. A failure caused by the guest or its
// input is a *JobError (match with errors.Is against ErrTimeout, ErrTrap…);
// any other error is the host's. When the guest ran and failed, the Result
// is returned with the error (no Output, but Duration, PeakMemoryBytes and
// Logs), so callers can report what the failed run cost.
//
// A job that uses state runs as a transaction (state.Tx): its writes take
// effect when it succeeds, atomically, and only if nothing it read has
// changed meanwhile; otherwise it runs again, up to MaxStateAttempts
// times within its timeout. With WithIdempotencyKey the commit records the
// key with the output, and an invocation whose key has already committed
// returns that output without running (Result.Replayed).
func (m *Module) Invoke(ctx context.Context, input []byte, opts ...InvokeOption) (*Result, error) {
	o := invokeOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.id == "" {
		o.id = newID()
	}
	if m.closed.Load() {
		return nil, fmt.Errorf("invoke %s: module %w", m.name, ErrClosed)
	}
	m.inflight.Add(1)
	defer m.inflight.Done()

	lim := m.limits
	if o.timeout > 0 && o.timeout < lim.Timeout {
		lim.Timeout = o.timeout
	}
	if len(input) > lim.MaxInputBytes {
		return nil, &JobError{Kind: KindInputLimit, Job: m.name, Limit: lim.MaxInputBytes,
			Message: fmt.Sprintf("input of %s is over the input limit of %s", bytesStr(uint64(len(input))), bytesStr(uint64(lim.MaxInputBytes)))}
	}
	store := m.rt.cfg.State
	if store == nil || !m.info.Has(abi.CapState) {
		return m.attempt(ctx, input, o.id, lim, nil)
	}

	// The deadline covers every attempt, so conflicts cannot stretch a
	// call past its timeout.
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	if o.idempotencyKey != "" {
		if out, ok, err := store.Done(ctx, m.ns, o.idempotencyKey); err != nil {
			return nil, fmt.Errorf("invoke %s: state store: %w", m.name, err)
		} else if ok {
			return &Result{Output: out, InvocationID: o.id, Replayed: true}, nil
		}
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		if attempt == 2 {
			select {
			case m.retryGate <- struct{}{}:
				defer func() { <-m.retryGate }()
			case <-ctx.Done():
				return nil, m.retryTimeout(ctx, lim, attempt-1)
			}
		}
		tx := state.Begin(store, m.ns)
		res, err := m.attempt(ctx, input, o.id, lim, tx)
		if res != nil {
			res.Attempts = attempt
			res.Duration = time.Since(start) - res.Instantiate
		}
		if err != nil {
			return res, err // nothing is committed when the job fails
		}
		err = tx.Commit(ctx, o.idempotencyKey, res.Output, 0)
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, state.ErrDuplicate):
			// Another delivery of this invocation committed first: its
			// output is the answer, this run's writes are dropped.
			out, ok, derr := store.Done(ctx, m.ns, o.idempotencyKey)
			if derr != nil || !ok {
				return nil, fmt.Errorf("invoke %s: state store: idempotency key %q committed but its output is gone: %w", m.name, o.idempotencyKey, errors.Join(derr, err))
			}
			res.Output, res.Replayed = out, true
			return res, nil
		case !errors.Is(err, state.ErrConflict):
			return nil, fmt.Errorf("invoke %s: commit state: %w", m.name, err)
		case attempt >= lim.MaxStateAttempts:
			return nil, fmt.Errorf("invoke %s: %w: state kept changing under the job through %d attempts", m.name, ErrContention, attempt)
		}
		m.log.Debug("state conflict; running again", "invocation_id", o.id, "attempt", attempt)
		if attempt > 1 { // the first retry goes at once: it now holds the gate
			if err := backoff(ctx, attempt-1); err != nil {
				return nil, m.retryTimeout(ctx, lim, attempt)
			}
		}
	}
}

// retryTimeout is the error of a call whose deadline passed while it
// retried a state conflict.
func (m *Module) retryTimeout(ctx context.Context, lim Limits, attempts int) error {
	je := &JobError{Kind: KindTimeout, Job: m.name, Limit: lim.Timeout,
		Message: fmt.Sprintf("timed out after %d attempts that conflicted on state (limit %s)", attempts, lim.Timeout)}
	if ctx.Err() == context.Canceled {
		je.Kind, je.Message = KindCanceled, "canceled while retrying a state conflict"
	}
	return je
}

// backoff waits a jittered, growing delay before attempt+1: 50 µs doubling
// to 20 ms, so conflicting writers spread out instead of colliding again.
func backoff(ctx context.Context, attempt int) error {
	d := 50 * time.Microsecond << min(attempt-1, 9)
	d = d/2 + mrand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attempt runs the job once; tx, when not nil, backs its state calls.
func (m *Module) attempt(ctx context.Context, input []byte, id string, lim Limits, tx *state.Tx) (*Result, error) {
	inst, instTime, err := m.pool.get(ctx)
	if err != nil {
		return nil, err
	}
	defer m.pool.release()
	inv := m.newInvocation(id)
	inv.limits = lim
	inv.tx = tx
	var callCtx context.Context
	if inst.intr != nil {
		// The instance's watch stops the guest, so the engine gets a
		// context that never ends (it would watch one per guest call);
		// host functions do I/O under inv.io, which does end.
		inv.parent, inv.deadline = ctx, inst.arm(ctx, lim.Timeout)
		callCtx = withInvocation(context.WithoutCancel(ctx), inv)
	} else {
		var cancel context.CancelFunc
		inv.ioCtx, cancel = context.WithTimeout(ctx, lim.Timeout)
		defer cancel()
		callCtx = withInvocation(inv.ioCtx, inv)
	}

	start := time.Now()
	var out []byte
	if m.info.Shape == abi.Command {
		out, err = m.runCommand(callCtx, inst, inv, input)
	} else {
		out, err = m.runReactor(callCtx, inst, inv, input)
	}
	var interrupted error
	if inst.intr != nil {
		interrupted = inst.disarm()
		inv.endIO()
	}
	res := &Result{
		Duration:        time.Since(start),
		Instantiate:     instTime,
		PeakMemoryBytes: inst.PeakMemoryBytes(),
		InvocationID:    id,
		Attempts:        1,
	}
	inv.flushLogs()
	res.Logs = inv.logs
	if err == nil && m.reuse && interrupted == nil {
		inst.io.stdin, inst.io.stdout, inst.io.stderr = nil, nil, nil
		m.pool.put(inst)
	} else {
		// A fresh instance per call by default; a failed or interrupted
		// instance is never reused.
		_ = inst.Close(context.Background())
	}
	if err != nil {
		if je, ok := err.(*JobError); ok {
			je.Job = m.name
			m.log.Debug("invocation failed", "invocation_id", id, "kind", je.Kind, "err", je.Message)
			return res, err
		}
		return nil, err
	}
	res.Output = out
	return res, nil
}

func (m *Module) runReactor(ctx context.Context, inst *instance, inv *invocation, input []byte) ([]byte, error) {
	inst.io.stderr = inv.stderrSink()
	inst.io.stdout = inst.io.stderr
	mem := inst.Memory()
	st := inst.stack[:]
	st[0] = uint64(len(input))
	if err := inst.alloc.CallWithStack(ctx, st); err != nil {
		return nil, m.callErr(err, inst, inv, abi.ExportAlloc)
	}
	ptr := uint32(st[0])
	if ptr == 0 && len(input) > 0 {
		if inst.MemoryLimitHit() {
			return nil, jobErr(m.name, fmt.Errorf("%s returned 0", abi.ExportAlloc), inst, inv.limits)
		}
		return nil, abiErr("%s(%d) returned a null pointer", abi.ExportAlloc, len(input))
	}
	if !mem.Write(ptr, input) {
		return nil, abiErr("%s(%d) returned %#x, outside the guest's %s memory", abi.ExportAlloc, len(input), ptr, bytesStr(uint64(mem.Size())))
	}
	st[0], st[1] = uint64(ptr), uint64(len(input))
	if err := inst.run.CallWithStack(ctx, st); err != nil {
		return nil, m.callErr(err, inst, inv, abi.ExportRun)
	}
	if inv.guestErr != nil {
		return nil, &JobError{Kind: KindGuestError, Message: inv.guestErrMsg()}
	}
	outPtr, outLen := uint32(st[0]>>32), uint32(st[0])
	if int64(outLen) > int64(inv.limits.MaxOutputBytes) {
		return nil, &JobError{Kind: KindOutputLimit, Limit: inv.limits.MaxOutputBytes,
			Message: fmt.Sprintf("output of %s is over the output limit of %s", bytesStr(uint64(outLen)), bytesStr(uint64(inv.limits.MaxOutputBytes)))}
	}
	view, ok := mem.Read(outPtr, outLen)
	if !ok {
		return nil, abiErr("%s returned output [%#x, +%d), outside the guest's %s memory", abi.ExportRun, outPtr, outLen, bytesStr(uint64(mem.Size())))
	}
	return bytes.Clone(view), nil
}

func (m *Module) runCommand(ctx context.Context, inst *instance, inv *invocation, input []byte) ([]byte, error) {
	stdout := &cappedBuffer{max: inv.limits.MaxOutputBytes}
	inst.io.stdin = bytes.NewReader(input)
	inst.io.stdout = stdout
	inst.io.stderr = inv.stderrSink()
	err := inst.start.CallWithStack(ctx, inst.stack[:])
	var exit *engine.ExitError
	if asExit(err, &exit) && exit.Code == 0 {
		err = nil
	}
	switch {
	case stdout.overflow:
		return nil, &JobError{Kind: KindOutputLimit, Limit: inv.limits.MaxOutputBytes,
			Message: fmt.Sprintf("output is over the output limit of %s", bytesStr(uint64(inv.limits.MaxOutputBytes)))}
	case err != nil:
		je := m.callErr(err, inst, inv, abi.ExportStart)
		if j, ok := je.(*JobError); ok && j.Kind == KindExit && inv.guestErr != nil {
			j.Message += ": " + inv.guestErrMsg()
		}
		return nil, je
	case inv.guestErr != nil:
		return nil, &JobError{Kind: KindGuestError, Message: inv.guestErrMsg()}
	}
	return stdout.buf.Bytes(), nil
}

func (m *Module) callErr(err error, inst *instance, inv *invocation, fn string) error {
	if je := jobErr(m.name, err, inst, inv.limits); je != nil {
		if je.Kind == KindTrap && je.Trap == engine.TrapHostPanic {
			// A host function failed: that is the host's fault, not the job's.
			return fmt.Errorf("invoke %s: %s: host function failed: %s", m.name, fn, je.Detail)
		}
		return je
	}
	return fmt.Errorf("invoke %s: %s: %w", m.name, fn, err)
}

func abiErr(format string, args ...any) *JobError {
	return &JobError{Kind: KindABIViolation, Message: fmt.Sprintf(format, args...)}
}

func asExit(err error, target **engine.ExitError) bool {
	e, ok := err.(*engine.ExitError)
	if ok {
		*target = e
	}
	return ok
}

// Warm makes up to n instances ready ahead of calls (at most the module's
// pool size; none when the pool is disabled) and returns how many are
// ready. It instantiates inline, so it takes as long as that does.
func (m *Module) Warm(ctx context.Context, n int) (int, error) {
	if m.closed.Load() {
		return 0, fmt.Errorf("warm %s: module %w", m.name, ErrClosed)
	}
	m.inflight.Add(1)
	defer m.inflight.Done()
	ready, err := m.pool.warm(ctx, n)
	if err != nil {
		return ready, fmt.Errorf("warm %s: %w", m.name, err)
	}
	return ready, nil
}

// Close stops the pool, waits for in-flight invocations and releases the
// compiled module.
func (m *Module) Close(ctx context.Context) error {
	var err error
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		m.pool.close()
		m.inflight.Wait()
		m.pool.drain()
		err = m.compiled.Close(ctx)
		m.rt.forget(m)
	})
	return err
}

// cappedBuffer collects stdout up to max bytes, then fails writes.
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		c.overflow = true
		return 0, fmt.Errorf("output limit of %d bytes reached", c.max)
	}
	return c.buf.Write(p)
}

// Invocation ids are a random per-process prefix and a counter: unique
// across processes in practice, and cheap on the hot path.
var (
	idPrefix = func() string {
		var b [4]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	idSeq atomic.Uint64
)

func newID() string {
	return idPrefix + "-" + strconv.FormatUint(idSeq.Add(1), 10)
}
