package cfapitest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/workers/cfapi/cfapitest"
)

const worker = `import job from "./job.wasm";
export class Counter {}
export default { async fetch(request, env) { return new Response("ok"); } };
`

var wasm = []byte("\x00asm\x01\x00\x00\x00")

type envelope struct {
	Success bool `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Messages []any          `json:"messages"`
	Result   map[string]any `json:"result"`
}

type answer struct {
	status int
	header http.Header
	env    envelope
	raw    string
}

// call sends one request with the server's token unless token is given.
func call(t *testing.T, srv *cfapitest.Server, method, path, contentType string, body []byte, token ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	tok := srv.Token
	if len(token) > 0 {
		tok = token[0]
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	var generic map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &generic), "%s", raw)
	for _, k := range []string{"success", "errors", "messages", "result"} {
		assert.Contains(t, generic, k, "the v4 envelope has %q", k)
	}
	_ = json.Unmarshal(raw, &a.env) // result is a list for GET scripts
	return a
}

func (a answer) code() int {
	if len(a.env.Errors) == 0 {
		return 0
	}
	return a.env.Errors[0].Code
}

func (a answer) message() string {
	if len(a.env.Errors) == 0 {
		return ""
	}
	return a.env.Errors[0].Message
}

func scriptPath(srv *cfapitest.Server, rest string) string {
	return "/accounts/" + srv.AccountID + "/workers" + rest
}

type part struct {
	name, filename, contentType string
	data                        []byte
}

func form(t *testing.T, parts ...part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name=%q`, p.name)
		if p.filename != "" {
			cd += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(h)
		require.NoError(t, err)
		_, err = pw.Write(p.data)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	return w.FormDataContentType(), buf.Bytes()
}

func meta(s string) part {
	return part{name: "metadata", contentType: "application/json", data: []byte(s)}
}

func module(name, ct string, data []byte) part {
	return part{name: name, filename: name, contentType: ct, data: data}
}

var (
	js   = module("worker.js", "application/javascript+module", []byte(worker))
	jobW = module("job.wasm", "application/wasm", wasm)
)

func upload(t *testing.T, srv *cfapitest.Server, name string, parts ...part) answer {
	t.Helper()
	ct, body := form(t, parts...)
	return call(t, srv, http.MethodPut, scriptPath(srv, "/scripts/"+name), ct, body)
}

func TestServer_Auth(t *testing.T) {
	srv := cfapitest.Start(t, cfapitest.Options{})
	cases := []struct {
		name   string
		path   string
		token  string
		status int
		code   int
	}{
		{"no token", scriptPath(srv, "/scripts"), "", 401, 10000},
		{"wrong token", scriptPath(srv, "/scripts"), "nope", 401, 10000},
		{"another account", "/accounts/" + strings.Repeat("b", 32) + "/workers/scripts", srv.Token, 403, 10000},
		{"unknown route", scriptPath(srv, "/scripts/x/versions"), srv.Token, 404, 7000},
		{"right token", scriptPath(srv, "/scripts"), srv.Token, 200, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, srv, http.MethodGet, tc.path, "", nil, tc.token)
			assert.Equal(t, tc.status, a.status)
			assert.Equal(t, tc.code, a.code())
			assert.Equal(t, tc.status == 200, a.env.Success)
		})
	}
	assert.Len(t, srv.Requests(), len(cases), "every request is recorded, refused ones too")
}

