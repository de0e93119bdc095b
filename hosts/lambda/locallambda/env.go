package locallambda

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"
)

// An execution environment is one bootstrap process with its own Runtime
// API listener (lambda-runtime-environment.html). It serves one invoke at a
// time; an idle one is reused by the next invoke (warm), and a new one is
// started when none is free (cold).

type phase int

const (
	phaseInit     phase = iota // process started, no /next yet
	phaseIdle                  // waiting in /next
	phaseBusy                  // invoke delivered, not answered
	phaseAnswered              // answered, /next not called yet
	phaseDead
)

// killReason says why Ferry killed an environment; it decides what an
// invoke still in flight is told.
type killReason int

const (
	killNone      killReason = iota // the process ended by itself
	killTimeout                     // the invoke outlived the function's Timeout
	killOOM                         // the process outgrew MemorySize
	killInitError                   // the runtime posted /runtime/init/error
	killRetired                     // idle too long, stale after an update, or overran after answering
	killDeleted                     // the function was deleted
	killClosed                      // the server is closing
)

// liveConf is what invokes run: a function's configuration and code as of
// its last successful create or update. gen orders them; an environment of
// an older generation is never reused.
type liveConf struct {
	gen  int
	conf fnConf
	code *codeDir
}

type execEnv struct {
	s          *Server
	fn         *function
	live       *liveConf
	id         string
	streamName string
	tmpDir     string
	marker     []byte // barrier marker prefix, unique per environment

	nextCh     chan *invocation // the reserved invoke, for /next to take
	initDone   chan struct{}    // closed at the first /next, at /init/error, or at death
	initOnce   sync.Once
	dead       chan struct{} // closed once the process is reaped and its invoke settled
	readerDone chan struct{}

	// Guarded by fn.mu.
	assigned *invocation // reserved for an invoke not yet delivered
	retired  bool
	released bool // release has run

	mu          sync.Mutex
	phase       phase
	pid         int
	cmd         *exec.Cmd
	hs          *http.Server
	outR, outW  *os.File // output pipe; Ferry keeps the write end for flushOutput
	execAt      time.Time
	initDur     time.Duration
	startErr    string // the bootstrap could not be started
	initErr     []byte // body of /runtime/init/error
	initErrType string
	exitAt      time.Time
	exit        string // how the process ended, e.g. "exit status 2"
	current     *invocation
	served      int
	lastUsed    time.Time
	timer       *time.Timer
	kill        killReason
	peakKB      int64
	barrierSeq  uint64
	barriers    map[uint64]chan struct{}
	initLog     tailBuffer // output before the first invoke
}

func newEnv(s *Server, fn *function, live *liveConf) *execEnv {
	id := randomHex(32)
	return &execEnv{
		s: s, fn: fn, live: live, id: id,
		// AWS_LAMBDA_LOG_STREAM_NAME: YYYY/MM/DD/[version]<32 hex>
		// (configuration-envvars.html).
		streamName: time.Now().UTC().Format("2006/01/02") + "/[" + latest + "]" + id,
		marker:     []byte("\x00ferry-barrier-" + id + "-"),
		nextCh:     make(chan *invocation, 1),
		initDone:   make(chan struct{}),
		dead:       make(chan struct{}),
		readerDone: make(chan struct{}),
		barriers:   map[uint64]chan struct{}{},
	}
}

