package wasmrt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/engine"
	"github.com/ferryrun/ferry/runtime/state"
)

// invocation is the per-call state host functions reach through ctx.
type invocation struct {
	m           *Module
	id          string
	limits      Limits
	logger      *slog.Logger // built on first use: most calls never log
	pending     []byte       // result of the last state_get/http_request, for take
	tx          *state.Tx    // the call's state transaction; nil: state is denied
	stateWrites int          // bytes of keys and values written, against MaxStateWriteBytes
	guestErr    []byte
	hostCalls   int
	httpCalls   int
	logBytes    int
	logDrop     bool
	logs        []LogLine
	stderr      logSink

	// parent and deadline bound the I/O host functions do (io); ioCtx is
	// made from them on first use, as most calls do none.
	parent   context.Context
	deadline time.Time
	ioCtx    context.Context
	ioCancel context.CancelFunc
}

// io is the context host functions do I/O under: the caller's, ending at
// the call's deadline.
func (inv *invocation) io() context.Context {
	if inv.ioCtx == nil {
		inv.ioCtx, inv.ioCancel = context.WithDeadline(inv.parent, inv.deadline)
	}
	return inv.ioCtx
}

// endIO releases io's context once the call has returned.
func (inv *invocation) endIO() {
	if inv.ioCancel != nil {
		inv.ioCancel()
	}
}

type invocationKey struct{}

func withInvocation(ctx context.Context, inv *invocation) context.Context {
	return context.WithValue(ctx, invocationKey{}, inv)
}

func invocationFrom(ctx context.Context) *invocation {
	inv, _ := ctx.Value(invocationKey{}).(*invocation)
	return inv
}

func (m *Module) newInvocation(id string) *invocation {
	inv := &invocation{m: m, id: id, limits: m.limits}
	inv.stderr = logSink{m: m, inv: inv, source: "stderr"}
	return inv
}

func (inv *invocation) log() *slog.Logger {
	if inv.logger == nil {
		inv.logger = inv.m.log.With("invocation_id", inv.id)
	}
	return inv.logger
}

func (inv *invocation) guestErrMsg() string {
	return "guest error: " + strings.ToValidUTF8(string(inv.guestErr), "\uFFFD")
}

func (inv *invocation) stderrSink() *logSink { return &inv.stderr }

func (inv *invocation) flushLogs() { inv.stderr.flush() }

const maxLogLine = 4 << 10

// emit records one guest log line, within the invocation's log budget.
func (inv *invocation) emit(level slog.Level, source, msg string) {
	if inv.logDrop {
		return
	}
	if inv.logBytes+len(msg) > inv.limits.MaxLogBytes {
		inv.logDrop = true
		inv.log().Warn("guest log limit reached; dropping the rest", "limit_bytes", inv.limits.MaxLogBytes)
		return
	}
	inv.logBytes += len(msg)
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	inv.logs = append(inv.logs, LogLine{Level: level, Msg: msg, Source: source})
	inv.log().Log(context.Background(), level, msg, "source", source)
}

// logSink turns a guest's stderr into log lines.
type logSink struct {
	m      *Module
	inv    *invocation
	source string
	buf    []byte
	// used before an invocation exists (during _initialize)
	id    string
	limit int
	n     int
}

func (s *logSink) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		s.line(string(s.buf[:i]))
		s.buf = s.buf[i+1:]
	}
	if len(s.buf) > maxLogLine {
		s.line(string(s.buf))
		s.buf = s.buf[:0]
	}
	return len(p), nil
}

func (s *logSink) line(l string) {
	if s.inv != nil {
		s.inv.emit(slog.LevelInfo, s.source, l)
		return
	}
	if s.n+len(l) > s.limit {
		return
	}
	s.n += len(l)
	s.m.log.Info(l, "source", s.source, "phase", s.id)
}

func (s *logSink) flush() {
	if len(s.buf) > 0 {
		s.line(string(s.buf))
		s.buf = s.buf[:0]
	}
}

func (r *Runtime) hostFuncs() map[string]engine.HostFunction {
	return map[string]engine.HostFunction{
		"log":          hostLog,
		"error":        hostError,
		"take":         hostTake,
		"state_get":    r.hostStateGet,
		"state_set":    r.hostStateSet,
		"state_delete": r.hostStateDelete,
		"http_request": r.hostHTTP,
	}
}

func i32(v int32) uint64 { return uint64(uint32(v)) }

