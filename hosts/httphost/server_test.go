package httphost_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/hostpkg"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/state"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// ---- helpers shared by server_test.go and client_test.go ----

// wat returns an example WAT module's binary.
func wat(t testing.TB, name string) []byte {
	t.Helper()
	b, err := examples.WAT(name)
	require.NoError(t, err)
	return b
}

// rawClient sends the raw-HTTP tests' requests; it has a timeout so a hung
// server fails the test instead of hanging it.
var rawClient = &http.Client{Timeout: 30 * time.Second}

// answer is one raw HTTP answer, with its body decoded as a JSON object
// when it is one.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func (a answer) String() string { return fmt.Sprintf("HTTP %d %s", a.Status, a.Body) }

// str is a string field of the body ("" when absent or not a string).
func (a answer) str(key string) string {
	s, _ := a.JSON[key].(string)
	return s
}

// num is a number field of the body; it fails the test when the field is
// absent or not a number.
func (a answer) num(t testing.TB, key string) float64 {
	t.Helper()
	v, ok := a.JSON[key]
	require.True(t, ok, "field %q missing in %s", key, a)
	f, ok := v.(float64)
	require.True(t, ok, "field %q is %T, not a number, in %s", key, v, a)
	return f
}

// details is the body's details object (nil when absent).
func (a answer) details() map[string]any {
	d, _ := a.JSON["details"].(map[string]any)
	return d
}

// result decodes the body's result, which must be a JSON array of numbers
// 0–255 (never base64).
func (a answer) result(t testing.TB) []byte {
	t.Helper()
	v, ok := a.JSON["result"]
	require.True(t, ok, "no result in %s", a)
	arr, ok := v.([]any)
	require.True(t, ok, "result is %T, not a JSON array, in %s", v, a)
	out := make([]byte, len(arr))
	for i, e := range arr {
		f, ok := e.(float64)
		require.True(t, ok, "result[%d] is %T, not a number", i, e)
		require.True(t, f >= 0 && f <= 255 && f == float64(int(f)), "result[%d] = %v is not a byte", i, f)
		out[i] = byte(f)
	}
	return out
}

// send sends one request. hdr values are set as given; a nil body sends
// none. A body given as an io.Reader that is not a *bytes.Reader is sent
// chunked (no Content-Length).
func send(t testing.TB, method, url string, hdr map[string]string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := rawClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if len(bytes.TrimSpace(b)) > 0 && bytes.TrimSpace(b)[0] == '{' {
		require.NoError(t, json.Unmarshal(b, &a.JSON), "body is not JSON: %s", b)
	}
	return a
}

func bearer(token string) map[string]string {
	if token == "" {
		return map[string]string{}
	}
	return map[string]string{"Authorization": "Bearer " + token}
}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// blueprintConfig is the X-Blueprint-Config header for v.
func blueprintConfig(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b)
}

// put deploys body under id; cfg (if not nil) is marshalled into
// X-Blueprint-Config.
func put(t testing.TB, base, token, id, contentType string, body []byte, cfg any) answer {
	t.Helper()
	h := with(bearer(token), "Content-Type", contentType)
	if cfg != nil {
		h["X-Blueprint-Config"] = blueprintConfig(t, cfg)
	}
	return send(t, http.MethodPut, base+"/api/functions/"+id, h, bytes.NewReader(body))
}

// mustPut deploys a WAT example and requires a 200.
func mustPut(t testing.TB, base, token, id, example string, cfg any) answer {
	t.Helper()
	a := put(t, base, token, id, "application/wasm", wat(t, example), cfg)
	require.Equal(t, http.StatusOK, a.Status, "deploy %s: %s", id, a)
	return a
}

// invokeBody is the protocol's invoke JSON, with args as a number array,
// built the way serde would (via []int, not Bytes, so it is independent of
// the code under test).
func invokeBody(jobID uint32, args []byte) []byte {
	nums := make([]int, len(args))
	for i, c := range args {
		nums[i] = int(c)
	}
	b, _ := json.Marshal(struct {
		JobID uint32 `json:"job_id"`
		Args  []int  `json:"args"`
	}{jobID, nums})
	return b
}

func invoke(t testing.TB, base, token, id string, jobID uint32, args []byte) answer {
	t.Helper()
	return send(t, http.MethodPost, base+"/api/functions/"+id+"/invoke",
		with(bearer(token), "Content-Type", "application/json"), bytes.NewReader(invokeBody(jobID, args)))
}

// mustServe checks the server still answers a good invocation of an echo
// function.
func mustServe(t testing.TB, base, token, id string) {
	t.Helper()
	a := invoke(t, base, token, id, 9, []byte{1, 2, 3, 250})
	require.Equal(t, http.StatusOK, a.Status, "a good invocation after a bad request: %s", a)
	assert.Equal(t, []byte{1, 2, 3, 250}, a.result(t))
	assert.Equal(t, true, a.JSON["success"])
}

// assertError checks an error answer: status, code, and that the message
// mentions each of want (case-insensitively).
func assertError(t testing.TB, a answer, status int, code string, want ...string) {
	t.Helper()
	assert.Equal(t, status, a.Status, "%s", a)
	require.NotNil(t, a.JSON, "error body is not a JSON object: %q", a.Body)
	assert.Equal(t, code, a.str("code"), "%s", a)
	msg := a.str("error")
	assert.NotEmpty(t, msg, "%s", a)
	for _, w := range want {
		assert.Contains(t, strings.ToLower(msg), strings.ToLower(w), "error message of %s", a)
	}
	assert.Contains(t, a.Header.Get("Content-Type"), "application/json")
}

func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		require.NoError(t, err)
		_, err = w.Write(files[n])
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// stoppableServer is a Server whose lifetime the test controls (to
// restart on the same data directory).
type stoppableServer struct {
	URL  string
	stop func()
}

func startServer(t *testing.T, cfg httphost.ServerConfig) *stoppableServer {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmrt.New(ctx, wasmrt.Config{State: state.NewMemory()})
	require.NoError(t, err)
	cfg.Runtime = rt
	if cfg.PoolSize == 0 {
		cfg.PoolSize = 2
	}
	s, err := httphost.NewServer(ctx, cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ts.Close()
			assert.NoError(t, s.Close(ctx))
			assert.NoError(t, rt.Close(ctx))
		})
	}
	t.Cleanup(stop)
	return &stoppableServer{URL: ts.URL, stop: stop}
}

// ---- bad input ----

