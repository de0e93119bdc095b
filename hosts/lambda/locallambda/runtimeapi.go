package locallambda

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The Runtime API (version 2018-06-01) one execution environment's
// bootstrap talks to: docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
// and the RIE's rapi handlers, which aws-lambda-go's
// runtime_api_client.go is written against.

const (
	runtimePrefix = "/2018-06-01/runtime"
	// maxResponseBytes is the RIE's cap on a buffered reply: 6 MiB + 100
	// bytes (aws-lambda-runtime-interface-emulator, rapi).
	maxResponseBytes = 6291556
	// maxCountBytes bounds how much of an oversize reply is read to count it.
	maxCountBytes = 256 << 20
)

func (e *execEnv) runtimeAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimePrefix+"/invocation/next", e.handleNext)
	mux.HandleFunc("POST "+runtimePrefix+"/invocation/{id}/response", e.handleResponse)
	mux.HandleFunc("POST "+runtimePrefix+"/invocation/{id}/error", e.handleError)
	mux.HandleFunc("POST "+runtimePrefix+"/init/error", e.handleInitError)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The Extensions API (/2020-01-01/extension/…) and SnapStart's
		// restore hooks are not imitated.
		runtimeError(w, http.StatusNotFound, "NotFound", "Ferry's local Lambda does not serve "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// runtimeError writes the Runtime API's own error body (runtimes-api.html, "Error
// reporting"; RIE rapi/rendering).
func runtimeError(w http.ResponseWriter, status int, errorType, msg string) {
	b, _ := json.Marshal(functionError{ErrorType: errorType, ErrorMessage: msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// accepted is the 202 aws-lambda-go requires exactly (aws-lambda-go
// runtime_api_client.go: any other status is fatal).
func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func invalidStateTransition(w http.ResponseWriter, from, to string) {
	runtimeError(w, http.StatusForbidden, "InvalidStateTransition", "State transition from "+from+" to "+to+" failed for runtime. Error: State transition is not allowed")
}

// handleNext answers GET /runtime/invocation/next: it marks the previous
// invoke complete and blocks until an invoke is assigned here.
func (e *execEnv) handleNext(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	e.mu.Lock()
	ph := e.phase
	e.mu.Unlock()
	switch ph {
	case phaseBusy:
		// A second /next before replying (RIE: InvalidStateTransition).
		invalidStateTransition(w, "InvocationNext", "InvocationNext")
		return
	case phaseIdle:
		invalidStateTransition(w, "Ready", "InvocationNext")
		return
	case phaseDead:
		runtimeError(w, http.StatusInternalServerError, "InternalServerError", "the execution environment is shutting down")
		return
	case phaseInit:
		// Init output so far belongs before the first START.
		e.flushOutput()
	}
	e.mu.Lock()
	if e.phase == phaseInit {
		e.initDur = now.Sub(e.execAt) // exec to first /next (lambda-runtime-environment.html)
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if e.phase != phaseDead {
		e.phase = phaseIdle
	}
	e.current = nil
	e.lastUsed = time.Now()
	e.mu.Unlock()
	e.initOnce.Do(func() { close(e.initDone) })
	e.s.becameIdle(e)

	select {
	case inv := <-e.nextCh:
		e.deliver(w, inv)
	case <-e.dead:
	case <-r.Context().Done():
	}
}

// deliver hands inv to the runtime with the headers of runtimes-api.html
// ("Next invocation"). The RIE omits empty ones; so does this.
func (e *execEnv) deliver(w http.ResponseWriter, inv *invocation) {
	e.fn.mu.Lock()
	if e.assigned == inv {
		e.assigned = nil
	}
	e.fn.mu.Unlock()
	now := time.Now()
	timeout := time.Duration(e.live.conf.Timeout) * time.Second
	e.mu.Lock()
	if e.phase != phaseIdle {
		// Dying: the invoke stays undelivered and its caller tries
		// another environment.
		e.mu.Unlock()
		return
	}
	e.phase = phaseBusy
	e.current = inv
	inv.deliveredAt = now
	inv.cold = e.served == 0
	inv.initDur = e.initDur
	e.served++
	deadline := now.Add(timeout)
	e.timer = time.AfterFunc(timeout, func() { e.onDeadline(inv) })
	e.mu.Unlock()

	e.emit(inv, startLine(inv.id))
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", inv.arn)
	h.Set("Lambda-Runtime-Trace-Id", inv.traceID)
	if inv.clientContext != "" {
		h.Set("Lambda-Runtime-Client-Context", inv.clientContext)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(inv.payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// claim checks that id is the invoke in flight and marks it answered.
// Before the first /next the call is out of order (403); an unknown,
// stale or already answered id is 400 (runtimes-api.html; RIE rapi handlers).
func (e *execEnv) claim(w http.ResponseWriter, id, to string) *invocation {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.phase == phaseInit {
		invalidStateTransition(w, "Initializing", to)
		return nil
	}
	inv := e.current
	if inv == nil || inv.id != id || inv.answered || e.phase != phaseBusy {
		runtimeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return nil
	}
	inv.answered = true
	e.phase = phaseAnswered
	return inv
}

// unclaim undoes claim when the body could not be read.
func (e *execEnv) unclaim(inv *invocation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current == inv && e.phase == phaseAnswered {
		inv.answered = false
		e.phase = phaseBusy
	}
}

func (e *execEnv) handleResponse(w http.ResponseWriter, r *http.Request) {
	if mode := r.Header.Get("Lambda-Runtime-Function-Response-Mode"); mode != "" && mode != "streaming" {
		runtimeError(w, http.StatusBadRequest, "InvalidFunctionResponseMode", "Invalid function response mode: "+mode)
		return
	}
	inv := e.claim(w, r.PathValue("id"), "InvocationResponse")
	if inv == nil {
		return
	}
	body, n, err := readCapped(r.Body, maxResponseBytes)
	end := time.Now()
	if err != nil {
		e.unclaim(inv)
		runtimeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", "Received a truncated HTTP request: "+err.Error())
		return
	}
	if n > maxResponseBytes {
		// The runtime hears 413; the caller gets a function error (RIE rapi
		// invocationresponse).
		fe := responseTooLargeError(n)
		e.complete(inv, end, fnErrOutcome(fe), fe.ErrorMessage, fe.ErrorType)
		runtimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Exceeded maximum allowed payload size ("+strconv.Itoa(maxResponseBytes)+" bytes).")
		return
	}
	// aws-lambda-go sends the body chunked with trailers, which it fills
	// only when reading its reply failed (runtimes-api.html "Invocation
	// response"; aws-lambda-go runtime_api_client.go).
	if t := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); t != "" {
		payload, _ := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body"))
		if !json.Valid(payload) {
			payload = functionError{ErrorType: t}.body()
		}
		e.complete(inv, end, outcome{payload: payload, funcErr: true})
		accepted(w)
		return
	}
	e.complete(inv, end, outcome{payload: body})
	accepted(w)
}

func (e *execEnv) handleError(w http.ResponseWriter, r *http.Request) {
	inv := e.claim(w, r.PathValue("id"), "InvocationErrorResponse")
	if inv == nil {
		return
	}
	body, _, err := readCapped(r.Body, maxResponseBytes)
	end := time.Now()
	if err != nil {
		e.unclaim(inv)
		runtimeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", "Received a truncated HTTP request: "+err.Error())
		return
	}
	e.complete(inv, end, outcome{payload: errorBody(body, r.Header.Get("Lambda-Runtime-Function-Error-Type")), funcErr: true})
	accepted(w)
}

// errorBody is what the caller gets for a reported error: the body as
// posted (Lambda does not validate it: runtimes-api.html
// "Invocation error"), or, when it is not JSON,
// one built from Lambda-Runtime-Function-Error-Type.
func errorBody(body []byte, errType string) []byte {
	if len(body) > 0 && json.Valid(body) {
		return body
	}
	if errType == "" {
		errType = "Runtime.Unknown"
	}
	return functionError{ErrorType: errType, ErrorMessage: string(body)}.body()
}

func (e *execEnv) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _, _ := readCapped(r.Body, maxResponseBytes)
	errType := r.Header.Get("Lambda-Runtime-Function-Error-Type")
	if errType == "" {
		var fe functionError
		if json.Unmarshal(body, &fe) == nil {
			errType = fe.ErrorType
		}
	}
	if errType == "" {
		errType = "Runtime.Unknown"
	}
	e.mu.Lock()
	if e.phase != phaseInit || e.initErr != nil {
		e.mu.Unlock()
		invalidStateTransition(w, "Ready", "InitError")
		return
	}
	e.initErr = errorBody(body, errType)
	e.initErrType = errType
	e.initDur = time.Since(e.execAt)
	e.mu.Unlock()
	accepted(w)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	e.initOnce.Do(func() { close(e.initDone) })
}

// complete settles an answered invoke once its output is in: it waits for
// the lines the function printed before answering, and enforces the
// memory size one last time (the poller may have missed a short peak).
func (e *execEnv) complete(inv *invocation, end time.Time, out outcome, lines ...string) {
	e.flushOutput()
	if kb := e.sampleMemory(); kb > int64(e.live.conf.MemorySize)<<10 {
		e.s.log.Warn("function outgrew its memory size", "function", e.fn.name, "request_id", inv.id,
			"max_memory_used_mb", (kb+1023)/1024, "memory_size_mb", e.live.conf.MemorySize)
		fe := outOfMemoryError(inv.id)
		out, lines = fnErrOutcome(fe), []string{fe.ErrorMessage, fe.ErrorType}
		e.killWith(killOOM)
	}
	e.settle(inv, end, out, lines...)
}

// readCapped reads up to limit bytes of r. Past the limit it keeps reading
// (up to maxCountBytes) only to count, and returns n > limit.
func readCapped(r io.Reader, limit int64) (body []byte, n int64, err error) {
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	n = int64(len(body))
	if err != nil {
		return nil, n, err
	}
	if n > limit {
		rest, err := io.Copy(io.Discard, io.LimitReader(r, maxCountBytes))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, n + rest, err
		}
		return nil, n + rest, nil
	}
	return body, n, nil
}