func TestServer_Upload(t *testing.T) {
	const good = `{"main_module":"worker.js","compatibility_date":"2025-09-01"}`
	cases := []struct {
		name    string
		opts    cfapitest.Options
		script  string
		parts   []part
		raw     *[2]string // content type and body, instead of parts
		status  int
		code    int
		message string
	}{
		{name: "as Wrangler sends it", parts: []part{meta(good), js, jobW}, status: 200},
		{name: "modules named by filename (cloudflare-go v6)", parts: []part{meta(good),
			{name: "files", filename: "worker.js", contentType: "application/javascript+module", data: []byte(worker)},
			{name: "files", filename: "job.wasm", contentType: "application/wasm", data: wasm}}, status: 200},
		{name: "modules named by part name", parts: []part{meta(good),
			{name: "worker.js", contentType: "application/javascript+module", data: []byte(worker)},
			{name: "job.wasm", contentType: "application/wasm", data: wasm}}, status: 200},
		{name: "metadata as a plain field", parts: []part{{name: "metadata", data: []byte(good)}, js, jobW}, status: 200},
		{name: "no metadata part (cloudflare-go v7)", parts: []part{
			{name: "metadata.main_module", data: []byte("worker.js")},
			{name: "files.0", filename: "worker.js", contentType: "application/javascript+module", data: []byte(worker)}},
			status: 400, code: 10021, message: "Could not read content for part 'metadata'."},
		{name: "metadata not JSON", parts: []part{meta("{"), js, jobW}, status: 400, code: 10021, message: "Could not read content for part 'metadata'."},
		{name: "main module not a part", parts: []part{meta(`{"main_module":"index.js","compatibility_date":"2025-09-01"}`), js, jobW},
			status: 400, code: 10021, message: `No such module "index.js".`},
		{name: "import of a missing module", parts: []part{meta(good), js},
			status: 400, code: 10021, message: `No such module "job.wasm".`},
		{name: "unknown content type", parts: []part{meta(good), js, module("job.wasm", "application/x-wasm", wasm)},
			status: 400, code: 10021, message: "module job.wasm has unsupported Content-Type application/x-wasm"},
		{name: "service-worker format", parts: []part{meta(`{"body_part":"worker.js"}`), js, jobW}, status: 400, code: 10021},
		{name: "not multipart", raw: &[2]string{"application/javascript", worker}, status: 400, code: 10026},
		{name: "invalid Worker name", script: "-bad", parts: []part{meta(good), js, jobW}, status: 400, code: 10016},
		{name: "bad compatibility date", parts: []part{meta(`{"main_module":"worker.js","compatibility_date":"soon"}`), js, jobW}, status: 400, code: 10021},
		{name: "binding without a name", parts: []part{meta(`{"main_module":"worker.js","bindings":[{"type":"plain_text","text":"x"}]}`), js, jobW},
			status: 400, code: 10052},
		{name: "binding without its value", parts: []part{meta(`{"main_module":"worker.js","bindings":[{"type":"plain_text","name":"A"}]}`), js, jobW},
			status: 400, code: 10021, message: `needs "text"`},
		{name: "Durable Object class without a migration", parts: []part{meta(`{"main_module":"worker.js","bindings":[{"type":"durable_object_namespace","name":"C","class_name":"Counter"}]}`), js, jobW},
			status: 400, code: 10061, message: "not currently configured to implement Durable Objects"},
		{name: "Durable Object class of a missing Worker", parts: []part{meta(`{"main_module":"worker.js","bindings":[{"type":"durable_object_namespace","name":"C","class_name":"State","script_name":"state"}]}`), js, jobW},
			status: 400, code: 10061},
		{name: "no event handler", parts: []part{meta(good), module("worker.js", "application/javascript+module", []byte("export const x = 1;"))},
			status: 400, code: 10068},
		{name: "over the size limit", opts: cfapitest.Options{MaxScriptBytes: 100}, parts: []part{meta(good), js, jobW},
			status: 400, code: 10027},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := cfapitest.Start(t, tc.opts)
			name := tc.script
			if name == "" {
				name = "job-1"
			}
			var a answer
			if tc.raw != nil {
				a = call(t, srv, http.MethodPut, scriptPath(srv, "/scripts/"+name), tc.raw[0], []byte(tc.raw[1]))
			} else {
				a = upload(t, srv, name, tc.parts...)
			}
			assert.Equal(t, tc.status, a.status, a.raw)
			assert.Equal(t, tc.code, a.code(), a.raw)
			if tc.message != "" {
				assert.Contains(t, a.message(), tc.message)
			}
			_, stored := srv.Script(name)
			assert.Equal(t, tc.status == 200, stored, "only a successful upload is stored")
			if tc.status == 200 {
				for _, k := range []string{"id", "etag", "startup_time_ms", "handlers", "compatibility_date", "has_modules", "created_on", "modified_on"} {
					assert.Contains(t, a.env.Result, k)
				}
				assert.NotContains(t, a.env.Result, "migration_tag", "no migration, no tag")
			}
		})
	}
}

