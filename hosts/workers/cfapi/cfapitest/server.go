// Package cfapitest is a local Cloudflare API for tests: an httptest
// server on 127.0.0.1 that answers the Workers endpoints Ferry's client
// (package cfapi) uses, in the API's wire format, and records what it was
// sent so that a test can assert on it — or start a real workerd with it
// (Options.OnChange).
//
// What it follows, and where from: the v4 envelope {"success", "errors",
// "messages", "result"}; bearer auth (a wrong token is 401 with code
// 10000); the account id in the path; the upload as Cloudflare reads it —
// a "metadata" part with JSON and one part per module, named by its
// filename (else its part name) and typed by its Content-Type, so a body
// without a "metadata" part, such as cloudflare-go v7.9.0's flattened
// metadata.main_module / files.0 form, is refused with 10021 "could not
// read content for part metadata"; binding replacement and keep_bindings;
// Durable Object migrations and their tags; workers.dev; secrets; delete.
// Error codes and messages are Cloudflare's where a public source shows
// them (cited next to each); the rest are marked as this package's own.
//
// It is not a Workers runtime: it checks a module's static imports and
// exports textually and never runs code. It serves only modules-format
// Workers (main_module), not service-worker ones (body_part).
package cfapitest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults for Options.
const (
	DefaultAccountID      = "0123456789abcdef0123456789abcdef"
	DefaultToken          = "cfapitest-token"
	DefaultSubdomain      = "ferry-test"
	DefaultMaxScriptBytes = 64 << 20
)

// basePath is where the API lives on the server, as on api.cloudflare.com.
const basePath = "/client/v4"

// Options configure a Server. The zero value is a working account.
type Options struct {
	// AccountID is the only account the token may use; default
	// DefaultAccountID.
	AccountID string
	// Token is the only bearer token accepted; default DefaultToken.
	Token string
	// Subdomain is the account's workers.dev subdomain; default
	// DefaultSubdomain.
	Subdomain string
	// NoSubdomain: the account has not registered a workers.dev
	// subdomain (GET workers/subdomain is 404, code 10007).
	NoSubdomain bool
	// MaxScriptBytes caps the total size of a Worker's modules (code
	// 10027 above it); default DefaultMaxScriptBytes.
	MaxScriptBytes int64
	// MaxScripts caps the number of Workers on the account (code 10037
	// for one more); 0 means no cap.
	MaxScripts int
	// OnChange, if set, is called after every successful upload, secret
	// change and delete, before the answer is sent, one call at a time.
	// s is the Worker as it now is; deleted reports a delete (s is then
	// the Worker as it was).
	OnChange func(name string, s Uploaded, deleted bool)
}

// Server is a running local API.
type Server struct {
	// URL is the API's base URL (…/client/v4): cfapi.Config.BaseURL.
	URL       string
	AccountID string
	Token     string

	opts   Options
	srv    *httptest.Server
	hookMu sync.Mutex

	mu       sync.Mutex
	scripts  map[string]*Uploaded
	requests []Request
	faults   []*Fault
}

// Request is one request the server received.
type Request struct {
	Method string
	// Path is the URL path under the base URL, e.g.
	// "/accounts/<id>/workers/scripts/job-1".
	Path  string
	Query string
	// Parts are the parts of a multipart body, in order; nil otherwise.
	Parts []Part
}

// Part is one part of a multipart body as it arrived.
type Part struct {
	Name        string // the form name
	FileName    string
	ContentType string
	Size        int
}

// Uploaded is a Worker as the server holds it.
type Uploaded struct {
	Name string
	// Metadata is the latest upload's metadata part, as sent.
	Metadata Metadata
	// Modules are the latest upload's modules by name.
	Modules map[string]Module
	// Bindings are the Worker's bindings now: those of the latest upload,
	// those kept from before it (keep_bindings) and secrets set since.
	Bindings []Binding
	// Secrets are the secret_text bindings among Bindings, name → text.
	Secrets map[string]string
	// WorkersDev and PreviewsEnabled are the workers.dev settings.
	WorkersDev      bool
	PreviewsEnabled bool
	// MigrationTag is the last applied migration's tag, and
	// DurableObjectClasses the classes migrations have created.
	MigrationTag         string
	DurableObjectClasses []string
	// Uploads counts the successful uploads of this Worker.
	Uploads    int
	Etag       string
	Handlers   []string
	CreatedOn  time.Time
	ModifiedOn time.Time
}

// Module is one uploaded module.
type Module struct {
	ContentType string
	Data        []byte
}