func levelOf(l int32) slog.Level {
	switch l {
	case abi.LogDebug:
		return slog.LevelDebug
	case abi.LogWarn:
		return slog.LevelWarn
	case abi.LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// readGuest reads n bytes at p, failing when the range is out of bounds or
// over max.
func readGuest(mem engine.Memory, p, n uint64, max int) ([]byte, int32) {
	// i32 parameters arrive in uint64 slots whose upper bits are undefined.
	ptr, size := uint32(p), uint32(n)
	if uint64(size) > uint64(max) {
		return nil, abi.CodeTooLarge
	}
	b, ok := mem.Read(ptr, size)
	if !ok {
		return nil, abi.CodeInvalid
	}
	return b, 0
}

// guestMessage reads a log or error message, truncated to maxLogLine.
func guestMessage(mem engine.Memory, ptr, n uint64) ([]byte, bool) {
	return mem.Read(uint32(ptr), min(uint32(n), maxLogLine))
}

func hostLog(ctx context.Context, mem engine.Memory, st []uint64) {
	inv := invocationFrom(ctx)
	if inv == nil {
		return
	}
	if b, ok := guestMessage(mem, st[1], st[2]); ok {
		inv.emit(levelOf(int32(st[0])), "ferry.log", string(b))
	}
}

func hostError(ctx context.Context, mem engine.Memory, st []uint64) {
	inv := invocationFrom(ctx)
	if inv == nil {
		return
	}
	b, ok := guestMessage(mem, st[0], st[1])
	if !ok {
		b = []byte("(error message out of bounds)")
	}
	if len(b) == 0 {
		b = []byte("(no message)")
	}
	inv.guestErr = bytes.Clone(b)
}

func hostTake(ctx context.Context, mem engine.Memory, st []uint64) {
	inv := invocationFrom(ctx)
	if inv == nil {
		st[0] = i32(abi.CodeInvalid)
		return
	}
	n := min(int(uint32(st[1])), len(inv.pending))
	if !mem.Write(uint32(st[0]), inv.pending[:n]) {
		st[0] = i32(abi.CodeInvalid)
		return
	}
	inv.pending = nil
	st[0] = uint64(n)
}

// hostCall counts a state or HTTP call against the invocation's budget.
func hostCall(ctx context.Context) (*invocation, int32) {
	inv := invocationFrom(ctx)
	if inv == nil {
		return nil, abi.CodeDenied // e.g. called from _initialize
	}
	inv.hostCalls++
	if inv.hostCalls > inv.limits.MaxHostCalls {
		return nil, abi.CodeRateLimited
	}
	return inv, 0
}

func (r *Runtime) stateKey(ctx context.Context, mem engine.Memory, p, n uint64) (*invocation, string, int32) {
	inv, code := hostCall(ctx)
	if code != 0 {
		return nil, "", code
	}
	if inv.tx == nil {
		return nil, "", abi.CodeDenied
	}
	k, code := readGuest(mem, p, n, inv.limits.MaxStateKeyBytes)
	if code != 0 {
		return nil, "", code
	}
	if len(k) == 0 || !utf8.Valid(k) {
		return nil, "", abi.CodeInvalid
	}
	return inv, string(k), 0
}

func (r *Runtime) stateFailed(inv *invocation, op, key string, err error) uint64 {
	// The store failed, not the guest: log it host-side with context. The
	// guest sees CodeFailed and decides.
	inv.log().Warn("state store failed", "op", op, "key", key, "err", err)
	return i32(abi.CodeFailed)
}

func (r *Runtime) hostStateGet(ctx context.Context, mem engine.Memory, st []uint64) {
	inv, key, code := r.stateKey(ctx, mem, st[0], st[1])
	if code != 0 {
		st[0] = i32(code)
		return
	}
	v, ok, err := inv.tx.Get(inv.io(), key)
	switch {
	case err != nil:
		st[0] = r.stateFailed(inv, "get", key, err)
	case !ok:
		st[0] = i32(abi.CodeNotFound)
	default:
		inv.pending = v
		st[0] = uint64(len(v))
	}
}

func (r *Runtime) hostStateSet(ctx context.Context, mem engine.Memory, st []uint64) {
	inv, key, code := r.stateKey(ctx, mem, st[0], st[1])
	if code != 0 {
		st[0] = i32(code)
		return
	}
	v, code := readGuest(mem, st[2], st[3], inv.limits.MaxStateValueBytes)
	if code != 0 {
		st[0] = i32(code)
		return
	}
	if inv.stateWrites += len(key) + len(v); inv.stateWrites > inv.limits.MaxStateWriteBytes {
		inv.log().Warn("state writes over the invocation's limit", "limit", inv.limits.MaxStateWriteBytes)
		st[0] = i32(abi.CodeTooLarge)
		return
	}
	inv.tx.Set(key, v)
	st[0] = 0
}

func (r *Runtime) hostStateDelete(ctx context.Context, mem engine.Memory, st []uint64) {
	inv, key, code := r.stateKey(ctx, mem, st[0], st[1])
	if code != 0 {
		st[0] = i32(code)
		return
	}
	inv.tx.Delete(key)
	st[0] = 0
}

// allowList is the set of hosts a job may reach over HTTP.
type allowList []allowEntry

type allowEntry struct {
	host     string // lower case, no port; "*.x" matches subdomains of x
	port     string // empty: any
	wildcard bool
}

func parseAllowList(hosts []string) (allowList, error) {
	var out allowList
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.Contains(h, "/") {
			return nil, fmt.Errorf("allow-host %q: want host, host:port or *.domain", h)
		}
		e := allowEntry{host: h}
		if host, port, err := net.SplitHostPort(h); err == nil {
			e.host, e.port = host, port
		}
		if rest, ok := strings.CutPrefix(e.host, "*."); ok {
			if rest == "" || strings.Contains(rest, "*") {
				return nil, fmt.Errorf("allow-host %q: bad wildcard", h)
			}
			e.host, e.wildcard = rest, true
		} else if strings.Contains(e.host, "*") {
			return nil, fmt.Errorf("allow-host %q: a wildcard may only open the name (*.example.com)", h)
		}
		out = append(out, e)
	}
	return out, nil
}

func (a allowList) allows(u *url.URL) bool {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, e := range a {
		if e.port != "" && e.port != port {
			continue
		}
		if (!e.wildcard && host == e.host) || (e.wildcard && strings.HasSuffix(host, "."+e.host)) {
			return true
		}
	}
	return false
}

type allowKey struct{}

func newHTTPClient(base *http.Client) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if a, ok := req.Context().Value(allowKey{}).(allowList); !ok || !a.allows(req.URL) {
			return fmt.Errorf("redirect to %s: host not allowed", req.URL.Host)
		}
		return nil
	}
	return c
}

