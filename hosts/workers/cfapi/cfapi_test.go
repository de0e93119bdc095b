package cfapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/workers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/workers/cfapi"
	"github.com/ferryrun/ferry/hosts/workers/cfapi/cfapitest"
)

const workerJS = `import job from "./job.wasm";

export class Counter {
	constructor(state) { this.state = state; }
	async fetch(request) { return new Response("1"); }
}

export default {
	async fetch(request, env) {
		new WebAssembly.Instance(job, {});
		return new Response("ok");
	},
};
`

// wasm is the smallest valid module: the magic and the version.
var wasm = []byte("\x00asm\x01\x00\x00\x00")

// jobScript is a Worker as Ferry uploads one: an ES module, the job's
// .wasm, bindings of each kind and a Durable Object class.
func jobScript(name string) cfapi.Script {
	return cfapi.Script{
		Name:       name,
		MainModule: "worker.js",
		Modules: []cfapi.Module{
			{Name: "worker.js", ContentType: cfapi.ContentTypeESModule, Data: []byte(workerJS)},
			{Name: "job.wasm", ContentType: cfapi.ContentTypeWasm, Data: wasm},
		},
		CompatibilityDate:  "2025-09-01",
		CompatibilityFlags: []string{"nodejs_compat"},
		Bindings: []cfapi.Binding{
			{Type: cfapi.BindingPlainText, Name: "JOB_ID", Text: "42"},
			{Type: cfapi.BindingSecretText, Name: "FERRY_TOKEN", Text: "s3cret"},
			{Type: cfapi.BindingJSON, Name: "FERRY_CONFIG", JSON: json.RawMessage(`{"limit":3}`)},
			{Type: cfapi.BindingDurableObjectNamespace, Name: "COUNTER", ClassName: "Counter"},
		},
		KeepBindings:  []string{cfapi.BindingSecretText},
		SQLiteClasses: []string{"Counter"},
		CPUMs:         5000,
	}
}

// changes records OnChange calls.
type changes struct {
	mu   sync.Mutex
	seen []string
}

func (c *changes) hook(name string, s cfapitest.Uploaded, deleted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if deleted {
		c.seen = append(c.seen, "delete "+name)
		return
	}
	c.seen = append(c.seen, fmt.Sprintf("%s uploads=%d secrets=%d", name, s.Uploads, len(s.Secrets)))
}

func (c *changes) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

func start(t *testing.T, opts cfapitest.Options) (*cfapitest.Server, *changes) {
	t.Helper()
	ch := &changes{}
	if opts.OnChange == nil {
		opts.OnChange = ch.hook
	}
	return cfapitest.Start(t, opts), ch
}

func newClient(t *testing.T, srv *cfapitest.Server, edit ...func(*cfapi.Config)) *cfapi.Client {
	t.Helper()
	cfg := cfapi.Config{AccountID: srv.AccountID, APIToken: srv.Token, BaseURL: srv.URL}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := cfapi.New(cfg)
	require.NoError(t, err)
	return c
}

func noRetries(c *cfapi.Config) { c.MaxRetries = -1 }

// calls lists the requests as "METHOD path-under-the-account?query".
func calls(srv *cfapitest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		s := r.Method + " " + strings.TrimPrefix(r.Path, "/accounts/"+srv.AccountID)
		if r.Query != "" {
			s += "?" + r.Query
		}
		out = append(out, s)
	}
	return out
}