func TestServer_Migrations(t *testing.T) {
	srv := cfapitest.Start(t, cfapitest.Options{})
	withDO := func(migrations string) part {
		return meta(`{"main_module":"worker.js","compatibility_date":"2025-09-01",
			"bindings":[{"type":"durable_object_namespace","name":"COUNTER","class_name":"Counter"}]` + migrations + `}`)
	}
	steps := []struct {
		name        string
		meta        part
		code        int
		message     string
		wantTag     string
		wantClasses []string
	}{
		{"first upload creates the class", withDO(`,"migrations":{"new_tag":"v1","new_sqlite_classes":["Counter"]}`), 0, "", "v1", []string{"Counter"}},
		{"the same migration again", withDO(`,"migrations":{"new_tag":"v1","new_sqlite_classes":["Counter"]}`), 10079, "Migration tag precondition failed; current tag is v1", "v1", []string{"Counter"}},
		{"no migration keeps the class", withDO(``), 0, "", "v1", []string{"Counter"}},
		{"a wrong old tag", withDO(`,"migrations":{"old_tag":"v0","new_tag":"v2","new_sqlite_classes":["Other"]}`), 10079, "current tag is v1", "v1", []string{"Counter"}},
		{"recreating a class", withDO(`,"migrations":{"old_tag":"v1","new_tag":"v2","new_sqlite_classes":["Counter"]}`), 10074, "", "v1", []string{"Counter"}},
		{"the next migration", withDO(`,"migrations":{"old_tag":"v1","new_tag":"v2","steps":[{"new_sqlite_classes":["Other"]}]}`), 0, "", "v2", []string{"Counter", "Other"}},
	}
	for _, st := range steps {
		a := upload(t, srv, "job-1", st.meta, js, jobW)
		assert.Equal(t, st.code, a.code(), "%s: %s", st.name, a.raw)
		if st.message != "" {
			assert.Contains(t, a.message(), st.message, st.name)
		}
		u, ok := srv.Script("job-1")
		require.True(t, ok, st.name)
		assert.Equal(t, st.wantTag, u.MigrationTag, st.name)
		assert.Equal(t, st.wantClasses, u.DurableObjectClasses, st.name)
	}

	list := call(t, srv, http.MethodGet, scriptPath(srv, "/scripts"), "", nil)
	assert.Contains(t, list.raw, `"migration_tag":"v2"`)
}

