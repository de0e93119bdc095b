package locallambda

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Invoke (docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).

const (
	// maxInvokeBytes caps a synchronous payload: 6 MiB; the observed cap is 6291456 bytes
	// (API_Invoke.html, gettingstarted-limits.html).
	maxInvokeBytes = 6291456
	// maxEventBytes caps an Event payload: 1 MB since October 2025 (API_Invoke.html).
	maxEventBytes = 1048576
	// maxClientContext is X-Amz-Client-Context's documented cap.
	maxClientContext = 3583
	// regionConcurrency is an account's default concurrency per region
	// (gettingstarted-limits.html); it bounds environments server-wide.
	regionConcurrency = 1000
	// initTimeout caps an on-demand init (lambda-runtime-environment.html).
	initTimeout = 10 * time.Second
	// maxEventsPending bounds Event invokes accepted but not yet finished.
	maxEventsPending = 4096
	// maxEventAge is Lambda's default MaximumEventAgeInSeconds: an Event
	// invoke throttled for this long is dropped.
	maxEventAge = 6 * time.Hour
)

type invocation struct {
	id            string
	payload       []byte
	arn           string // as invoked; may carry the qualifier
	traceID       string
	clientContext string
	started       time.Time
	log           tailBuffer
	once          sync.Once
	done          chan struct{}
	out           outcome // set before done is closed

	// Guarded by the serving environment's mu.
	deliveredAt   time.Time
	answered      bool
	cold          bool
	initDur       time.Duration
	timedOutAfter time.Duration
}

// outcome is what the caller of Invoke gets.
type outcome struct {
	payload []byte
	funcErr bool      // X-Amz-Function-Error: Unhandled
	apiErr  *apiError // the function never ran
	logTail []byte
}

func fnErrOutcome(fe functionError) outcome { return outcome{payload: fe.body(), funcErr: true} }

func newInvocation(id string, payload []byte, arn, clientContext string) *invocation {
	return &invocation{
		id: id, payload: payload, arn: arn, clientContext: clientContext,
		traceID: traceID(), started: time.Now(), done: make(chan struct{}),
	}
}

// traceID is an untraced X-Ray header: Root=1-<epoch hex>-<96 bits>;Parent=…;Sampled=0.
func traceID() string {
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), randomHex(24), randomHex(16))
}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	fn, qual, aerr := s.lookup(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if aerr != nil {
		aerr.write(w)
		return
	}
	typ := r.Header.Get("X-Amz-Invocation-Type")
	switch typ {
	case "":
		typ = "RequestResponse"
	case "RequestResponse", "Event", "DryRun":
	default:
		errValidation(typ, "invocationType", "Member must satisfy enum value set: [Event, RequestResponse, DryRun]").write(w)
		return
	}
	body, aerr := readBody(w, r, maxInvokeBytes, "InvokeFunction")
	if aerr != nil {
		aerr.write(w)
		return
	}
	if typ == "Event" && len(body) > maxEventBytes {
		errTooLarge(fmt.Sprintf("%d byte payload is too large for the Event invocation type (limit %d bytes)", len(body), maxEventBytes)).write(w)
		return
	}
	if len(body) > 0 && !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		(&apiError{http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json: Could not parse payload into json: " + err.Error(), ""}).write(w)
		return
	}
	var clientContext string
	if cc := r.Header.Get("X-Amz-Client-Context"); cc != "" && typ == "RequestResponse" {
		// Passed to the function, decoded, on synchronous invokes only.
		b, err := base64.StdEncoding.DecodeString(cc)
		if len(cc) > maxClientContext || err != nil || !json.Valid(b) {
			errInvalid("Client context must be a valid Base64-encoded JSON object.").write(w)
			return
		}
		clientContext = string(b)
	}
	fn.mu.Lock()
	live, state, deleted := fn.live, fn.state, fn.deleted
	fn.mu.Unlock()
	switch {
	case deleted:
		errNotFound(fn.arn).write(w)
		return
	case live == nil:
		errConflict("The operation cannot be performed at this time. The function is currently in the following state: " + state).write(w)
		return
	}
	arn := fn.arn
	if qual != "" {
		arn += ":" + qual
	}
	id := newUUID()
	w.Header().Set("X-Amzn-Requestid", id)
	switch typ {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		if !s.startEvent(fn, id, body, arn) {
			errThrottled().write(w)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}

	inv := newInvocation(id, body, arn, clientContext)
	res := make(chan outcome, 1)
	if !s.goTracked(func() { res <- s.run(fn, inv) }) {
		errService("the local Lambda service is shutting down").write(w)
		return
	}
	var out outcome
	select {
	case out = <-res:
	case <-r.Context().Done():
		// The caller left; the invoke runs on, as it would on Lambda.
		return
	}
	if out.apiErr != nil {
		out.apiErr.write(w)
		return
	}
	h := w.Header()
	h.Set("X-Amz-Executed-Version", latest)
	if out.funcErr {
		// Current runtimes only produce Unhandled (API_Invoke.html, X-Amz-Function-Error).
		h.Set("X-Amz-Function-Error", "Unhandled")
	}
	if r.Header.Get("X-Amz-Log-Type") == "Tail" {
		h.Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString(out.logTail))
	}
	// The Content-Type of the reply is unverified (API_Invoke.html does not say); the
	// SDK ignores it.
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out.payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.payload)
}