func TestNew_Validate(t *testing.T) {
	good := cfapi.Config{AccountID: cfapitest.DefaultAccountID, APIToken: "t"}
	cases := []struct {
		name string
		edit func(*cfapi.Config)
		want string
	}{
		{"short account id", func(c *cfapi.Config) { c.AccountID = "abc" }, "account id"},
		{"non-hex account id", func(c *cfapi.Config) { c.AccountID = strings.Repeat("g", 32) }, "account id"},
		{"empty token", func(c *cfapi.Config) { c.APIToken = " " }, "empty API token"},
		{"relative base URL", func(c *cfapi.Config) { c.BaseURL = "/client/v4" }, "base URL"},
		{"base URL without scheme", func(c *cfapi.Config) { c.BaseURL = "api.cloudflare.com" }, "base URL"},
		{"unparsable base URL", func(c *cfapi.Config) { c.BaseURL = "http://[::1" }, "base URL"},
		{"negative size limit", func(c *cfapi.Config) { c.MaxScriptBytes = -1 }, "size limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := cfapi.New(cfg)
			require.Error(t, err)
			assert.ErrorIs(t, err, cfapi.ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := cfapi.New(good)
	assert.NoError(t, err)
}

func TestClient_Upload_Wire(t *testing.T) {
	srv, ch := start(t, cfapitest.Options{})
	c := newClient(t, srv)

	res, err := c.Upload(context.Background(), jobScript("job-1"))
	require.NoError(t, err)

	assert.Equal(t, []string{"GET /workers/scripts", "PUT /workers/scripts/job-1"}, calls(srv),
		"the migration tag is read from the list of Workers before the upload")
	put := srv.Requests()[1]
	assert.Equal(t, []cfapitest.Part{
		{Name: "metadata", ContentType: "application/json", Size: put.Parts[0].Size},
		{Name: "worker.js", FileName: "worker.js", ContentType: "application/javascript+module", Size: len(workerJS)},
		{Name: "job.wasm", FileName: "job.wasm", ContentType: "application/wasm", Size: len(wasm)},
	}, put.Parts)

	u, ok := srv.Script("job-1")
	require.True(t, ok)
	assert.JSONEq(t, `{
		"main_module": "worker.js",
		"compatibility_date": "2025-09-01",
		"compatibility_flags": ["nodejs_compat"],
		"bindings": [
			{"type": "plain_text", "name": "JOB_ID", "text": "42"},
			{"type": "secret_text", "name": "FERRY_TOKEN", "text": "s3cret"},
			{"type": "json", "name": "FERRY_CONFIG", "json": {"limit": 3}},
			{"type": "durable_object_namespace", "name": "COUNTER", "class_name": "Counter"}
		],
		"keep_bindings": ["secret_text"],
		"migrations": {"new_tag": "ferry-v1", "new_sqlite_classes": ["Counter"]},
		"limits": {"cpu_ms": 5000}
	}`, string(u.Metadata.Raw))
	assert.Equal(t, map[string]cfapitest.Module{
		"worker.js": {ContentType: "application/javascript+module", Data: []byte(workerJS)},
		"job.wasm":  {ContentType: "application/wasm", Data: wasm},
	}, u.Modules)
	assert.Equal(t, map[string]string{"FERRY_TOKEN": "s3cret"}, u.Secrets)
	assert.Equal(t, "ferry-v1", u.MigrationTag)
	assert.Equal(t, []string{"Counter"}, u.DurableObjectClasses)

	assert.Equal(t, "job-1", res.ID)
	assert.Equal(t, u.Etag, res.Etag)
	assert.NotEmpty(t, res.Etag)
	assert.Equal(t, []string{"fetch"}, res.Handlers)
	assert.Equal(t, "ferry-v1", res.MigrationTag)
	assert.Equal(t, 1, res.StartupTimeMs)
	assert.Equal(t, u.ModifiedOn, res.ModifiedOn)
	assert.Equal(t, []string{"job-1 uploads=1 secrets=1"}, ch.list())
}

func TestClient_Upload_NoBindings(t *testing.T) {
	srv, _ := start(t, cfapitest.Options{})
	c := newClient(t, srv)
	s := jobScript("plain")
	s.Bindings, s.KeepBindings, s.SQLiteClasses, s.CompatibilityFlags, s.CPUMs = nil, nil, nil, nil, 0

	_, err := c.Upload(context.Background(), s)
	require.NoError(t, err)

	assert.Equal(t, []string{"PUT /workers/scripts/plain"}, calls(srv), "no Durable Object class, no need for the migration tag")
	u, _ := srv.Script("plain")
	assert.JSONEq(t, `{"main_module": "worker.js", "compatibility_date": "2025-09-01", "bindings": []}`, string(u.Metadata.Raw),
		"an upload replaces the bindings, so none is said explicitly")
}

func TestClient_Upload_SecondUploadSkipsMigration(t *testing.T) {
	srv, _ := start(t, cfapitest.Options{})
	c := newClient(t, srv)
	ctx := context.Background()

	_, err := c.Upload(ctx, jobScript("job-1"))
	require.NoError(t, err)
	res, err := c.Upload(ctx, jobScript("job-1"))
	require.NoError(t, err)

	assert.Equal(t, []string{
		"GET /workers/scripts", "PUT /workers/scripts/job-1",
		"GET /workers/scripts", "PUT /workers/scripts/job-1",
	}, calls(srv))
	u, _ := srv.Script("job-1")
	assert.Nil(t, u.Metadata.Migrations, "the second upload sends no migration")
	assert.NotContains(t, string(u.Metadata.Raw), "migrations")
	assert.Equal(t, 2, u.Uploads)
	assert.Equal(t, "ferry-v1", u.MigrationTag)
	assert.Equal(t, []string{"Counter"}, u.DurableObjectClasses)
	assert.Equal(t, "ferry-v1", res.MigrationTag)
}

func TestClient_Upload_KeepBindings(t *testing.T) {
	cases := []struct {
		name        string
		keep        []string
		wantSecrets map[string]string
	}{
		{"secrets kept", []string{cfapi.BindingSecretText}, map[string]string{"FERRY_TOKEN": "s3cret", "API_KEY": "k1"}},
		{"secrets dropped without keep_bindings", nil, map[string]string{"FERRY_TOKEN": "s3cret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, ch := start(t, cfapitest.Options{})
			c := newClient(t, srv)
			ctx := context.Background()
			_, err := c.Upload(ctx, jobScript("job-1"))
			require.NoError(t, err)
			require.NoError(t, c.PutSecret(ctx, "job-1", "API_KEY", "k1"))

			s := jobScript("job-1")
			s.KeepBindings = tc.keep
			_, err = c.Upload(ctx, s)
			require.NoError(t, err)

			u, _ := srv.Script("job-1")
			assert.Equal(t, tc.wantSecrets, u.Secrets)
			assert.Equal(t, "PUT /workers/scripts/job-1/secrets", calls(srv)[2])
			assert.Len(t, ch.list(), 3, "upload, secret, upload")
		})
	}
}

func TestClient_Operations(t *testing.T) {
	srv, ch := start(t, cfapitest.Options{Subdomain: "acme"})
	c := newClient(t, srv)
	ctx := context.Background()
	_, err := c.Upload(ctx, jobScript("job-1"))
	require.NoError(t, err)

	sub, err := c.AccountSubdomain(ctx)
	require.NoError(t, err)
	assert.Equal(t, "acme", sub)

	require.NoError(t, c.EnableWorkersDev(ctx, "job-1"))
	u, _ := srv.Script("job-1")
	assert.True(t, u.WorkersDev)
	assert.False(t, u.PreviewsEnabled)

	require.NoError(t, c.PutSecret(ctx, "job-1", "API_KEY", "k1"))
	u, _ = srv.Script("job-1")
	assert.Equal(t, "k1", u.Secrets["API_KEY"])

	info, err := c.Script(ctx, "job-1")
	require.NoError(t, err)
	assert.Equal(t, "job-1", info.Name)
	assert.Equal(t, u.Etag, info.Etag)
	assert.Equal(t, "ferry-v1", info.MigrationTag)
	assert.Equal(t, u.ModifiedOn, info.ModifiedOn)
	assert.Equal(t, []string{"fetch"}, info.Handlers)
	assert.True(t, info.HasModules)

	require.NoError(t, c.Delete(ctx, "job-1"))
	_, ok := srv.Script("job-1")
	assert.False(t, ok)
	_, err = c.Script(ctx, "job-1")
	assert.ErrorIs(t, err, cfapi.ErrNotFound)

	assert.Equal(t, []string{
		"GET /workers/scripts", "PUT /workers/scripts/job-1",
		"GET /workers/subdomain",
		"POST /workers/scripts/job-1/subdomain",
		"PUT /workers/scripts/job-1/secrets",
		"GET /workers/scripts",
		"DELETE /workers/scripts/job-1?force=true",
		"GET /workers/scripts",
	}, calls(srv))
	assert.Equal(t, []string{"job-1 uploads=1 secrets=1", "job-1 uploads=1 secrets=2", "delete job-1"}, ch.list())
}

// TestClient_Retries: the SDK retries 5xx answers; a retry must not do
// twice what was done once, even when the first attempt took effect and
// only its answer was lost.
func TestClient_Retries(t *testing.T) {
	const acct = "/workers/scripts/job-1"
	cases := []struct {
		name      string
		fault     cfapitest.Fault
		run       func(context.Context, *cfapi.Client) error
		wantCalls []string
		check     func(*testing.T, cfapitest.Uploaded, bool)
		// wantChanges are the OnChange calls after the setup upload.
		wantChanges []string
	}{
		{
			name:  "upload whose answer is lost repeats no migration",
			fault: cfapitest.Fault{Method: http.MethodPut, Path: acct, AfterApply: true},
			run: func(ctx context.Context, c *cfapi.Client) error {
				_, err := c.Upload(ctx, jobScript("job-1"))
				return err
			},
			wantCalls: []string{
				"GET /workers/scripts",
				"PUT /workers/scripts/job-1", // applied, answered 500
				"PUT /workers/scripts/job-1", // the SDK's retry: 10079, the tag is set
				"GET /workers/scripts",       // the tag is ours
				"PUT /workers/scripts/job-1", // without the migration
			},
			check: func(t *testing.T, u cfapitest.Uploaded, ok bool) {
				require.True(t, ok)
				assert.Equal(t, "ferry-v1", u.MigrationTag)
				assert.Equal(t, []string{"Counter"}, u.DurableObjectClasses)
				assert.Nil(t, u.Metadata.Migrations)
				assert.Equal(t, 2, u.Uploads)
			},
			wantChanges: []string{"job-1 uploads=1 secrets=1", "job-1 uploads=2 secrets=1"},
		},
		{
			name:  "upload refused once is sent once more",
			fault: cfapitest.Fault{Method: http.MethodPut, Path: acct},
			run: func(ctx context.Context, c *cfapi.Client) error {
				_, err := c.Upload(ctx, jobScript("job-1"))
				return err
			},
			wantCalls: []string{"GET /workers/scripts", "PUT /workers/scripts/job-1", "PUT /workers/scripts/job-1"},
			check: func(t *testing.T, u cfapitest.Uploaded, ok bool) {
				require.True(t, ok)
				assert.Equal(t, 1, u.Uploads)
				assert.Equal(t, "ferry-v1", u.MigrationTag)
			},
			wantChanges: []string{"job-1 uploads=1 secrets=1"},
		},
		{
			name:      "delete whose answer is lost is done",
			fault:     cfapitest.Fault{Method: http.MethodDelete, Path: acct, AfterApply: true},
			run:       func(ctx context.Context, c *cfapi.Client) error { return c.Delete(ctx, "job-1") },
			wantCalls: []string{"DELETE /workers/scripts/job-1?force=true", "DELETE /workers/scripts/job-1?force=true"},
			check: func(t *testing.T, _ cfapitest.Uploaded, ok bool) {
				assert.False(t, ok)
			},
			wantChanges: []string{"delete job-1"},
		},
		{
			name:      "secret refused once is set once",
			fault:     cfapitest.Fault{Method: http.MethodPut, Path: acct + "/secrets"},
			run:       func(ctx context.Context, c *cfapi.Client) error { return c.PutSecret(ctx, "job-1", "API_KEY", "k1") },
			wantCalls: []string{"PUT /workers/scripts/job-1/secrets", "PUT /workers/scripts/job-1/secrets"},
			check: func(t *testing.T, u cfapitest.Uploaded, ok bool) {
				require.True(t, ok)
				assert.Equal(t, "k1", u.Secrets["API_KEY"])
			},
			wantChanges: []string{"job-1 uploads=1 secrets=2"},
		},
		{
			name:      "workers.dev whose answer is lost stays on",
			fault:     cfapitest.Fault{Method: http.MethodPost, Path: acct + "/subdomain", AfterApply: true, Status: http.StatusBadGateway},
			run:       func(ctx context.Context, c *cfapi.Client) error { return c.EnableWorkersDev(ctx, "job-1") },
			wantCalls: []string{"POST /workers/scripts/job-1/subdomain", "POST /workers/scripts/job-1/subdomain"},
			check: func(t *testing.T, u cfapitest.Uploaded, ok bool) {
				require.True(t, ok)
				assert.True(t, u.WorkersDev)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, ch := start(t, cfapitest.Options{})
			c := newClient(t, srv)
			ctx := context.Background()
			setupCalls := 0
			if !strings.HasPrefix(tc.name, "upload") {
				_, err := c.Upload(ctx, jobScript("job-1"))
				require.NoError(t, err)
				setupCalls = len(srv.Requests())
			}
			before := len(ch.list())
			tc.fault.RetryAfter = "0" // retry at once: the test is about effects, not timing
			srv.Fail(tc.fault)

			require.NoError(t, tc.run(ctx, c))

			assert.Equal(t, tc.wantCalls, calls(srv)[setupCalls:])
			u, ok := srv.Script("job-1")
			tc.check(t, u, ok)
			if tc.wantChanges == nil {
				assert.Empty(t, ch.list()[before:])
			} else {
				assert.Equal(t, tc.wantChanges, ch.list()[before:])
			}
		})
	}
}

// TestClient_Errors: every kind of failure Cloudflare answers with comes
// back as an *APIError of the right kind, naming the operation and Worker.
func TestClient_Errors(t *testing.T) {
	ctx := context.Background()
	upload := func(s cfapi.Script) func(*cfapi.Client) error {
		return func(c *cfapi.Client) error { _, err := c.Upload(ctx, s); return err }
	}
	noExport := jobScript("job-1")
	noExport.Modules[0].Data = []byte(strings.Replace(workerJS, "export class Counter", "class Counter", 1))
	badImport := jobScript("job-1")
	badImport.Modules[0].Data = []byte(strings.Replace(workerJS, "./job.wasm", "./other.wasm", 1))
	noHandler := jobScript("job-1")
	noHandler.Modules[0].Data = []byte("export class Counter {}\nexport default {};\n")

	cases := []struct {
		name     string
		opts     cfapitest.Options
		edit     func(*cfapi.Config)
		seed     bool // upload job-1 first (with retries allowed)
		fault    *cfapitest.Fault
		run      func(*cfapi.Client) error
		kind     error
		status   int
		code     int
		message  string
		mentions string
	}{
		{name: "wrong token", edit: func(c *cfapi.Config) { c.APIToken = "nope" },
			run: func(c *cfapi.Client) error { return c.Delete(ctx, "job-1") }, kind: cfapi.ErrAuth, status: 401, code: 10000,
			message: "Authentication error", mentions: `delete worker "job-1"`},
		{name: "another account", edit: func(c *cfapi.Config) { c.AccountID = strings.Repeat("a", 32) },
			run:  func(c *cfapi.Client) error { _, err := c.AccountSubdomain(ctx); return err },
			kind: cfapi.ErrAuth, status: 403, code: 10000, mentions: "read account subdomain"},
		{name: "delete a missing Worker",
			run:  func(c *cfapi.Client) error { return c.Delete(ctx, "job-1") },
			kind: cfapi.ErrNotFound, status: 404, code: 10007, mentions: `delete worker "job-1"`},
		{name: "secret on a missing Worker",
			run:  func(c *cfapi.Client) error { return c.PutSecret(ctx, "job-1", "K", "v") },
			kind: cfapi.ErrNotFound, status: 404, code: 10007, mentions: `put secret on worker "job-1"`},
		{name: "workers.dev for a missing Worker",
			run:  func(c *cfapi.Client) error { return c.EnableWorkersDev(ctx, "job-1") },
			kind: cfapi.ErrNotFound, status: 404, code: 10007, mentions: `enable workers.dev for worker "job-1"`},
		{name: "no account subdomain", opts: cfapitest.Options{NoSubdomain: true},
			run:  func(c *cfapi.Client) error { _, err := c.AccountSubdomain(ctx); return err },
			kind: cfapi.ErrNotFound, status: 404, code: 10007, mentions: "read account subdomain"},
		{name: "over the server's size limit", opts: cfapitest.Options{MaxScriptBytes: 100},
			run:  upload(jobScript("job-1")),
			kind: cfapi.ErrTooLarge, status: 400, code: 10027, mentions: `upload worker "job-1"`},
		{name: "class not exported", run: upload(noExport),
			kind: cfapi.ErrInvalid, status: 400, code: 10061, message: "not exported"},
		{name: "import of a missing module", run: upload(badImport),
			kind: cfapi.ErrInvalid, status: 400, code: 10021, message: `No such module \"other.wasm\"`},
		{name: "no event handler", run: upload(noHandler),
			kind: cfapi.ErrInvalid, status: 400, code: 10068},
		{name: "concurrent change", seed: true,
			fault: &cfapitest.Fault{Method: http.MethodPut, Status: http.StatusConflict, Code: 10035, Message: "concurrent modification"},
			run:   func(c *cfapi.Client) error { return c.PutSecret(ctx, "job-1", "K", "v") },
			kind:  cfapi.ErrConflict, status: 409, code: 10035},
		{name: "too many Workers", opts: cfapitest.Options{MaxScripts: 1}, seed: true,
			run:  upload(jobScript("job-2")),
			kind: cfapi.ErrQuota, status: 400, code: 10037, mentions: `upload worker "job-2"`},
		{name: "rate limited",
			fault: &cfapitest.Fault{Status: http.StatusTooManyRequests, Code: 971, Message: "Please wait and consider throttling your request speed"},
			run:   func(c *cfapi.Client) error { _, err := c.AccountSubdomain(ctx); return err },
			kind:  cfapi.ErrQuota, status: 429, code: 971},
		{name: "server error",
			fault: &cfapitest.Fault{Status: http.StatusServiceUnavailable},
			run:   func(c *cfapi.Client) error { return c.Delete(ctx, "job-1") },
			kind:  nil, status: 503, code: 10013},
	}
	kinds := []error{cfapi.ErrAuth, cfapi.ErrNotFound, cfapi.ErrTooLarge, cfapi.ErrInvalid, cfapi.ErrConflict, cfapi.ErrQuota}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := start(t, tc.opts)
			if tc.seed {
				_, err := newClient(t, srv).Upload(ctx, jobScript("job-1"))
				require.NoError(t, err)
			}
			if tc.fault != nil {
				srv.Fail(*tc.fault)
			}
			before := len(srv.Requests())
			c := newClient(t, srv, append([]func(*cfapi.Config){noRetries}, optional(tc.edit)...)...)

			err := tc.run(c)

			require.Error(t, err)
			for _, k := range kinds {
				assert.Equal(t, k == tc.kind, errors.Is(err, k), "errors.Is(err, %v)", k)
			}
			var apiErr *cfapi.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tc.status, apiErr.Status)
			assert.True(t, apiErr.HasCode(tc.code), "codes %v", apiErr.Errors)
			var sdkErr *workers.Error
			require.ErrorAs(t, err, &sdkErr, "the SDK's error stays reachable")
			assert.Equal(t, tc.status, sdkErr.StatusCode)
			if tc.message != "" {
				assert.Contains(t, err.Error(), tc.message)
			}
			if tc.mentions != "" {
				assert.Contains(t, err.Error(), tc.mentions)
			}
			assert.NotContains(t, err.Error(), srv.Token)
			assert.LessOrEqual(t, len(srv.Requests())-before, 2, "no retries: at most the list read and the call")
		})
	}
}