// start launches the Runtime API listener and the bootstrap. Failures are
// recorded in e (startErr) and end the environment; they are not returned.
func (e *execEnv) start() {
	code := e.live.code.path
	bootstrap := filepath.Join(code, "bootstrap")
	fail := func(why string) {
		e.mu.Lock()
		e.startErr = why
		e.mu.Unlock()
		e.s.log.Debug("execution environment failed to start", "function", e.fn.name, "err", why)
		e.finish()
	}
	// The bootstrap must be a file named bootstrap at the zip root
	// (runtimes-custom.html); Lambda's message for a missing one names the
	// places it looked.
	if fi, err := os.Stat(bootstrap); err != nil || fi.IsDir() {
		fail("Couldn't find valid bootstrap(s): [" + bootstrap + " /opt/bootstrap]")
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen for the Runtime API: " + err.Error())
		return
	}
	hs := &http.Server{
		Handler:           e.runtimeAPI(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	e.s.wg.Go(func() { _ = hs.Serve(ln) })
	e.mu.Lock()
	e.hs = hs
	e.mu.Unlock()

	// A sandbox reset after a crash or timeout keeps /tmp
	// (lambda-runtime-environment.html): a new environment takes over the
	// TMPDIR such a reset left behind.
	e.fn.mu.Lock()
	e.tmpDir = e.fn.takeTmp(e.live)
	e.fn.mu.Unlock()
	if e.tmpDir == "" {
		e.tmpDir = filepath.Join(e.s.root, "tmp", e.id)
	}
	if err := os.MkdirAll(e.tmpDir, 0o700); err != nil {
		fail("create TMPDIR: " + err.Error())
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		fail("create output pipe: " + err.Error())
		return
	}
	cmd := exec.Command(bootstrap)
	cmd.Dir = code
	cmd.Env = e.environ(ln.Addr().String())
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = sysProcAttr()
	e.mu.Lock()
	e.outR, e.outW = r, w
	e.execAt = time.Now()
	err = cmd.Start()
	if err != nil {
		e.mu.Unlock()
		r.Close()
		w.Close()
		// e.g. "fork/exec …/bootstrap: exec format error" or "permission
		// denied": Runtime.InvalidEntrypoint, the type AWS tooling uses.
		fail(err.Error())
		return
	}
	e.cmd = cmd
	pid := cmd.Process.Pid
	e.pid = pid
	killNow := e.kill != killNone
	e.mu.Unlock()
	if killNow {
		killGroup(pid)
	}
	e.s.log.Debug("execution environment started", "function", e.fn.name, "env", e.id, "pid", pid)
	e.s.wg.Go(func() {
		defer close(e.readerDone)
		defer r.Close()
		readOutput(r, e.marker, e.outputLine, e.barrierReached)
	})
	e.s.wg.Go(e.watchMemory)
	e.s.wg.Go(e.reap)
}

// environ is exactly the environment of configuration-envvars.html for a
// provided.* runtime: defaults, then Config.Env, then the
// function's variables, then the values Lambda reserves.
func (e *execEnv) environ(runtimeAPI string) []string {
	c := e.live.conf
	vars := map[string]string{
		"PATH":               "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LANG":               "en_US.UTF-8",
		"TZ":                 "UTC",
		"AWS_DEFAULT_REGION": e.s.cfg.Region,
		"TMPDIR":             e.tmpDir,
	}
	for k, v := range e.s.cfg.Env {
		vars[k] = v
	}
	for k, v := range c.Vars {
		vars[k] = v
	}
	for k, v := range map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          runtimeAPI,
		"_HANDLER":                        c.Handler,
		"LAMBDA_TASK_ROOT":                e.live.code.path,
		"LAMBDA_RUNTIME_DIR":              e.s.runtimeDir,
		"AWS_LAMBDA_FUNCTION_NAME":        e.fn.name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(c.MemorySize),
		"AWS_LAMBDA_FUNCTION_VERSION":     latest,
		"AWS_REGION":                      e.s.cfg.Region,
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + e.fn.name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      e.streamName,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
	} {
		vars[k] = v
	}
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// reap waits for the process, settles the invoke it was serving and
// releases everything the environment held.
func (e *execEnv) reap() {
	e.mu.Lock()
	pid := e.pid
	e.mu.Unlock()
	awaitExit(pid)
	killGroup(pid) // whatever the bootstrap left behind
	// From here on nothing may signal or sample pid: once reaped, the
	// number can belong to another process.
	e.mu.Lock()
	e.pid = 0
	e.mu.Unlock()
	_ = e.cmd.Wait()
	ps := e.cmd.ProcessState
	e.mu.Lock()
	e.outW.Close()
	e.mu.Unlock()
	// Let the reader drain what the process wrote before it ended. A
	// descendant that left the process group may still hold the pipe; it
	// is not waited for.
	select {
	case <-e.readerDone:
	case <-time.After(2 * time.Second):
		e.outR.Close()
		<-e.readerDone
	}
	now := time.Now()
	e.mu.Lock()
	e.phase = phaseDead
	e.exitAt = now
	e.exit = ps.String()
	if kb := maxRSSKB(ps); kb > e.peakKB {
		e.peakKB = kb
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	inv, kill, served := e.current, e.kill, e.served
	unanswered := inv != nil && !inv.answered
	e.mu.Unlock()
	e.s.log.Debug("execution environment ended", "function", e.fn.name, "env", e.id, "exit", ps.String(), "served", served)
	if unanswered {
		// Return the sandbox (and its /tmp) to the function before the
		// caller hears of the death, so that its next invoke finds the
		// reset sandbox's /tmp, as it would on Lambda.
		e.release()
		e.settleDeath(inv, kill, now)
	}
	e.finish()
}

// settleDeath answers the invoke that was in flight when the process died.
func (e *execEnv) settleDeath(inv *invocation, kill killReason, now time.Time) {
	switch kill {
	case killTimeout:
		// The invoke ended when its time was up, not when the process
		// was reaped.
		end := inv.deliveredAt.Add(inv.timedOutAfter)
		secs := inv.timedOutAfter.Seconds()
		e.settle(inv, end, fnErrOutcome(timeoutError(inv.id, secs)), timeoutLine(end, inv.id, secs))
	case killOOM:
		fe := outOfMemoryError(inv.id)
		e.settle(inv, now, fnErrOutcome(fe), fe.ErrorMessage, fe.ErrorType)
	case killDeleted:
		e.settle(inv, now, outcome{apiErr: errNotFound(e.fn.arn)})
	case killClosed:
		e.settle(inv, now, outcome{apiErr: errService("the local Lambda service is shutting down")})
	default:
		fe := exitedError(inv.id, e.exit)
		e.settle(inv, now, fnErrOutcome(fe), fe.ErrorMessage, fe.ErrorType)
	}
}

// finish ends the environment: it releases it (see release) and marks it
// dead for whoever waits on it.
func (e *execEnv) finish() {
	e.release()
	e.s.envEnded(e.fn.name)
	e.initOnce.Do(func() { close(e.initDone) })
	close(e.dead)
}

// release gives back the environment's listener, TMPDIR, its place in the
// function's pool and its share of the code directory. It runs once.
func (e *execEnv) release() {
	e.mu.Lock()
	e.phase = phaseDead
	hs := e.hs
	// Killed for a reason of Ferry's own (idle, stale, deleted, closing),
	// the sandbox is gone; ended by the function (crash, timeout, memory,
	// init error), it is only reset and keeps its /tmp.
	reset := e.kill == killNone || e.kill == killTimeout || e.kill == killOOM || e.kill == killInitError
	e.mu.Unlock()
	e.fn.mu.Lock()
	if e.released {
		e.fn.mu.Unlock()
		return
	}
	e.released = true
	delete(e.fn.envs, e)
	e.retired = true
	remove := []string{e.fn.release(e.live.code)}
	if e.tmpDir != "" && !(reset && e.fn.keepTmp(e.tmpDir, e.live, e.s.cfg.MaxConcurrency)) {
		remove = append(remove, e.tmpDir)
	}
	e.fn.mu.Unlock()
	if hs != nil {
		_ = hs.Close()
	}
	for _, dir := range remove {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
}

// killWith kills the process group, remembering the first reason.
func (e *execEnv) killWith(r killReason) {
	e.mu.Lock()
	if e.kill == killNone {
		e.kill = r
	}
	pid := e.pid
	e.mu.Unlock()
	if pid > 0 {
		killGroup(pid)
	}
}

// onDeadline fires when an invoke's Timeout elapses: an unanswered invoke
// times out; an answered one whose runtime has not come back to /next
// overran its budget, and the environment is reset either way
// (lambda-runtime-environment.html).
func (e *execEnv) onDeadline(inv *invocation) {
	e.mu.Lock()
	if e.current != inv || e.phase == phaseDead {
		e.mu.Unlock()
		return
	}
	r := killRetired
	if !inv.answered {
		r = killTimeout
		inv.timedOutAfter = time.Since(inv.deliveredAt)
	}
	e.mu.Unlock()
	e.killWith(r)
}

// watchMemory enforces MemorySize the way the sandbox does: a process
// outgrowing it is killed. It polls only while the environment works.
func (e *execEnv) watchMemory() {
	limitKB := int64(e.live.conf.MemorySize) << 10
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-e.dead:
			return
		case <-t.C:
		}
		e.mu.Lock()
		working := e.phase == phaseInit || e.phase == phaseBusy
		e.mu.Unlock()
		if working && e.sampleMemory() > limitKB {
			e.killWith(killOOM)
			return
		}
	}
}

// sampleMemory reads the process's memory, keeps the peak, and returns the
// high-water mark in KiB. It reads /proc under e.mu, so the process cannot
// be reaped (and its pid reused) meanwhile.
func (e *execEnv) sampleMemory() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pid > 0 {
		rss, hwm := readMemory(e.pid)
		e.peakKB = max(e.peakKB, rss, hwm)
	}
	return e.peakKB
}

func (e *execEnv) maxMemoryUsedMB() int {
	e.mu.Lock()
	kb := e.peakKB
	e.mu.Unlock()
	return int((kb + 1023) / 1024)
}

// outputLine files one line of the function's output: under the invoke
// being served, or the init log before the first one.
func (e *execEnv) outputLine(line string) {
	e.mu.Lock()
	inv := e.current
	if inv == nil && e.served == 0 {
		e.initLog.line(line)
	}
	e.mu.Unlock()
	e.emit(inv, line)
}

// emit writes a log line where Lambda's log stream would get it, and into
// inv's tail when inv is not nil.
func (e *execEnv) emit(inv *invocation, line string) {
	if inv != nil {
		inv.log.line(line)
	}
	e.fn.logs.add(line)
	e.s.funcLogs.line("["+e.fn.name+"] ", line)
}

// flushOutput waits until everything the process wrote before now has
// been read and filed. It writes a numbered marker into the output pipe
// after the process's own writes; the reader reports when it gets there.
// Without it a line printed just before a reply could land after END.
func (e *execEnv) flushOutput() {
	e.mu.Lock()
	w := e.outW
	if w == nil || e.phase == phaseDead {
		e.mu.Unlock()
		return
	}
	e.barrierSeq++
	n := e.barrierSeq
	ch := make(chan struct{})
	e.barriers[n] = ch
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.barriers, n)
		e.mu.Unlock()
	}()
	msg := append(append([]byte(nil), e.marker...), strconv.FormatUint(n, 10)+"\n"...)
	// A marker is shorter than PIPE_BUF, so it is written in one piece.
	// The write blocks only while the reader is behind.
	go func() { _, _ = w.Write(msg) }()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ch:
	case <-e.readerDone:
	case <-t.C:
	}
}