// run serves inv on an execution environment: a warm one if one is free,
// else a new one. An environment that dies before taking the invoke is
// replaced, a few times at most.
func (s *Server) run(fn *function, inv *invocation) outcome {
	for range 4 {
		e, cold, aerr := s.acquire(fn, inv)
		if aerr != nil {
			return outcome{apiErr: aerr}
		}
		if cold {
			var out *outcome
			if e, out = s.coldStart(fn, e, inv); out != nil {
				return *out
			}
		}
		e.nextCh <- inv
		select {
		case <-inv.done:
			return inv.out
		case <-e.dead:
			select {
			case <-inv.done:
				return inv.out
			default:
			}
		}
	}
	return outcome{apiErr: errService("no execution environment could take the invoke")}
}

// acquire reserves an environment for inv: the most recently used free one
// of the current generation, or a new one (cold) if the function's and the
// server's concurrency allow it.
func (s *Server) acquire(fn *function, inv *invocation) (*execEnv, bool, *apiError) {
	fn.mu.Lock()
	if fn.deleted {
		fn.mu.Unlock()
		return nil, false, errNotFound(fn.arn)
	}
	if s.closing.Load() {
		// Close snapshots the environments under fn.mu after setting
		// closing, so none is added behind its back.
		fn.mu.Unlock()
		return nil, false, errService("the local Lambda service is shutting down")
	}
	live := fn.live
	var best *execEnv
	var bestUsed time.Time
	for e := range fn.envs {
		if e.retired || e.assigned != nil || e.live != live {
			continue
		}
		e.mu.Lock()
		free := e.phase == phaseIdle || e.phase == phaseAnswered
		used := e.lastUsed
		e.mu.Unlock()
		if free && (best == nil || used.After(bestUsed)) {
			best, bestUsed = e, used
		}
	}
	if best != nil {
		best.assigned = inv
		fn.mu.Unlock()
		return best, false, nil
	}
	if len(fn.envs) >= s.cfg.MaxConcurrency || !s.envStarting(fn.name) {
		fn.mu.Unlock()
		return nil, false, errThrottled()
	}
	e := s.addEnv(fn, live, inv)
	fn.mu.Unlock()
	e.start()
	return e, true, nil
}

// addEnv creates an environment reserved for inv; fn.mu is held and the
// server-wide slot already taken.
func (s *Server) addEnv(fn *function, live *liveConf, inv *invocation) *execEnv {
	e := newEnv(s, fn, live)
	e.assigned = inv
	live.code.refs++
	fn.envs[e] = struct{}{}
	return e
}