func optional(f func(*cfapi.Config)) []func(*cfapi.Config) {
	if f == nil {
		return nil
	}
	return []func(*cfapi.Config){f}
}

// TestClient_Validation: what the API would refuse is refused before
// anything is sent.
func TestClient_Validation(t *testing.T) {
	ctx := context.Background()
	edit := func(f func(*cfapi.Script)) cfapi.Script {
		s := jobScript("job-1")
		f(&s)
		return s
	}
	upload := func(s cfapi.Script) func(*cfapi.Client) error {
		return func(c *cfapi.Client) error { _, err := c.Upload(ctx, s); return err }
	}
	cases := []struct {
		name string
		run  func(*cfapi.Client) error
		kind error
		want string
	}{
		{"upper-case name", upload(edit(func(s *cfapi.Script) { s.Name = "Job" })), cfapi.ErrInvalid, "Worker name"},
		{"name ending in a dash", upload(edit(func(s *cfapi.Script) { s.Name = "job-" })), cfapi.ErrInvalid, "Worker name"},
		{"name with an underscore", upload(edit(func(s *cfapi.Script) { s.Name = "job_1" })), cfapi.ErrInvalid, "Worker name"},
		{"name of 64 characters", upload(edit(func(s *cfapi.Script) { s.Name = "j" + strings.Repeat("o", 63) })), cfapi.ErrInvalid, "Worker name"},
		{"no modules", upload(edit(func(s *cfapi.Script) { s.Modules = nil })), cfapi.ErrInvalid, "no modules"},
		{"no main module", upload(edit(func(s *cfapi.Script) { s.MainModule = "" })), cfapi.ErrInvalid, "no main module"},
		{"main module missing", upload(edit(func(s *cfapi.Script) { s.MainModule = "index.js" })), cfapi.ErrInvalid, `main module "index.js" is not among`},
		{"main module not an ES module", upload(edit(func(s *cfapi.Script) { s.Modules[0].ContentType = cfapi.ContentTypeCommonJS })), cfapi.ErrInvalid, "want an ES module"},
		{"module twice", upload(edit(func(s *cfapi.Script) { s.Modules[1].Name = "worker.js" })), cfapi.ErrInvalid, `module "worker.js" twice`},
		{"module named metadata", upload(edit(func(s *cfapi.Script) { s.Modules[1].Name = "metadata" })), cfapi.ErrInvalid, "metadata part"},
		{"module name with a quote", upload(edit(func(s *cfapi.Script) { s.Modules[1].Name = `a".wasm` })), cfapi.ErrInvalid, "module name"},
		{"module name climbing out", upload(edit(func(s *cfapi.Script) { s.Modules[1].Name = "lib/../../x.wasm" })), cfapi.ErrInvalid, "module name"},
		{"unknown content type", upload(edit(func(s *cfapi.Script) { s.Modules[1].ContentType = "application/json" })), cfapi.ErrInvalid, `content type "application/json"`},
		{"no compatibility date", upload(edit(func(s *cfapi.Script) { s.CompatibilityDate = "" })), cfapi.ErrInvalid, "no compatibility date"},
		{"bad compatibility date", upload(edit(func(s *cfapi.Script) { s.CompatibilityDate = "2025-13-01" })), cfapi.ErrInvalid, "compatibility date"},
		{"binding without a name", upload(edit(func(s *cfapi.Script) { s.Bindings[0].Name = "" })), cfapi.ErrInvalid, "without a name"},
		{"binding twice", upload(edit(func(s *cfapi.Script) { s.Bindings[1].Name = "JOB_ID" })), cfapi.ErrInvalid, `binding "JOB_ID" twice`},
		{"json binding not JSON", upload(edit(func(s *cfapi.Script) { s.Bindings[2].JSON = json.RawMessage("{") })), cfapi.ErrInvalid, "not JSON"},
		{"unsupported binding type", upload(edit(func(s *cfapi.Script) { s.Bindings[0].Type = "r2_bucket" })), cfapi.ErrInvalid, `unsupported type "r2_bucket"`},
		{"Durable Object class not defined", upload(edit(func(s *cfapi.Script) { s.SQLiteClasses = nil })), cfapi.ErrInvalid, "not among the script's SQLiteClasses"},
		{"class name not an identifier", upload(edit(func(s *cfapi.Script) { s.SQLiteClasses = append(s.SQLiteClasses, "my-class") })), cfapi.ErrInvalid, "JavaScript identifier"},
		{"CPU limit too high", upload(edit(func(s *cfapi.Script) { s.CPUMs = 300_001 })), cfapi.ErrInvalid, "CPU limit"},
		{"over the size limit", upload(edit(func(s *cfapi.Script) { s.Modules[1].Data = make([]byte, 2048) })), cfapi.ErrTooLarge, "over the limit of 1024"},
		{"delete with a bad name", func(c *cfapi.Client) error { return c.Delete(ctx, "Job") }, cfapi.ErrInvalid, "Worker name"},
		{"secret without a name", func(c *cfapi.Client) error { return c.PutSecret(ctx, "job-1", "", "v") }, cfapi.ErrInvalid, "empty secret name"},
		{"workers.dev with a bad name", func(c *cfapi.Client) error { return c.EnableWorkersDev(ctx, "-job") }, cfapi.ErrInvalid, "Worker name"},
		{"read with a bad name", func(c *cfapi.Client) error { _, err := c.Script(ctx, ""); return err }, cfapi.ErrInvalid, "Worker name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := start(t, cfapitest.Options{})
			c := newClient(t, srv, func(c *cfapi.Config) { c.MaxScriptBytes = 1024 })

			err := tc.run(c)

			require.Error(t, err)
			assert.ErrorIs(t, err, tc.kind)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, srv.Requests(), "nothing is sent")
		})
	}
}