// Metadata is an upload's "metadata" part
// (https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/,
// and the upload's API reference,
// https://developers.cloudflare.com/api/resources/workers/subresources/scripts/methods/update/).
// Fields the server does not model are kept in Raw only.
type Metadata struct {
	MainModule         string      `json:"main_module"`
	BodyPart           string      `json:"body_part"`
	CompatibilityDate  string      `json:"compatibility_date"`
	CompatibilityFlags []string    `json:"compatibility_flags"`
	Bindings           []Binding   `json:"bindings"`
	KeepBindings       []string    `json:"keep_bindings"`
	Migrations         *Migrations `json:"migrations"`
	Limits             *Limits     `json:"limits"`
	// Raw is the part's bytes.
	Raw json.RawMessage `json:"-"`
}

// Migrations is a Durable Object migration: one step inline, or Steps.
type Migrations struct {
	OldTag string `json:"old_tag"`
	NewTag string `json:"new_tag"`
	MigrationStep
	Steps []MigrationStep `json:"steps"`
}

// MigrationStep is one step of a migration (the kinds the server models).
type MigrationStep struct {
	NewClasses       []string `json:"new_classes"`
	NewSQLiteClasses []string `json:"new_sqlite_classes"`
	DeletedClasses   []string `json:"deleted_classes"`
}

// Limits is the metadata's "limits".
type Limits struct {
	CPUMs       int `json:"cpu_ms"`
	Subrequests int `json:"subrequests"`
}

// Binding is one binding. The fields are those of the types the server
// checks; Raw is the binding as sent (nil for secrets set through the
// secrets endpoint).
type Binding struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Text        string          `json:"text,omitempty"`
	JSON        json.RawMessage `json:"json,omitempty"`
	ClassName   string          `json:"class_name,omitempty"`
	ScriptName  string          `json:"script_name,omitempty"`
	NamespaceID string          `json:"namespace_id,omitempty"`
	Service     string          `json:"service,omitempty"`
	Raw         json.RawMessage `json:"-"`
}

// Fault makes the server answer matching requests with an error, to test
// retries and lost answers.
type Fault struct {
	// Method and Path select requests; empty matches any. Path is
	// relative to the account, e.g. "/workers/scripts/job-1".
	Method string
	Path   string
	// Status defaults to 500, Code to 10013 and Message to "An unknown
	// error has occurred" (this package's choice of a server error).
	Status  int
	Code    int
	Message string
	// Times is how many matching requests fail; default 1.
	Times int
	// AfterApply carries the request out before failing: the effect
	// happens and the answer is lost, as when a response times out.
	AfterApply bool
	// RetryAfter, if set, is sent as the Retry-After header ("0" makes the
	// SDK retry at once).
	RetryAfter string
}

// Start serves a new local API on 127.0.0.1 until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.Subdomain == "" {
		opts.Subdomain = DefaultSubdomain
	}
	if opts.MaxScriptBytes <= 0 {
		opts.MaxScriptBytes = DefaultMaxScriptBytes
	}
	s := &Server{
		AccountID: opts.AccountID,
		Token:     opts.Token,
		opts:      opts,
		scripts:   map[string]*Uploaded{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + basePath
	t.Cleanup(s.srv.Close)
	return s
}

// Fail adds a fault; faults are matched in the order they were added.
func (s *Server) Fail(f Fault) {
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	if f.Code == 0 {
		f.Code = 10013
	}
	if f.Message == "" {
		f.Message = "An unknown error has occurred"
	}
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Scripts returns every Worker on the account by name.
func (s *Server) Scripts() map[string]Uploaded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Uploaded, len(s.scripts))
	for name, u := range s.scripts {
		out[name] = u.clone()
	}
	return out
}