const maxHTTPRequestBytes = 8 << 20

func (r *Runtime) hostHTTP(ctx context.Context, mem engine.Memory, st []uint64) {
	inv, code := hostCall(ctx)
	if code != 0 {
		st[0] = i32(code)
		return
	}
	raw, code := readGuest(mem, st[0], st[1], maxHTTPRequestBytes)
	if code != 0 {
		st[0] = i32(code)
		return
	}
	resp, code := r.doHTTP(inv, raw)
	if code != 0 {
		st[0] = i32(code)
		return
	}
	inv.pending = resp
	st[0] = uint64(len(resp))
}

func (r *Runtime) doHTTP(inv *invocation, raw []byte) ([]byte, int32) {
	req, err := decodeHTTPRequest(raw)
	if err != nil {
		inv.log().Warn("http_request: malformed request", "err", err)
		return nil, abi.CodeInvalid
	}
	u, err := url.Parse(req.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		inv.log().Warn("http_request: bad url", "url", req.url)
		return nil, abi.CodeInvalid
	}
	if !inv.m.allow.allows(u) {
		inv.log().Warn("http_request: host not allowed", "host", u.Host)
		return nil, abi.CodeDenied
	}
	inv.httpCalls++
	if inv.httpCalls > inv.limits.MaxHTTPRequests {
		return nil, abi.CodeRateLimited
	}
	ctx, cancel := context.WithTimeout(context.WithValue(inv.io(), allowKey{}, inv.m.allow), inv.limits.HTTPTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, req.method, u.String(), bytes.NewReader(req.body))
	if err != nil {
		return nil, abi.CodeInvalid
	}
	for k, v := range req.header {
		hreq.Header.Set(k, v)
	}
	resp, err := r.client.Do(hreq)
	if err != nil {
		inv.log().Warn("http_request failed", "url", u.Redacted(), "err", err)
		return nil, abi.CodeFailed
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(inv.limits.MaxHTTPResponseBytes)+1))
	if err != nil {
		inv.log().Warn("http_request: read body failed", "url", u.Redacted(), "err", err)
		return nil, abi.CodeFailed
	}
	if len(body) > inv.limits.MaxHTTPResponseBytes {
		return nil, abi.CodeTooLarge
	}
	return encodeHTTPResponse(resp, body), 0
}

type httpRequest struct {
	method, url string
	header      map[string]string
	body        []byte
}

// decodeHTTPRequest reads the ABI's request record: method, url, header
// count, name/value pairs, body, each string a u32 length then bytes.
func decodeHTTPRequest(b []byte) (*httpRequest, error) {
	d := decoder{b: b}
	req := &httpRequest{header: map[string]string{}}
	req.method = string(d.str())
	req.url = string(d.str())
	n := d.u32()
	if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
		return nil, errors.New("header count does not fit")
	}
	for range n {
		k, v := d.str(), d.str()
		req.header[string(k)] = string(v)
	}
	req.body = d.str()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b))
	}
	switch req.method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
	default:
		return nil, fmt.Errorf("method %q not allowed", req.method)
	}
	return req, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = errors.New("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) str() []byte {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.b)) {
		d.err = errors.New("truncated")
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func encodeHTTPResponse(resp *http.Response, body []byte) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(resp.StatusCode))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(resp.Header)))
	for k, v := range resp.Header {
		out = appendStr(out, k)
		out = appendStr(out, strings.Join(v, ", "))
	}
	return appendStr(out, string(body))
}

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