// TestClient_SDKUpdateRefused shows why Upload builds its own body:
// cloudflare-go v7.9.0's Scripts.Update sends the metadata as flattened
// fields, which the API (as cfapitest reads it) refuses, while the same
// Worker through Upload is accepted.
func TestClient_SDKUpdateRefused(t *testing.T) {
	srv, _ := start(t, cfapitest.Options{})
	ctx := context.Background()
	svc := workers.NewScriptService(sdkOptions(srv)...)

	var meta workers.ScriptUpdateParamsMetadata
	meta.MainModule.Value, meta.MainModule.Present = "worker.js", true
	meta.CompatibilityDate.Value, meta.CompatibilityDate.Present = "2025-09-01", true
	var p workers.ScriptUpdateParams
	p.AccountID.Value, p.AccountID.Present = srv.AccountID, true
	p.Metadata.Value, p.Metadata.Present = meta, true
	p.Files.Value, p.Files.Present = []io.Reader{namedFile{Reader: strings.NewReader(workerJS), name: "worker.js", ct: cfapi.ContentTypeESModule}}, true

	_, err := svc.Update(ctx, "job-1", p)

	var sdkErr *workers.Error
	require.ErrorAs(t, err, &sdkErr)
	assert.Equal(t, http.StatusBadRequest, sdkErr.StatusCode)
	require.NotEmpty(t, sdkErr.Errors)
	assert.EqualValues(t, 10021, sdkErr.Errors[0].Code)
	assert.Equal(t, "Could not read content for part 'metadata'.", sdkErr.Errors[0].Message)
	var names []string
	for _, part := range srv.Requests()[0].Parts {
		names = append(names, part.Name)
	}
	assert.Contains(t, names, "metadata.main_module", "v7 flattens the metadata")
	assert.Contains(t, names, "files.0")
	assert.NotContains(t, names, "metadata")

	s := jobScript("job-1")
	s.Bindings, s.SQLiteClasses = nil, nil
	_, err = newClient(t, srv).Upload(ctx, s)
	require.NoError(t, err)
	_, ok := srv.Script("job-1")
	assert.True(t, ok)
}