func TestServer_BadInput(t *testing.T) {
	const token = "s3cret"
	s := newTestServer(t, httphost.ServerConfig{Token: token, MaxRequestBytes: 4096, MaxPackageBytes: 64 << 10})
	auth := bearer(token)
	jsonHdr := with(auth, "Content-Type", "application/json")
	mustPut(t, s.URL, token, "echo", "echo", nil)
	mustPut(t, s.URL, token, "small", "echo", httphost.Config{MaxInputBytes: 16})
	mustServe(t, s.URL, token, "echo")

	invokeURL := s.URL + "/api/functions/echo/invoke"
	rawInvoke := func(body string) func() answer {
		return func() answer {
			return send(t, http.MethodPost, invokeURL, jsonHdr, strings.NewReader(body))
		}
	}
	bigArgs := bytes.Repeat([]byte{200}, 2000) // ~8 KB of JSON, over 4096
	nativeZip := zipOf(t, map[string][]byte{"bootstrap": []byte("#!/bin/sh\necho pwned\n")})
	cfgHeader := func(raw string) map[string]string {
		return with(auth, "Content-Type", "application/wasm", "X-Blueprint-Config", raw)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	echo := wat(t, "echo")

	cases := []struct {
		name   string
		do     func() answer
		status int
		code   string
		msg    []string
		// notDeployed, when set, must not exist after the request.
		notDeployed string
		check       func(t *testing.T, a answer)
	}{
		{name: "malformed JSON", do: rawInvoke(`{"job_id":1,"args":[1,2`), status: 400, code: "INVALID_REQUEST", msg: []string{"malformed JSON"}},
		{name: "not JSON at all", do: rawInvoke(`hello`), status: 400, code: "INVALID_REQUEST", msg: []string{"malformed JSON"}},
		{name: "args base64 string", do: rawInvoke(`{"job_id":1,"args":"AQID"}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args", "base64"}},
		{name: "args over 255", do: rawInvoke(`{"job_id":1,"args":[1,256]}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args", "256"}},
		{name: "args huge number", do: rawInvoke(`{"job_id":1,"args":[99999999999999999999999]}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args", "not a byte"}},
		{name: "args negative", do: rawInvoke(`{"job_id":1,"args":[-1]}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args", "-1"}},
		{name: "args float", do: rawInvoke(`{"job_id":1,"args":[1.5]}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args", "not an integer"}},
		{name: "args exponent", do: rawInvoke(`{"job_id":1,"args":[1e2]}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args", "not an integer"}},
		{name: "args element string", do: rawInvoke(`{"job_id":1,"args":["1"]}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args"}},
		{name: "args null", do: rawInvoke(`{"job_id":1,"args":null}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args", "null"}},
		{name: "args object", do: rawInvoke(`{"job_id":1,"args":{"0":1}}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args", "object"}},
		{name: "args missing", do: rawInvoke(`{"job_id":1}`), status: 400, code: "INVALID_REQUEST", msg: []string{"args", "missing"}},
		{name: "job_id negative", do: rawInvoke(`{"job_id":-1,"args":[]}`), status: 400, code: "INVALID_REQUEST", msg: []string{"job_id"}},
		{name: "bad invocation id", do: func() answer {
			return send(t, http.MethodPost, invokeURL, with(jsonHdr, "X-Ferry-Invocation-Id", "a b\"c"), strings.NewReader(`{"job_id":1,"args":[]}`))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"invocation id"}},
		{name: "unknown function", do: func() answer { return invoke(t, s.URL, token, "nope", 1, []byte{1}) },
			status: 404, code: "NOT_FOUND", msg: []string{"not found"},
			check: func(t *testing.T, a answer) { assert.Equal(t, "nope", a.str("function_id")) }},
		{name: "native-only zip", do: func() answer { return put(t, s.URL, token, "native", "application/zip", nativeZip, nil) },
			status: 400, code: "INVALID_PACKAGE", msg: []string{"native", "bootstrap"}, notDeployed: "native"},
		{name: "zip without module", do: func() answer {
			return put(t, s.URL, token, "nomod", "application/zip", zipOf(t, map[string][]byte{"README": []byte("hi")}), nil)
		}, status: 400, code: "INVALID_PACKAGE", msg: []string{"module.wasm"}, notDeployed: "nomod"},
		{name: "neither wasm nor zip", do: func() answer {
			return put(t, s.URL, token, "junk", "application/octet-stream", []byte("#!/bin/sh\nrm -rf /\n"), nil)
		}, status: 400, code: "INVALID_PACKAGE", msg: []string{"neither", "WebAssembly", "zip"}, notDeployed: "junk"},
		{name: "empty package", do: func() answer { return put(t, s.URL, token, "empty", "application/wasm", nil, nil) },
			status: 400, code: "INVALID_PACKAGE", notDeployed: "empty"},
		{name: "truncated wasm", do: func() answer { return put(t, s.URL, token, "trunc", "application/wasm", echo[:len(echo)/2], nil) },
			status: 400, code: "INVALID_PACKAGE", notDeployed: "trunc"},
		{name: "invoke body over the limit", do: func() answer { return invoke(t, s.URL, token, "echo", 1, bigArgs) },
			status: 413, code: "PAYLOAD_TOO_LARGE", msg: []string{"limit", "4096"},
			check: func(t *testing.T, a answer) { assert.EqualValues(t, 4096, a.details()["limit"]) }},
		{name: "invoke body over the limit, chunked", do: func() answer {
			// An io.Reader without a length: no Content-Length, so the
			// server finds out while reading.
			return send(t, http.MethodPost, invokeURL, jsonHdr, io.MultiReader(bytes.NewReader(invokeBody(1, bigArgs))))
		}, status: 413, code: "PAYLOAD_TOO_LARGE", msg: []string{"limit"}},
		{name: "args over max_input_bytes", do: func() answer { return invoke(t, s.URL, token, "small", 1, bytes.Repeat([]byte{7}, 100)) },
			status: 413, code: "PAYLOAD_TOO_LARGE",
			check: func(t *testing.T, a answer) {
				assert.Equal(t, false, a.JSON["success"])
				assert.Equal(t, "input_too_large", a.details()["kind"])
				assert.Empty(t, a.result(t))
			}},
		{name: "PUT over MaxPackageBytes", do: func() answer {
			return put(t, s.URL, token, "huge", "application/wasm", append([]byte("\x00asm\x01\x00\x00\x00"), make([]byte, 100<<10)...), nil)
		}, status: 413, code: "PAYLOAD_TOO_LARGE", msg: []string{"package"}, notDeployed: "huge"},
		{name: "PUT over MaxPackageBytes, chunked", do: func() answer {
			body := io.MultiReader(bytes.NewReader(append([]byte("\x00asm\x01\x00\x00\x00"), make([]byte, 100<<10)...)))
			return send(t, http.MethodPut, s.URL+"/api/functions/huge2", with(auth, "Content-Type", "application/wasm"), body)
		}, status: 413, code: "PAYLOAD_TOO_LARGE", msg: []string{"package"}, notDeployed: "huge2"},
		{name: "missing token", do: func() answer {
			return send(t, http.MethodPost, invokeURL, map[string]string{"Content-Type": "application/json"}, bytes.NewReader(invokeBody(1, []byte{1})))
		}, status: 401, code: "UNAUTHORIZED", msg: []string{"token"},
			check: func(t *testing.T, a answer) { assert.Contains(t, a.Header.Get("WWW-Authenticate"), "Bearer") }},
		{name: "wrong token", do: func() answer { return invoke(t, s.URL, "not-the-token", "echo", 1, []byte{1}) },
			status: 401, code: "UNAUTHORIZED", msg: []string{"wrong"},
			check: func(t *testing.T, a answer) { assert.Contains(t, a.Header.Get("WWW-Authenticate"), "Bearer") }},
		{name: "wrong scheme", do: func() answer {
			return send(t, http.MethodGet, s.URL+"/api/functions", map[string]string{"Authorization": "Basic " + b64("u:"+token)}, nil)
		}, status: 401, code: "UNAUTHORIZED",
			check: func(t *testing.T, a answer) { assert.Contains(t, a.Header.Get("WWW-Authenticate"), "Bearer") }},
		{name: "missing token on deploy", do: func() answer { return put(t, s.URL, "", "sneaky", "application/wasm", echo, nil) },
			status: 401, code: "UNAUTHORIZED", notDeployed: "sneaky"},
		{name: "missing token on metrics", do: func() answer { return send(t, http.MethodGet, s.URL+"/metrics", nil, nil) },
			status: 401, code: "UNAUTHORIZED"},
		{name: "wrong method on function", do: func() answer { return send(t, http.MethodPatch, s.URL+"/api/functions/echo", auth, nil) },
			status: 405, code: "METHOD_NOT_ALLOWED", msg: []string{"PATCH"},
			check: func(t *testing.T, a answer) { assert.Equal(t, "PUT, GET, DELETE", a.Header.Get("Allow")) }},
		{name: "wrong method on invoke", do: func() answer { return send(t, http.MethodGet, invokeURL, auth, nil) },
			status: 405, code: "METHOD_NOT_ALLOWED",
			check: func(t *testing.T, a answer) { assert.Equal(t, "POST, HEAD", a.Header.Get("Allow")) }},
		{name: "wrong method on list", do: func() answer { return send(t, http.MethodDelete, s.URL+"/api/functions", auth, nil) },
			status: 405, code: "METHOD_NOT_ALLOWED",
			check: func(t *testing.T, a answer) { assert.Equal(t, "GET", a.Header.Get("Allow")) }},
		{name: "wrong method on warm", do: func() answer { return send(t, http.MethodGet, s.URL+"/api/functions/echo/warm", auth, nil) },
			status: 405, code: "METHOD_NOT_ALLOWED",
			check: func(t *testing.T, a answer) { assert.Equal(t, "POST", a.Header.Get("Allow")) }},
		{name: "wrong method on batch", do: func() answer { return send(t, http.MethodGet, s.URL+"/api/functions/echo/invoke-batch", auth, nil) },
			status: 405, code: "METHOD_NOT_ALLOWED",
			check: func(t *testing.T, a answer) { assert.Equal(t, "POST", a.Header.Get("Allow")) }},
		{name: "config not base64", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg1", cfgHeader("!!not base64!!"), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"X-Blueprint-Config", "base64"}, notDeployed: "cfg1"},
		{name: "config raw JSON, not base64", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg2", cfgHeader(`{"memory_mb":64}`), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"base64"}, notDeployed: "cfg2"},
		{name: "config unknown field", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg3", cfgHeader(b64(`{"memory_mb":64,"gpu":true}`)), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"unknown field", "gpu"}, notDeployed: "cfg3"},
		{name: "config not JSON", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg4", cfgHeader(b64(`memory_mb=64`)), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"X-Blueprint-Config"}, notDeployed: "cfg4"},
		{name: "config memory_mb 10240", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg5", cfgHeader(b64(`{"memory_mb":10240}`)), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"memory_mb", "10240"}, notDeployed: "cfg5",
			check: func(t *testing.T, a answer) { assertProblems(t, a, "memory_mb") }},
		{name: "config timeout_secs 901", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg6", cfgHeader(b64(`{"timeout_secs":901}`)), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"timeout_secs", "901"}, notDeployed: "cfg6",
			check: func(t *testing.T, a answer) { assertProblems(t, a, "timeout_secs") }},
		{name: "config env_vars", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg7", cfgHeader(b64(`{"env_vars":{"SECRET":"x"}}`)), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"env_vars"}, notDeployed: "cfg7",
			check: func(t *testing.T, a answer) { assertProblems(t, a, "env_vars") }},
		{name: "config negative concurrency", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg8", cfgHeader(b64(`{"max_concurrency":-1}`)), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"max_concurrency"}, notDeployed: "cfg8"},
		{name: "config several problems", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg9",
				cfgHeader(b64(`{"memory_mb":10240,"timeout_secs":901,"env_vars":{"A":"b"}}`)), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"memory_mb", "timeout_secs", "env_vars"}, notDeployed: "cfg9",
			check: func(t *testing.T, a answer) { assertProblems(t, a, "memory_mb", "timeout_secs", "env_vars") }},
		{name: "config empty env_vars is fine but trailing data is not", do: func() answer {
			return send(t, http.MethodPut, s.URL+"/api/functions/cfg10", cfgHeader(b64(`{"env_vars":{}} {}`)), bytes.NewReader(echo))
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"trailing"}, notDeployed: "cfg10"},
		{name: "function id with a space", do: func() answer { return put(t, s.URL, token, "a%20b", "application/wasm", echo, nil) },
			status: 400, code: "INVALID_REQUEST", msg: []string{"invalid function id"}},
		{name: "function id of 200 chars", do: func() answer {
			return put(t, s.URL, token, strings.Repeat("x", 200), "application/wasm", echo, nil)
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"invalid function id"}},
		{name: "function id starting with a dot", do: func() answer { return put(t, s.URL, token, ".hidden", "application/wasm", echo, nil) },
			status: 400, code: "INVALID_REQUEST", msg: []string{"invalid function id"}},
		{name: "invoke with an invalid function id", do: func() answer { return invoke(t, s.URL, token, "a%20b", 1, []byte{1}) },
			status: 400, code: "INVALID_REQUEST", msg: []string{"invalid function id"}},
		{name: "warm with a bad instance count", do: func() answer {
			return send(t, http.MethodPost, s.URL+"/api/functions/echo/warm?instances=-3", auth, nil)
		}, status: 400, code: "INVALID_REQUEST", msg: []string{"instances"}},
		{name: "unknown endpoint", do: func() answer { return send(t, http.MethodGet, s.URL+"/api/nothing/here/at/all", auth, nil) },
			status: 404, code: "NOT_FOUND"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.do()
			assertError(t, a, tc.status, tc.code, tc.msg...)
			if tc.check != nil {
				tc.check(t, a)
			}
			if tc.notDeployed != "" {
				g := send(t, http.MethodGet, s.URL+"/api/functions/"+tc.notDeployed, auth, nil)
				assert.Equal(t, http.StatusNotFound, g.Status, "a refused PUT left %s deployed: %s", tc.notDeployed, g)
			}
			mustServe(t, s.URL, token, "echo")
		})
	}

	t.Run("healthz needs no token", func(t *testing.T) {
		a := send(t, http.MethodGet, s.URL+"/healthz", nil, nil)
		require.Equal(t, http.StatusOK, a.Status, "%s", a)
		assert.Equal(t, "ok", a.str("status"))
		assert.EqualValues(t, 2, a.num(t, "functions"))
	})
}

// assertProblems checks details.problems lists one problem per field.
func assertProblems(t *testing.T, a answer, fields ...string) {
	t.Helper()
	ps, _ := a.details()["problems"].([]any)
	require.Len(t, ps, len(fields), "details.problems in %s", a)
	for i, f := range fields {
		assert.Contains(t, ps[i], f)
	}
}

// ---- the spec's happy path ----

func TestServer_HappyPath(t *testing.T) {
	const token = "tok"
	s := newTestServer(t, httphost.ServerConfig{Token: token})
	auth := bearer(token)
	echo := wat(t, "echo")

	// 1. PUT, a bare module.
	a := put(t, s.URL, token, "echo", "application/wasm", echo, nil)
	require.Equal(t, http.StatusOK, a.Status, "%s", a)
	assert.Equal(t, "echo", a.str("function_id"))
	assert.Equal(t, s.URL+"/api/functions/echo/invoke", a.str("endpoint"))
	assert.Equal(t, "deployed", a.str("status"))
	assert.GreaterOrEqual(t, a.num(t, "cold_start_ms"), 0.0)
	assert.EqualValues(t, 128, a.num(t, "memory_mb"), "the runtime's default memory")
	assert.EqualValues(t, 300, a.num(t, "timeout_secs"), "the protocol's default timeout")
	assert.Equal(t, modstore.Digest(echo), a.str("digest"))

	// PUT, a zip built by hostpkg, its manifest's limits applied.
	pkg, err := hostpkg.Build(echo, hostpkg.Manifest{Job: "echo", Limits: hostpkg.Limits{MemoryMB: 32, TimeoutMs: 4500}}, nil)
	require.NoError(t, err)
	z := put(t, s.URL, token, "echo-zip", "application/zip", pkg, nil)
	require.Equal(t, http.StatusOK, z.Status, "%s", z)
	assert.Equal(t, "echo-zip", z.str("function_id"))
	assert.Equal(t, "deployed", z.str("status"))
	assert.EqualValues(t, 32, z.num(t, "memory_mb"))
	assert.EqualValues(t, 5, z.num(t, "timeout_secs"), "4500 ms rounds up to 5 s")
	assert.EqualValues(t, 4500, z.num(t, "timeout_ms"))
	assert.Equal(t, modstore.Digest(echo), z.str("digest"), "the digest is the module's, not the zip's")
	// The header wins over the manifest.
	z2 := put(t, s.URL, token, "echo-zip2", "application/zip", pkg, httphost.Config{MemoryMB: 64, TimeoutSecs: 7})
	require.Equal(t, http.StatusOK, z2.Status, "%s", z2)
	assert.EqualValues(t, 64, z2.num(t, "memory_mb"))
	assert.EqualValues(t, 7, z2.num(t, "timeout_secs"))

	// PUT again: 409, with no update.
	c := put(t, s.URL, token, "echo", "application/wasm", wat(t, "trap"), nil)
	assertError(t, c, http.StatusConflict, "CONFLICT")
	assert.Equal(t, "Function already exists", c.str("error"))
	assert.Equal(t, "echo", c.str("function_id"))

	// 3. health before any invocation.
	h := send(t, http.MethodGet, s.URL+"/api/functions/echo/health", auth, nil)
	require.Equal(t, http.StatusOK, h.Status, "%s", h)
	assert.Equal(t, "healthy", h.str("status"))
	assert.EqualValues(t, 0, h.num(t, "total_invocations"))

	// 2. invoke (the 409 did not replace echo with trap).
	before := time.Now()
	in := []byte{0, 1, 2, 127, 128, 254, 255}
	a = invoke(t, s.URL, token, "echo", 42, in)
	require.Equal(t, http.StatusOK, a.Status, "%s", a)
	assert.Contains(t, a.Header.Get("Content-Type"), "application/json")
	assert.EqualValues(t, 42, a.num(t, "job_id"))
	assert.Equal(t, in, a.result(t))
	assert.Equal(t, true, a.JSON["success"])
	assert.GreaterOrEqual(t, a.num(t, "execution_ms"), 0.0)
	assert.Greater(t, a.num(t, "memory_used_mb"), 0.0)
	assert.NotContains(t, a.JSON, "error")
	assert.NotContains(t, a.JSON, "code")
	// An empty input gives an empty array, not null.
	e := invoke(t, s.URL, token, "echo", 0, nil)
	require.Equal(t, http.StatusOK, e.Status, "%s", e)
	assert.Equal(t, []byte{}, e.result(t))
	assert.Contains(t, string(e.Body), `"result":[]`)

	// A failed job: 500, empty result, success false.
	mustPut(t, s.URL, token, "trap", "trap", nil)
	f := invoke(t, s.URL, token, "trap", 5, []byte{1})
	assert.Equal(t, http.StatusInternalServerError, f.Status, "%s", f)
	assert.EqualValues(t, 5, f.num(t, "job_id"))
	assert.Equal(t, []byte{}, f.result(t))
	assert.Equal(t, false, f.JSON["success"])
	assert.NotEmpty(t, f.str("error"))
	assert.Equal(t, "EXECUTION_ERROR", f.str("code"))
	assert.Equal(t, "trap", f.details()["kind"])
	assert.Equal(t, "trap", f.details()["function_id"])

	for _, tc := range []struct{ example, kind string }{{"exit3", "exit"}, {"guesterror", "guest_error"}, {"abiv99", ""}} {
		if tc.kind == "" {
			// abiv99 is refused at deploy: a module problem is a 400.
			p := put(t, s.URL, token, tc.example, "application/wasm", wat(t, tc.example), nil)
			assertError(t, p, http.StatusBadRequest, "INVALID_PACKAGE")
			continue
		}
		mustPut(t, s.URL, token, tc.example, tc.example, nil)
		r := invoke(t, s.URL, token, tc.example, 1, []byte("x"))
		assert.Equal(t, http.StatusInternalServerError, r.Status, "%s: %s", tc.example, r)
		assert.Equal(t, false, r.JSON["success"], tc.example)
		assert.Equal(t, "EXECUTION_ERROR", r.str("code"), tc.example)
		assert.Equal(t, tc.kind, r.details()["kind"], tc.example)
	}

	// 3. health after it.
	h = send(t, http.MethodGet, s.URL+"/api/functions/echo/health", auth, nil)
	require.Equal(t, http.StatusOK, h.Status, "%s", h)
	assert.Equal(t, "echo", h.str("function_id"))
	assert.Equal(t, "healthy", h.str("status"))
	assert.EqualValues(t, 2, h.num(t, "total_invocations"))
	last, err := time.Parse(time.RFC3339, h.str("last_invocation"))
	require.NoError(t, err, "last_invocation %q is not RFC 3339", h.str("last_invocation"))
	assert.WithinDuration(t, before, last, 10*time.Second)
	h404 := send(t, http.MethodGet, s.URL+"/api/functions/nope/health", auth, nil)
	assertError(t, h404, http.StatusNotFound, "NOT_FOUND")
	assert.Equal(t, "nope", h404.str("function_id"))

	// 4. GET the function.
	g := send(t, http.MethodGet, s.URL+"/api/functions/echo", auth, nil)
	require.Equal(t, http.StatusOK, g.Status, "%s", g)
	for _, k := range []string{"function_id", "endpoint", "status", "cold_start_ms", "memory_mb", "timeout_secs", "deployed_at", "binary_size_bytes"} {
		assert.Contains(t, g.JSON, k)
	}
	assert.Equal(t, "echo", g.str("function_id"))
	assert.Equal(t, s.URL+"/api/functions/echo/invoke", g.str("endpoint"))
	assert.EqualValues(t, len(echo), g.num(t, "binary_size_bytes"))
	deployedAt, err := time.Parse(time.RFC3339, g.str("deployed_at"))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), deployedAt, time.Minute)
	gz := send(t, http.MethodGet, s.URL+"/api/functions/echo-zip", auth, nil)
	require.Equal(t, http.StatusOK, gz.Status)
	assert.EqualValues(t, len(pkg), gz.num(t, "binary_size_bytes"), "binary_size_bytes is what was uploaded")

	// The list.
	l := send(t, http.MethodGet, s.URL+"/api/functions", auth, nil)
	require.Equal(t, http.StatusOK, l.Status)
	assert.Equal(t, []string{"echo", "echo-zip", "echo-zip2", "exit3", "guesterror", "trap"}, listedIDs(t, l))

	// 6. warm.
	w := send(t, http.MethodPost, s.URL+"/api/functions/echo/warm", auth, nil)
	require.Equal(t, http.StatusOK, w.Status, "%s", w)
	assert.Equal(t, "echo", w.str("function_id"))
	assert.Equal(t, "warm", w.str("status"))
	assert.EqualValues(t, 2, w.num(t, "instances_warmed"), "the pool holds PoolSize=2")
	w1 := send(t, http.MethodPost, s.URL+"/api/functions/echo/warm?instances=1", auth, nil)
	require.Equal(t, http.StatusOK, w1.Status, "%s", w1)
	assert.GreaterOrEqual(t, w1.num(t, "instances_warmed"), 1.0)
	w404 := send(t, http.MethodPost, s.URL+"/api/functions/nope/warm", auth, nil)
	assertError(t, w404, http.StatusNotFound, "NOT_FOUND")

	// 5. DELETE.
	d := send(t, http.MethodDelete, s.URL+"/api/functions/echo", auth, nil)
	require.Equal(t, http.StatusOK, d.Status, "%s", d)
	assert.Equal(t, map[string]any{"function_id": "echo", "status": "deleted"}, d.JSON)
	g = send(t, http.MethodGet, s.URL+"/api/functions/echo", auth, nil)
	assertError(t, g, http.StatusNotFound, "NOT_FOUND")
	assert.Equal(t, "echo", g.str("function_id"))
	d = send(t, http.MethodDelete, s.URL+"/api/functions/echo", auth, nil)
	assertError(t, d, http.StatusNotFound, "NOT_FOUND")
	a = invoke(t, s.URL, token, "echo", 1, []byte{1})
	assertError(t, a, http.StatusNotFound, "NOT_FOUND")
	// The other deployments of the same module are untouched.
	mustServe(t, s.URL, token, "echo-zip")
	// And the id is free again: delete, then put is the protocol's update.
	a = put(t, s.URL, token, "echo", "application/wasm", wat(t, "cat"), nil)
	require.Equal(t, http.StatusOK, a.Status, "%s", a)
	assert.Equal(t, modstore.Digest(wat(t, "cat")), a.str("digest"))
}

func listedIDs(t *testing.T, a answer) []string {
	t.Helper()
	fs, ok := a.JSON["functions"].([]any)
	require.True(t, ok, "no functions array in %s", a)
	var ids []string
	for _, f := range fs {
		m, ok := f.(map[string]any)
		require.True(t, ok)
		id, _ := m["function_id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// ---- X-Blueprint-Config enforcement ----

func TestServer_ConfigEnforced(t *testing.T) {
	s := newTestServer(t, httphost.ServerConfig{})

	t.Run("memory_mb", func(t *testing.T) {
		p := mustPut(t, s.URL, "", "membomb", "membomb", httphost.Config{MemoryMB: 16})
		assert.EqualValues(t, 16, p.num(t, "memory_mb"))
		a := invoke(t, s.URL, "", "membomb", 3, []byte{1})
		assert.Equal(t, http.StatusInternalServerError, a.Status, "%s", a)
		assert.Equal(t, "EXECUTION_ERROR", a.str("code"))
		assert.Equal(t, false, a.JSON["success"])
		assert.Equal(t, "memory_limit", a.details()["kind"], "%s", a)
		assert.EqualValues(t, 16<<20, a.details()["limit"], "%s", a)
	})

	t.Run("timeout_ms", func(t *testing.T) {
		p := mustPut(t, s.URL, "", "loop", "loop", httphost.Config{TimeoutMs: 200})
		assert.EqualValues(t, 1, p.num(t, "timeout_secs"))
		assert.EqualValues(t, 200, p.num(t, "timeout_ms"))
		start := time.Now()
		a := invoke(t, s.URL, "", "loop", 4, nil)
		took := time.Since(start)
		assert.Equal(t, http.StatusInternalServerError, a.Status, "%s", a)
		assert.Equal(t, "EXECUTION_ERROR", a.str("code"))
		assert.Equal(t, "timeout", a.details()["kind"], "%s", a)
		assert.GreaterOrEqual(t, took, 190*time.Millisecond)
		assert.Less(t, took, 2*time.Second, "the timeout was not enforced")
	})

	t.Run("timeout_secs", func(t *testing.T) {
		p := mustPut(t, s.URL, "", "loop1s", "loop", httphost.Config{TimeoutSecs: 1})
		assert.EqualValues(t, 1000, p.num(t, "timeout_ms"))
		start := time.Now()
		a := invoke(t, s.URL, "", "loop1s", 4, nil)
		assert.Equal(t, "timeout", a.details()["kind"], "%s", a)
		assert.Less(t, time.Since(start), 3*time.Second)
	})

	t.Run("memory_used_mb measured", func(t *testing.T) {
		mustPut(t, s.URL, "", "echo", "echo", nil)
		small := invoke(t, s.URL, "", "echo", 1, []byte{1})
		require.Equal(t, http.StatusOK, small.Status, "%s", small)
		assert.Greater(t, small.num(t, "memory_used_mb"), 0.0)
		smallBytes := small.num(t, "memory_used_bytes")
		assert.Greater(t, smallBytes, 0.0)
		// 300 KB of input needs several more 64 KiB pages.
		big := invoke(t, s.URL, "", "echo", 1, bytes.Repeat([]byte{9}, 300<<10))
		require.Equal(t, http.StatusOK, big.Status)
		// echo's output is its input buffer: the peak holds the input.
		assert.Greater(t, big.num(t, "memory_used_bytes"), float64(300<<10))
		assert.Greater(t, big.num(t, "memory_used_bytes"), smallBytes)
		assert.Equal(t, math.Ceil(big.num(t, "memory_used_bytes")/(1<<20)), big.num(t, "memory_used_mb"), "rounded up")
	})

	t.Run("max_output_bytes", func(t *testing.T) {
		mustPut(t, s.URL, "", "cat-small-out", "echo", httphost.Config{MaxOutputBytes: 8})
		a := invoke(t, s.URL, "", "cat-small-out", 1, bytes.Repeat([]byte{1}, 9))
		assert.Equal(t, http.StatusInternalServerError, a.Status, "%s", a)
		assert.Equal(t, "output_too_large", a.details()["kind"], "%s", a)
		ok := invoke(t, s.URL, "", "cat-small-out", 1, bytes.Repeat([]byte{1}, 8))
		assert.Equal(t, http.StatusOK, ok.Status, "%s", ok)
	})
}

// ---- the Tangle client ----

// TestTangleInterop sends exactly what the Tangle Rust client sends: POST
// {base}/job/{job_id}, Content-Type application/json, {"job_id":N,"args":[…]}
// with serde's Vec<u8> as a number array, no authentication; HEAD on the
// same URL as its health check. It treats any 2xx as success.
func TestTangleInterop(t *testing.T) {
	s := newTestServer(t, httphost.ServerConfig{})
	mustPut(t, s.URL, "", "7", "echo", nil)
	mustPut(t, s.URL, "", "squarer", "echo", httphost.Config{JobID: new(uint32(3))})
	mustPut(t, s.URL, "", "8", "trap", nil)
	mustPut(t, s.URL, "", "9", "membomb", httphost.Config{MemoryMB: 16})

	tangle := func(path string, body string) answer {
		req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := rawClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		a := answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
		require.NoError(t, json.Unmarshal(b, &a.JSON), "%s", b)
		return a
	}
	head := func(path string) int {
		req, err := http.NewRequest(http.MethodHead, s.URL+path, nil)
		require.NoError(t, err)
		resp, err := rawClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}

	// serde_json's output for JobRequest { job_id: 7, args: vec![…] }.
	a := tangle("/job/7", `{"job_id":7,"args":[0,1,2,3,255]}`)
	require.True(t, a.Status >= 200 && a.Status < 300, "%s", a)
	assert.Equal(t, []byte{0, 1, 2, 3, 255}, a.result(t))
	assert.EqualValues(t, 7, a.num(t, "job_id"))

	a = tangle("/job/3", `{"job_id":3,"args":[104,105]}`)
	require.True(t, a.Status >= 200 && a.Status < 300, "%s", a)
	assert.Equal(t, []byte("hi"), a.result(t))
	assert.EqualValues(t, 3, a.num(t, "job_id"))

	// Pretty-printed JSON is JSON too.
	a = tangle("/job/7", "{\n  \"job_id\": 7,\n  \"args\": [\n    1,\n    2\n  ]\n}")
	require.Equal(t, http.StatusOK, a.Status, "%s", a)
	assert.Equal(t, []byte{1, 2}, a.result(t))

	// The function deployed with job_id 3 is still reachable by its own id.
	mustServe(t, s.URL, "", "squarer")

	// Health checks.
	assert.Equal(t, http.StatusOK, head("/job/7"))
	assert.Equal(t, http.StatusOK, head("/job/3"))
	assert.Equal(t, http.StatusNotFound, head("/job/99"))

	// Mismatched job ids, unknown jobs, bad job ids.
	a = tangle("/job/7", `{"job_id":8,"args":[1]}`)
	assertError(t, a, http.StatusBadRequest, "INVALID_REQUEST", "does not match")
	a = tangle("/job/99", `{"job_id":99,"args":[1]}`)
	assertError(t, a, http.StatusNotFound, "NOT_FOUND")
	a = tangle("/job/abc", `{"job_id":0,"args":[1]}`)
	assertError(t, a, http.StatusBadRequest, "INVALID_REQUEST")
	a = tangle("/job/4294967296", `{"job_id":0,"args":[1]}`)
	assertError(t, a, http.StatusBadRequest, "INVALID_REQUEST")

	// A failed job never answers 2xx (the Tangle client ignores success).
	for _, path := range []string{"/job/8", "/job/9"} {
		jid := strings.TrimPrefix(path, "/job/")
		a = tangle(path, `{"job_id":`+jid+`,"args":[1,2,3]}`)
		assert.True(t, a.Status >= 500, "%s: a failed job answered %s", path, a)
		assert.Equal(t, false, a.JSON["success"])
		assert.Equal(t, []byte{}, a.result(t))
	}
	// Nor does a bad request.
	a = tangle("/job/7", `{"job_id":7,"args":"AQID"}`)
	assert.Equal(t, http.StatusBadRequest, a.Status)

	// Another function cannot take a job id that is served.
	c := put(t, s.URL, "", "other", "application/wasm", wat(t, "echo"), httphost.Config{JobID: new(uint32(3))})
	assertError(t, c, http.StatusConflict, "CONFLICT", "job_id 3")
}

// ---- persistence ----

func TestServer_Persistence(t *testing.T) {
	dir := t.TempDir()
	s1 := startServer(t, httphost.ServerConfig{DataDir: dir})
	mustPut(t, s1.URL, "", "echo", "echo", httphost.Config{MemoryMB: 32, JobID: new(uint32(11))})
	pkg, err := hostpkg.Build(wat(t, "cat"), hostpkg.Manifest{Job: "cat", Limits: hostpkg.Limits{TimeoutMs: 1500}}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, put(t, s1.URL, "", "cat", "application/zip", pkg, nil).Status)
	mustPut(t, s1.URL, "", "gone", "echo", nil)
	mustPut(t, s1.URL, "", "trap", "trap", nil)
	require.Equal(t, http.StatusOK, send(t, http.MethodDelete, s1.URL+"/api/functions/gone", nil, nil).Status)
	before := send(t, http.MethodGet, s1.URL+"/api/functions/echo", nil, nil)
	require.Equal(t, http.StatusOK, before.Status)
	s1.stop()

	// A corrupt record, one naming another function, and one whose module
	// is missing: each is skipped, the rest load.
	fdir := filepath.Join(dir, "functions")
	require.NoError(t, os.WriteFile(filepath.Join(fdir, "corrupt.json"), []byte("{not json"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(fdir, "liar.json"), []byte(`{"function_id":"echo","digest":"`+modstore.Digest(wat(t, "echo"))+`"}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(fdir, "orphan.json"),
		[]byte(`{"function_id":"orphan","digest":"sha256:`+strings.Repeat("ab", 32)+`"}`), 0o600))
	// The trap's record is truncated mid-way.
	tb, err := os.ReadFile(filepath.Join(fdir, "trap.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(fdir, "trap.json"), tb[:len(tb)/2], 0o600))

	s2 := startServer(t, httphost.ServerConfig{DataDir: dir})
	l := send(t, http.MethodGet, s2.URL+"/api/functions", nil, nil)
	require.Equal(t, http.StatusOK, l.Status, "%s", l)
	assert.Equal(t, []string{"cat", "echo"}, listedIDs(t, l))

	mustServe(t, s2.URL, "", "echo")
	a := invoke(t, s2.URL, "", "cat", 1, []byte("meow"))
	require.Equal(t, http.StatusOK, a.Status, "%s", a)
	assert.Equal(t, []byte("meow"), a.result(t))
	assertError(t, invoke(t, s2.URL, "", "gone", 1, []byte{1}), http.StatusNotFound, "NOT_FOUND")
	assertError(t, invoke(t, s2.URL, "", "trap", 1, []byte{1}), http.StatusNotFound, "NOT_FOUND")

	// What was configured survives, and so does the Tangle route.
	after := send(t, http.MethodGet, s2.URL+"/api/functions/echo", nil, nil)
	require.Equal(t, http.StatusOK, after.Status)
	for _, k := range []string{"memory_mb", "timeout_secs", "digest", "deployed_at", "binary_size_bytes", "cold_start_ms", "job_id"} {
		assert.Equal(t, before.JSON[k], after.JSON[k], k)
	}
	c := send(t, http.MethodGet, s2.URL+"/api/functions/cat", nil, nil)
	assert.EqualValues(t, 1500, c.num(t, "timeout_ms"), "the manifest's limits survive")
	j := send(t, http.MethodPost, s2.URL+"/job/11", map[string]string{"Content-Type": "application/json"}, strings.NewReader(`{"job_id":11,"args":[5]}`))
	require.Equal(t, http.StatusOK, j.Status, "%s", j)
	assert.Equal(t, []byte{5}, j.result(t))

	// A deletion on the second server sticks too.
	require.Equal(t, http.StatusOK, send(t, http.MethodDelete, s2.URL+"/api/functions/cat", nil, nil).Status)
	s2.stop()
	s3 := startServer(t, httphost.ServerConfig{DataDir: dir})
	assert.Equal(t, []string{"echo"}, listedIDs(t, send(t, http.MethodGet, s3.URL+"/api/functions", nil, nil)))
	mustServe(t, s3.URL, "", "echo")
}

// ---- batches ----

func TestServer_Batch(t *testing.T) {
	s := newTestServer(t, httphost.ServerConfig{})
	mustPut(t, s.URL, "", "echo", "echo", httphost.Config{MaxInputBytes: 8})
	mustPut(t, s.URL, "", "trap", "trap", nil)
	batchURL := func(id string) string { return s.URL + "/api/functions/" + id + "/invoke-batch" }
	post := func(id, body string) answer {
		return send(t, http.MethodPost, batchURL(id), map[string]string{"Content-Type": "application/json"}, strings.NewReader(body))
	}
	batchOf := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = string(invokeBody(uint32(i), []byte{byte(i)}))
		}
		return `{"requests":[` + strings.Join(parts, ",") + `]}`
	}

	a := post("echo", `{"requests":[`+string(invokeBody(1, []byte{1}))+`,`+
		string(invokeBody(2, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}))+`,`+
		string(invokeBody(3, nil))+`,`+
		`{"job_id":4,"args":[4,4],"invocation_id":"inv-4"}]}`)
	require.Equal(t, http.StatusOK, a.Status, "%s", a)
	assert.Equal(t, "echo", a.str("function_id"))
	results, ok := a.JSON["results"].([]any)
	require.True(t, ok, "%s", a)
	require.Len(t, results, 4)
	want := []struct {
		status int
		out    []byte
	}{{200, []byte{1}}, {413, []byte{}}, {200, []byte{}}, {200, []byte{4, 4}}}
	for i, w := range want {
		r := answer{JSON: results[i].(map[string]any)}
		assert.EqualValues(t, i+1, r.num(t, "job_id"), "result %d is out of order", i)
		assert.EqualValues(t, w.status, r.num(t, "status"), "result %d", i)
		assert.Equal(t, w.out, r.result(t), "result %d", i)
		assert.Equal(t, w.status == 200, r.JSON["success"], "result %d", i)
	}
	assert.Equal(t, "inv-4", results[3].(map[string]any)["invocation_id"])

	// Many good ones, still in order.
	a = post("echo", batchOf(256))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body[:min(200, len(a.Body))])
	results = a.JSON["results"].([]any)
	require.Len(t, results, 256)
	for i, r := range results {
		ra := answer{JSON: r.(map[string]any)}
		require.EqualValues(t, i, ra.num(t, "job_id"))
		require.Equal(t, []byte{byte(i)}, ra.result(t))
		require.EqualValues(t, 200, ra.num(t, "status"))
	}

	// Failed jobs are 500s inside a 200 batch.
	a = post("trap", batchOf(3))
	require.Equal(t, http.StatusOK, a.Status, "%s", a)
	for i, r := range a.JSON["results"].([]any) {
		ra := answer{JSON: r.(map[string]any)}
		assert.EqualValues(t, 500, ra.num(t, "status"), "result %d", i)
		assert.Equal(t, "EXECUTION_ERROR", ra.str("code"))
		assert.Equal(t, false, ra.JSON["success"])
	}

	for _, tc := range []struct {
		name, body string
		msg        []string
	}{
		{"too many", batchOf(257), []string{"257"}},
		{"empty", `{"requests":[]}`, []string{"0"}},
		{"no requests", `{}`, []string{"0"}},
		{"malformed", `{"requests":[`, []string{"malformed JSON"}},
		{"bad args", `{"requests":[{"job_id":1,"args":[1]},{"job_id":2,"args":[300]}]}`, []string{"300"}},
		{"missing args", `{"requests":[{"job_id":1,"args":[1]},{"job_id":2}]}`, []string{"request 1", "args"}},
		{"bad invocation id", `{"requests":[{"job_id":1,"args":[1],"invocation_id":"a b"}]}`, []string{"invocation id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertError(t, post("echo", tc.body), http.StatusBadRequest, "INVALID_REQUEST", tc.msg...)
		})
	}
	assertError(t, post("nope", batchOf(1)), http.StatusNotFound, "NOT_FOUND")
}

// ---- concurrency ----

func spinInput(iterations uint32) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, iterations)
	return b
}

func TestServer_MaxConcurrency(t *testing.T) {
	s := newTestServer(t, httphost.ServerConfig{})
	mustPut(t, s.URL, "", "spin", "spin", httphost.Config{MaxConcurrency: 1})
	p := send(t, http.MethodGet, s.URL+"/api/functions/spin", nil, nil)
	assert.EqualValues(t, 1, p.num(t, "max_concurrency"))
	in := spinInput(150_000_000) // ~0.2 s each

	type out struct {
		a    answer
		wall time.Duration
	}
	var wg sync.WaitGroup
	outs := make([]out, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			outs[i].a = invoke(t, s.URL, "", "spin", uint32(i), in)
			outs[i].wall = time.Since(start)
		}()
	}
	wg.Wait()
	var exec float64
	var wall time.Duration
	for i, o := range outs {
		require.Equal(t, http.StatusOK, o.a.Status, "call %d: %s", i, o.a)
		assert.Equal(t, in, o.a.result(t))
		exec += o.a.num(t, "execution_us")
		wall = max(wall, o.wall)
	}
	// With one slot the second call waits for the first: the slower call
	// took at least both calls' running time. Without the limit the two
	// would run side by side (two cores) and this would not hold.
	assert.GreaterOrEqual(t, wall.Seconds()*1e6, 0.9*exec, "the calls overlapped: max wall %v, total execution %v µs", wall, exec)
}

// ---- metrics ----

func TestServer_Metrics(t *testing.T) {
	s := newTestServer(t, httphost.ServerConfig{Token: "m"})
	mustPut(t, s.URL, "m", "echo", "echo", nil)
	mustPut(t, s.URL, "m", "trap", "trap", nil)
	mustServe(t, s.URL, "m", "echo")
	mustServe(t, s.URL, "m", "echo")
	invoke(t, s.URL, "m", "trap", 1, nil)
	send(t, http.MethodPost, s.URL+"/api/functions/echo/invoke", bearer("m"), strings.NewReader(`{"args":"x"}`))

	m := send(t, http.MethodGet, s.URL+"/metrics", bearer("m"), nil)
	require.Equal(t, http.StatusOK, m.Status)
	text := string(m.Body)
	assert.Contains(t, text, `ferry_host_invocations_total{function="echo",outcome="ok"} 2`)
	assert.Contains(t, text, `ferry_host_invocations_total{function="echo",outcome="rejected"} 1`)
	assert.Contains(t, text, `ferry_host_invocations_total{function="trap",outcome="trap"} 1`)
	assert.Contains(t, text, `ferry_host_functions 2`)
	assert.Contains(t, text, `ferry_host_deploys_total 2`)
	assert.Contains(t, text, `ferry_host_invocation_seconds_count{function="echo"}`)

	// A deleted function's series go away.
	require.Equal(t, http.StatusOK, send(t, http.MethodDelete, s.URL+"/api/functions/trap", bearer("m"), nil).Status)
	text = string(send(t, http.MethodGet, s.URL+"/metrics", bearer("m"), nil).Body)
	assert.NotContains(t, text, `function="trap"`)
	assert.Contains(t, text, `ferry_host_functions 1`)
}
