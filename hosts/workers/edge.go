package workers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
)

// edgeErrors turns Cloudflare's own error answers, which come from the
// edge and not from Ferry's Worker, into the protocol's error bodies, so
// the HTTP client host classifies them like any other host's:
//
//   - 1102, the Worker exceeded its CPU time or memory: the job's fault
//     (its timeout is its CPU limit), EXECUTION_ERROR with kind cpu_limit,
//     which is host.ErrLimit.
//   - 1101, the Worker threw: Ferry's shim failed, INFRASTRUCTURE_ERROR.
//   - anything else keeps its status, and its body as the message.
//
// Cloudflare sends "error code: NNNN" as plain text to clients that do not
// ask for HTML (developers.cloudflare.com/support/troubleshooting/
// http-status-codes/cloudflare-1xxx-errors/).
type edgeErrors struct{ base http.RoundTripper }

var edgeCodeRE = regexp.MustCompile(`error code: (1\d\d\d)`)

func (t edgeErrors) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 500 || resp.Header.Get("Content-Type") == "application/json" {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	m := edgeCodeRE.FindSubmatch(body)
	if m == nil {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	code, _ := strconv.Atoi(string(m[1]))
	var out map[string]any
	switch code {
	case 1102:
		out = map[string]any{"job_id": 0, "result": []int{}, "success": false, "code": "EXECUTION_ERROR",
			"error":   "Cloudflare stopped the Worker (error 1102): the job exceeded its CPU time or the isolate's memory",
			"details": map[string]any{"kind": "cpu_limit"}}
	case 1101:
		out = map[string]any{"error": "the Worker threw an exception (Cloudflare error 1101): a fault in Ferry's shim; see the Worker's logs",
			"code": "INFRASTRUCTURE_ERROR"}
	default:
		out = map[string]any{"error": "Cloudflare error " + string(m[1]), "code": "UNAVAILABLE"}
	}
	b, _ := json.Marshal(out)
	resp.StatusCode = http.StatusInternalServerError
	if code != 1102 && code != 1101 {
		resp.StatusCode = http.StatusServiceUnavailable
	}
	resp.Status = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	resp.Header = http.Header{"Content-Type": {"application/json"}}
	resp.ContentLength = int64(len(b))
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}