func sdkOptions(srv *cfapitest.Server) []option.RequestOption {
	return []option.RequestOption{option.WithBaseURL(srv.URL), option.WithAPIToken(srv.Token), option.WithMaxRetries(0)}
}

// namedFile is a file for the SDK's multipart encoder, which takes a
// part's filename and content type from these two methods.
type namedFile struct {
	io.Reader
	name, ct string
}

func (f namedFile) Filename() string    { return f.name }
func (f namedFile) ContentType() string { return f.ct }

// TestClient_Upload_ClassOfAnotherWorker: a job Worker binds the Durable
// Object class of a state Worker, which must exist first.
func TestClient_Upload_ClassOfAnotherWorker(t *testing.T) {
	srv, _ := start(t, cfapitest.Options{})
	c := newClient(t, srv, noRetries)
	ctx := context.Background()
	job := jobScript("job-1")
	job.SQLiteClasses = nil
	job.Bindings = []cfapi.Binding{{Type: cfapi.BindingDurableObjectNamespace, Name: "STATE", ClassName: "Counter", ScriptName: "state"}}

	_, err := c.Upload(ctx, job)
	require.ErrorIs(t, err, cfapi.ErrInvalid)
	var apiErr *cfapi.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.True(t, apiErr.HasCode(10061))

	state := jobScript("state")
	state.Bindings = nil
	_, err = c.Upload(ctx, state)
	require.NoError(t, err)
	_, err = c.Upload(ctx, job)
	require.NoError(t, err)

	u, _ := srv.Script("job-1")
	assert.JSONEq(t, `[{"type":"durable_object_namespace","name":"STATE","class_name":"Counter","script_name":"state"}]`,
		string(mustJSON(t, u.Metadata.Bindings)))
	assert.Empty(t, u.MigrationTag, "the class is the state Worker's")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