// Script returns the Worker name, if there is one.
func (s *Server) Script(name string) (Uploaded, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.scripts[name]
	if !ok {
		return Uploaded{}, false
	}
	return u.clone(), true
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (u *Uploaded) clone() Uploaded {
	c := *u
	c.Modules = maps.Clone(u.Modules)
	c.Bindings = slices.Clone(u.Bindings)
	c.DurableObjectClasses = slices.Clone(u.DurableObjectClasses)
	c.Handlers = slices.Clone(u.Handlers)
	c.Secrets = map[string]string{}
	for _, b := range u.Bindings {
		if b.Type == "secret_text" {
			c.Secrets[b.Name] = b.Text
		}
	}
	return c
}

// apiError is an error answer: its status and one envelope error.
type apiError struct {
	status  int
	code    int
	message string
}

func errorf(status, code int, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// change is what a successful request did, for Options.OnChange.
type change struct {
	name    string
	script  Uploaded
	deleted bool
}

// handler serves one endpoint: the request (body already read), the
// Worker name from the path ("" for account endpoints).
type handler func(r *http.Request, body []byte, name string) (result any, ch *change, e *apiError)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxScriptBytes+(1<<20)))
	rel := strings.TrimPrefix(r.URL.Path, basePath)
	req := Request{Method: r.Method, Path: rel, Query: r.URL.RawQuery}
	if err == nil {
		req.Parts = partsOf(r.Header.Get("Content-Type"), body)
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	if err != nil {
		// Over the request size this server reads at all.
		writeError(w, errorf(http.StatusRequestEntityTooLarge, 10027, "Your Worker exceeded the size limit of %d bytes", s.opts.MaxScriptBytes), "")
		return
	}
	// Cloudflare checks the token before anything else; a wrong one is
	// 10000 "Authentication error" (https://github.com/cloudflare/workers-sdk/issues/2678).
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		writeError(w, errorf(http.StatusUnauthorized, 10000, "Authentication error"), "")
		return
	}
	h, name, routeErr := s.route(r.Method, rel)
	if routeErr != nil {
		writeError(w, routeErr, "")
		return
	}
	accountRel := strings.TrimPrefix(rel, "/accounts/"+s.AccountID)
	f := s.fault(r.Method, accountRel)
	if f != nil && !f.AfterApply {
		writeError(w, errorf(f.Status, f.Code, "%s", f.Message), f.RetryAfter)
		return
	}
	result, ch, e := h(r, body, name)
	if ch != nil && s.opts.OnChange != nil {
		s.hookMu.Lock()
		s.opts.OnChange(ch.name, ch.script, ch.deleted)
		s.hookMu.Unlock()
	}
	switch {
	case f != nil:
		writeError(w, errorf(f.Status, f.Code, "%s", f.Message), f.RetryAfter)
	case e != nil:
		writeError(w, e, "")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "errors": []any{}, "messages": []any{}, "result": result})
	}
}

// route finds the handler for a path under the base URL.
func (s *Server) route(method, rel string) (handler, string, *apiError) {
	seg := strings.Split(strings.Trim(rel, "/"), "/")
	if len(seg) < 3 || seg[0] != "accounts" || seg[2] != "workers" {
		return nil, "", noRoute(rel)
	}
	if seg[1] != s.AccountID {
		// A token used on another account's path: code 10000
		// "Authentication error" (https://developers.cloudflare.com/workers/tooling/api/requests/,
		// an old page; the status, 403, is this package's choice).
		return nil, "", errorf(http.StatusForbidden, 10000, "Authentication error")
	}
	rest := seg[3:]
	switch {
	case len(rest) == 1 && rest[0] == "subdomain" && method == http.MethodGet:
		return s.accountSubdomain, "", nil
	case len(rest) == 1 && rest[0] == "scripts" && method == http.MethodGet:
		return s.list, "", nil
	case len(rest) == 2 && rest[0] == "scripts" && method == http.MethodPut:
		return s.upload, rest[1], nil
	case len(rest) == 2 && rest[0] == "scripts" && method == http.MethodDelete:
		return s.delete, rest[1], nil
	case len(rest) == 3 && rest[0] == "scripts" && rest[2] == "subdomain" && (method == http.MethodPost || method == http.MethodGet):
		return s.workersDev, rest[1], nil
	case len(rest) == 3 && rest[0] == "scripts" && rest[2] == "secrets" && method == http.MethodPut:
		return s.putSecret, rest[1], nil
	}
	return nil, "", noRoute(rel)
}

// noRoute is Cloudflare's answer for a path it does not serve: code 7000,
// "No route for that URI"
// (https://developers.cloudflare.com/workers/tooling/api/requests/, an
// old page; the status, 404, is this package's choice).
func noRoute(string) *apiError {
	return errorf(http.StatusNotFound, 7000, "No route for that URI")
}

// notFound is the answer for a missing Worker: 404, code 10007
// (https://developers.cloudflare.com/workers/observability/errors/).
func notFound() *apiError {
	return errorf(http.StatusNotFound, 10007, "This Worker does not exist on your account.")
}

// fault returns the first fault matching the request and uses it up.
func (s *Server) fault(method, path string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Method == "" || f.Method == method) && (f.Path == "" || f.Path == path) {
			f.Times--
			if f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			copied := *f
			return &copied
		}
	}
	return nil
}