func (e *execEnv) barrierReached(n uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch, ok := e.barriers[n]; ok {
		close(ch)
		delete(e.barriers, n)
	}
}

// settle completes inv exactly once: extra lines, END and REPORT go to the
// log, and the caller is woken with out.
func (e *execEnv) settle(inv *invocation, end time.Time, out outcome, lines ...string) {
	inv.once.Do(func() {
		start := inv.deliveredAt
		if start.IsZero() {
			start = inv.started
		}
		d := end.Sub(start)
		for _, l := range lines {
			e.emit(inv, l)
		}
		e.emit(inv, endLine(inv.id))
		e.emit(inv, reportLine(inv.id, d, e.live.conf.MemorySize, e.maxMemoryUsedMB(), inv.initDur, inv.cold))
		out.logTail = inv.log.bytes()
		inv.out = out
		close(inv.done)
	})
}

// initResult is how an environment's init ended.
type initResult struct {
	ready    bool
	startErr string
	initErr  []byte
	errType  string
	exit     string // the process ended before /next
	timedOut bool
	took     time.Duration
}

// awaitInit waits for the runtime's first /next, an init error, the
// process's end, or limit.
func (e *execEnv) awaitInit(limit time.Duration) initResult {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-e.initDone:
	case <-t.C:
		e.killWith(killTimeout)
		<-e.dead
		e.mu.Lock()
		defer e.mu.Unlock()
		return initResult{timedOut: true, took: e.exitAt.Sub(e.execAt)}
	}
	e.mu.Lock()
	phase, startErr, initErr := e.phase, e.startErr, e.initErr
	e.mu.Unlock()
	switch {
	case startErr != "":
		return initResult{startErr: startErr}
	case initErr != nil:
		e.flushOutput()
		e.killWith(killInitError)
		e.mu.Lock()
		defer e.mu.Unlock()
		return initResult{initErr: e.initErr, errType: e.initErrType, took: e.initDur}
	case phase == phaseDead:
		<-e.dead
		e.mu.Lock()
		defer e.mu.Unlock()
		return initResult{exit: e.exit, took: e.exitAt.Sub(e.execAt)}
	}
	return initResult{ready: true}
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID, the shape of Lambda's request
// and revision ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