// coldStart waits for a new environment's init. A runtime that exits
// before its first /next without reporting gets one more try within the
// invoke, bounded by the function's timeout (lambda-runtime-environment.html, "Init phase";
// runtimes-custom.html). It returns the
// ready environment, or the outcome of a failed init.
func (s *Server) coldStart(fn *function, e *execEnv, inv *invocation) (*execEnv, *outcome) {
	limit, phase := s.cfg.initTimeout, "init"
	for {
		res := e.awaitInit(limit)
		if res.ready {
			return e, nil
		}
		e.copyInitLog(inv)
		now := time.Now()
		switch {
		case res.startErr != "":
			fe := invalidEntrypointError(inv.id, res.startErr)
			e.emit(inv, initReportLine(0, phase, "error", fe.ErrorType))
			e.emit(inv, startLine(inv.id))
			out := fnErrOutcome(fe)
			e.settle(inv, now, out, fe.ErrorMessage, fe.ErrorType)
			return nil, &inv.out
		case res.initErr != nil:
			// Served to the first invoke (runtimes-api.html, "Initialization error").
			e.emit(inv, initReportLine(res.took, phase, "error", res.errType))
			e.emit(inv, startLine(inv.id))
			e.settle(inv, now, outcome{payload: res.initErr, funcErr: true})
			return nil, &inv.out
		}
		if res.timedOut {
			e.emit(inv, initReportLine(res.took, phase, "timeout", ""))
		} else {
			e.emit(inv, initReportLine(res.took, phase, "error", "Runtime.ExitError"))
		}
		if phase == "invoke" {
			e.emit(inv, startLine(inv.id))
			if res.timedOut {
				secs := time.Since(inv.started).Seconds()
				e.settle(inv, now, fnErrOutcome(timeoutError(inv.id, secs)), timeoutLine(now, inv.id, secs))
				return nil, &inv.out
			}
			fe := exitedError(inv.id, res.exit)
			e.settle(inv, now, fnErrOutcome(fe), fe.ErrorMessage, fe.ErrorType)
			return nil, &inv.out
		}
		// The suppressed init: try again in the invoke phase.
		fn.mu.Lock()
		if fn.deleted || fn.live == nil {
			fn.mu.Unlock()
			return nil, &outcome{apiErr: errNotFound(fn.arn)}
		}
		if s.closing.Load() {
			fn.mu.Unlock()
			return nil, &outcome{apiErr: errService("the local Lambda service is shutting down")}
		}
		if !s.envStarting(fn.name) {
			fn.mu.Unlock()
			return nil, &outcome{apiErr: errThrottled()}
		}
		// The retry runs the function's current code: the failed
		// environment's may have been replaced and removed meanwhile.
		e = s.addEnv(fn, fn.live, inv)
		fn.mu.Unlock()
		e.start()
		limit, phase = time.Duration(e.live.conf.Timeout)*time.Second, "invoke"
	}
}

// copyInitLog puts a failed init's output into the invoke's log, so Tail
// shows why.
func (e *execEnv) copyInitLog(inv *invocation) {
	if b := e.initLog.bytes(); len(b) > 0 {
		inv.log.write(b)
	}
}

// startEvent accepts an Event invoke and runs it in the background.
func (s *Server) startEvent(fn *function, id string, payload []byte, arn string) bool {
	s.mu.Lock()
	if s.eventsPending >= maxEventsPending {
		s.mu.Unlock()
		return false
	}
	s.eventsPending++
	s.mu.Unlock()
	ok := s.goTracked(func() {
		defer func() {
			s.mu.Lock()
			s.eventsPending--
			s.mu.Unlock()
		}()
		s.runEvent(fn, id, payload, arn)
	})
	if !ok {
		s.mu.Lock()
		s.eventsPending--
		s.mu.Unlock()
	}
	return ok
}

// runEvent is Lambda's asynchronous invocation: throttled events wait
// and try again (up to the maximum event age); a function error is
// retried twice, a minute and then two minutes later
// (invocation-async.html). Every attempt keeps the request id.
func (s *Server) runEvent(fn *function, id string, payload []byte, arn string) {
	first := time.Now()
	backoff := 50 * time.Millisecond
	retries := 0
	for {
		inv := newInvocation(id, payload, arn, "")
		out := s.run(fn, inv)
		var wait time.Duration
		switch {
		case out.apiErr != nil && out.apiErr.status == http.StatusTooManyRequests:
			if time.Since(first) > maxEventAge {
				s.log.Warn("dropped an Event invoke throttled for too long", "function", fn.name, "request_id", id)
				return
			}
			wait, backoff = backoff, min(2*backoff, 5*time.Second)
		case out.funcErr && retries < len(s.cfg.eventRetryDelays):
			wait = s.cfg.eventRetryDelays[retries]
			retries++
		default:
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return
		}
		fn.mu.Lock()
		deleted := fn.deleted
		fn.mu.Unlock()
		if deleted {
			return
		}
	}
}