// accountSubdomain: GET /accounts/{account_id}/workers/subdomain, result
// {"subdomain"}
// (https://developers.cloudflare.com/api/resources/workers/subresources/subdomains/methods/get/).
func (s *Server) accountSubdomain(*http.Request, []byte, string) (any, *change, *apiError) {
	if s.opts.NoSubdomain {
		return nil, nil, errorf(http.StatusNotFound, 10007, "This account does not have a workers.dev subdomain (cfapitest's message)")
	}
	return map[string]string{"subdomain": s.opts.Subdomain}, nil, nil
}

// list: GET /accounts/{account_id}/workers/scripts
// (https://developers.cloudflare.com/api/resources/workers/subresources/scripts/methods/list/);
// migration_tag is left out for a Worker without one, as the reference
// marks it optional.
func (s *Server) list(*http.Request, []byte, string) (any, *change, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(s.scripts)) {
		out = append(out, s.scripts[name].summary())
	}
	return out, nil, nil
}

func (u *Uploaded) summary() map[string]any {
	m := map[string]any{
		"id":                  u.Name,
		"etag":                u.Etag,
		"handlers":            u.Handlers,
		"has_modules":         true,
		"compatibility_date":  u.Metadata.CompatibilityDate,
		"compatibility_flags": u.Metadata.CompatibilityFlags,
		"created_on":          u.CreatedOn,
		"modified_on":         u.ModifiedOn,
		"usage_model":         "standard",
	}
	if u.MigrationTag != "" {
		m["migration_tag"] = u.MigrationTag
	}
	return m
}

// delete: DELETE /accounts/{account_id}/workers/scripts/{script_name};
// the SDK documents no response body on success, this server sends the
// envelope with a null result.
func (s *Server) delete(_ *http.Request, _ []byte, name string) (any, *change, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.scripts[name]
	if !ok {
		return nil, nil, notFound()
	}
	delete(s.scripts, name)
	return nil, &change{name: name, script: u.clone(), deleted: true}, nil
}

// workersDev: POST (and GET) /accounts/{account_id}/workers/scripts/{script_name}/subdomain
// with {"enabled", "previews_enabled"}, result the same two fields
// (https://developers.cloudflare.com/api/resources/workers/subresources/scripts/subresources/subdomain/methods/create/).
func (s *Server) workersDev(r *http.Request, body []byte, name string) (any, *change, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.scripts[name]
	if !ok {
		return nil, nil, notFound()
	}
	if r.Method == http.MethodPost {
		var req struct {
			Enabled         *bool `json:"enabled"`
			PreviewsEnabled *bool `json:"previews_enabled"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Enabled == nil {
			return nil, nil, errorf(http.StatusBadRequest, 10026, "want a JSON body with \"enabled\" (cfapitest's message)")
		}
		u.WorkersDev = *req.Enabled
		if req.PreviewsEnabled != nil {
			u.PreviewsEnabled = *req.PreviewsEnabled
		}
	}
	return map[string]bool{"enabled": u.WorkersDev, "previews_enabled": u.PreviewsEnabled}, nil, nil
}

// putSecret: PUT /accounts/{account_id}/workers/scripts/{script_name}/secrets
// with {"name", "text", "type": "secret_text"}
// (https://developers.cloudflare.com/api/resources/workers/subresources/scripts/subresources/secrets/methods/update/).
// A secret is a secret_text binding: it replaces any binding of its name.
func (s *Server) putSecret(_ *http.Request, body []byte, name string) (any, *change, *apiError) {
	var req struct {
		Name string  `json:"name"`
		Text *string `json:"text"`
		Type string  `json:"type"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, errorf(http.StatusBadRequest, 10026, "the request body is not JSON (cfapitest's message)")
	}
	switch {
	case req.Name == "":
		return nil, nil, errorf(http.StatusBadRequest, 10052, "A binding must have a name (cfapitest's message)")
	case req.Type != "secret_text":
		return nil, nil, errorf(http.StatusBadRequest, 10021, "cfapitest takes secrets of type secret_text only, not %q", req.Type)
	case req.Text == nil:
		return nil, nil, errorf(http.StatusBadRequest, 10021, "secret %q has no text (cfapitest's message)", req.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.scripts[name]
	if !ok {
		return nil, nil, notFound()
	}
	u.Bindings = slices.DeleteFunc(u.Bindings, func(b Binding) bool { return b.Name == req.Name })
	u.Bindings = append(u.Bindings, Binding{Type: "secret_text", Name: req.Name, Text: *req.Text})
	return map[string]string{"name": req.Name, "type": "secret_text"}, &change{name: name, script: u.clone()}, nil
}

func writeError(w http.ResponseWriter, e *apiError, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, e.status, map[string]any{
		"success":  false,
		"errors":   []map[string]any{{"code": e.code, "message": e.message}},
		"messages": []any{},
		"result":   nil,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func etag(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