func TestServer_BindingsSecretsAndChanges(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := cfapitest.Start(t, cfapitest.Options{OnChange: func(name string, s cfapitest.Uploaded, deleted bool) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s deleted=%v secrets=%v", name, deleted, s.Secrets))
	}})
	first := meta(`{"main_module":"worker.js","bindings":[
		{"type":"plain_text","name":"A","text":"a"},{"type":"secret_text","name":"S","text":"s"}]}`)
	require.Equal(t, 200, upload(t, srv, "job-1", first, js, jobW).status)
	secret := call(t, srv, http.MethodPut, scriptPath(srv, "/scripts/job-1/secrets"), "application/json",
		[]byte(`{"name":"T","text":"t","type":"secret_text"}`))
	require.Equal(t, 200, secret.status, secret.raw)
	assert.Equal(t, map[string]any{"name": "T", "type": "secret_text"}, secret.env.Result)

	kept := meta(`{"main_module":"worker.js","keep_bindings":["secret_text"],"bindings":[{"type":"plain_text","name":"B","text":"b"}]}`)
	require.Equal(t, 200, upload(t, srv, "job-1", kept, js, jobW).status)
	u, _ := srv.Script("job-1")
	assert.Equal(t, map[string]string{"S": "s", "T": "t"}, u.Secrets)
	var names []string
	for _, b := range u.Bindings {
		names = append(names, b.Type+" "+b.Name)
	}
	assert.Equal(t, []string{"plain_text B", "secret_text S", "secret_text T"}, names, "A is replaced, the secrets kept")
	assert.Equal(t, "2021-11-02", u.Metadata.CompatibilityDate, "the API's default date")

	replaced := meta(`{"main_module":"worker.js","bindings":[]}`)
	require.Equal(t, 200, upload(t, srv, "job-1", replaced, js, jobW).status)
	u, _ = srv.Script("job-1")
	assert.Empty(t, u.Bindings)

	dev := call(t, srv, http.MethodPost, scriptPath(srv, "/scripts/job-1/subdomain"), "application/json", []byte(`{"enabled":true,"previews_enabled":false}`))
	require.Equal(t, 200, dev.status)
	assert.Equal(t, map[string]any{"enabled": true, "previews_enabled": false}, dev.env.Result)
	sub := call(t, srv, http.MethodGet, scriptPath(srv, "/subdomain"), "", nil)
	assert.Equal(t, map[string]any{"subdomain": "ferry-test"}, sub.env.Result)

	require.Equal(t, 200, call(t, srv, http.MethodDelete, scriptPath(srv, "/scripts/job-1"), "", nil).status)
	gone := call(t, srv, http.MethodDelete, scriptPath(srv, "/scripts/job-1"), "", nil)
	assert.Equal(t, 404, gone.status)
	assert.Equal(t, 10007, gone.code())
	missing := call(t, srv, http.MethodPut, scriptPath(srv, "/scripts/job-1/secrets"), "application/json", []byte(`{"name":"T","text":"t","type":"secret_text"}`))
	assert.Equal(t, 10007, missing.code())

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{
		"job-1 deleted=false secrets=map[S:s]",
		"job-1 deleted=false secrets=map[S:s T:t]",
		"job-1 deleted=false secrets=map[S:s T:t]",
		"job-1 deleted=false secrets=map[]",
		"job-1 deleted=true secrets=map[]",
	}, seen, "upload, secret, upload, upload, delete; workers.dev and failures change nothing")
}

func TestServer_Faults(t *testing.T) {
	srv := cfapitest.Start(t, cfapitest.Options{})
	require.Equal(t, 200, upload(t, srv, "job-1", meta(`{"main_module":"worker.js"}`), js, jobW).status)
	srv.Fail(cfapitest.Fault{Method: http.MethodDelete, Path: "/workers/scripts/job-1", Times: 2, RetryAfter: "0"})
	srv.Fail(cfapitest.Fault{Method: http.MethodDelete, Status: http.StatusBadGateway, AfterApply: true})

	var got []string
	for range 4 {
		a := call(t, srv, http.MethodDelete, scriptPath(srv, "/scripts/job-1"), "", nil)
		_, exists := srv.Script("job-1")
		got = append(got, fmt.Sprintf("%d %d retry-after=%q exists=%v", a.status, a.code(), a.header.Get("Retry-After"), exists))
	}
	assert.Equal(t, []string{
		`500 10013 retry-after="0" exists=true`,
		`500 10013 retry-after="0" exists=true`,
		`502 10013 retry-after="" exists=false`, // done, answer lost
		`404 10007 retry-after="" exists=false`,
	}, got)
}

func TestServer_Requests(t *testing.T) {
	srv := cfapitest.Start(t, cfapitest.Options{})
	upload(t, srv, "job-1", meta(`{"main_module":"worker.js"}`), js, jobW)
	call(t, srv, http.MethodDelete, scriptPath(srv, "/scripts/job-1")+"?force=true", "", nil)

	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, cfapitest.Request{Method: "PUT", Path: scriptPath(srv, "/scripts/job-1"), Parts: []cfapitest.Part{
		{Name: "metadata", ContentType: "application/json", Size: len(`{"main_module":"worker.js"}`)},
		{Name: "worker.js", FileName: "worker.js", ContentType: "application/javascript+module", Size: len(worker)},
		{Name: "job.wasm", FileName: "job.wasm", ContentType: "application/wasm", Size: len(wasm)},
	}}, reqs[0])
	assert.Equal(t, cfapitest.Request{Method: "DELETE", Path: scriptPath(srv, "/scripts/job-1"), Query: "force=true"}, reqs[1])
}
