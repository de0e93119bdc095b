// Package cfapi is Ferry's client for the Cloudflare Workers control plane:
// upload a modules-format Worker (an ES module plus the job's .wasm),
// expose it on workers.dev, set its secrets, read its state and delete it.
// It knows the REST API (v4) and nothing of jobs: building the Worker's
// code and the Host that drives it live elsewhere (hosts/workers).
//
// Requests go through cloudflare-go v7's typed services, so the SDK builds
// the URLs and adds auth, retries and error decoding; but every request
// body and every result is written and read here, in the shapes
// Cloudflare's API documentation gives. Upload has to: v7.9.0's
// Scripts.Update flattens the multipart body into fields the API does not
// read (metadata.main_module, files.0, …), so Upload builds the body with
// mime/multipart and hands it to the SDK with option.WithRequestBody.
//
// Only the SDK's option and workers packages are imported. The root
// package (cloudflare.NewClient) imports every one of the SDK's ~130
// service packages and adds about two minutes to a cold build on two
// cores; workers.Error is the same type as cloudflare.Error.
//
// The test double for this client is the subpackage cfapitest: a local
// Cloudflare API that parses uploads as Cloudflare does and records them.
package cfapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/workers"
)

// Defaults.
const (
	// DefaultBaseURL is the API's base URL, as every example in the API
	// reference calls it (e.g.
	// https://developers.cloudflare.com/api/resources/workers/subresources/scripts/subresources/subdomain/methods/create/).
	DefaultBaseURL = "https://api.cloudflare.com/client/v4"
	// DefaultMaxScriptBytes is the Worker size limit on every plan: all
	// modules together, uncompressed, the .wasm included
	// (https://developers.cloudflare.com/workers/platform/limits/, 2026).
	DefaultMaxScriptBytes = 64 << 20
	// responseHeaderTimeout bounds the wait for an answer's headers, as
	// the SDK's own default client does (cloudflare-go v7.9.0
	// default_http_client.go): a silent server otherwise hangs a call
	// across every retry.
	responseHeaderTimeout = 10 * time.Minute
)

var accountIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

// Config says which account to manage and how to reach the API. It is
// read as it is: unlike cloudflare.NewClient, the client looks at no
// CLOUDFLARE_* environment variable.
type Config struct {
	// AccountID is the account's 32-hex-digit identifier.
	AccountID string
	// APIToken is sent as "Authorization: Bearer <token>"; it needs the
	// account permission Workers Scripts Write.
	APIToken string
	// BaseURL defaults to DefaultBaseURL; tests point it at cfapitest.
	BaseURL string
	// HTTPClient defaults to a client like the SDK's default (a clone of
	// http.DefaultTransport that waits at most 10 minutes for headers).
	HTTPClient *http.Client
	// MaxRetries is how often a call is retried after a connection error,
	// 408, 409, 429 or 5xx: 0 keeps the SDK's default (2), a negative
	// number means never.
	MaxRetries int
	// MaxScriptBytes caps the total size of an upload's modules; 0 means
	// DefaultMaxScriptBytes. Upload refuses bigger scripts without
	// sending them.
	MaxScriptBytes int64
}

// Validate reports what is wrong with the configuration, all at once.
func (c Config) Validate() error {
	var problems []string
	if !accountIDPattern.MatchString(c.AccountID) {
		problems = append(problems, fmt.Sprintf("account id %q: want 32 hex digits", c.AccountID))
	}
	if strings.TrimSpace(c.APIToken) == "" {
		problems = append(problems, "empty API token")
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, fmt.Sprintf("base URL %q: want an absolute http(s) URL", c.BaseURL))
		}
	}
	if c.MaxScriptBytes < 0 {
		problems = append(problems, fmt.Sprintf("negative script size limit %d", c.MaxScriptBytes))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// Client manages the Workers of one account. It is safe for concurrent
// use; calls on the same Worker are not ordered by the client.
type Client struct {
	account        string
	maxScriptBytes int64
	scripts        *workers.ScriptService
	subdomains     *workers.SubdomainService
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cfapi: %w", err)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		option.WithAPIToken(cfg.APIToken),
		option.WithHTTPClient(hc),
	}
	if cfg.MaxRetries != 0 {
		opts = append(opts, option.WithMaxRetries(max(cfg.MaxRetries, 0)))
	}
	maxBytes := cfg.MaxScriptBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxScriptBytes
	}
	return &Client{
		account:        cfg.AccountID,
		maxScriptBytes: maxBytes,
		scripts:        workers.NewScriptService(opts...),
		subdomains:     workers.NewSubdomainService(opts...),
	}, nil
}

func defaultHTTPClient() *http.Client {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.ResponseHeaderTimeout = responseHeaderTimeout
		return &http.Client{Transport: t}
	}
	return &http.Client{Transport: http.DefaultTransport}
}

// ScriptInfo is what the account's list of Workers says about one.
type ScriptInfo struct {
	Name       string
	Etag       string
	CreatedOn  time.Time
	ModifiedOn time.Time
	// MigrationTag is the tag of the Durable Object migration last applied
	// to the Worker; empty when none was.
	MigrationTag      string
	Handlers          []string
	HasModules        bool
	CompatibilityDate string
}

// listedScript is one entry of GET /accounts/{account_id}/workers/scripts
// (https://developers.cloudflare.com/api/resources/workers/subresources/scripts/methods/list/):
// id is the script's name; migration_tag is "the tag of the Durable Object
// migration that was most recently applied for this Worker".
type listedScript struct {
	ID                string    `json:"id"`
	Etag              string    `json:"etag"`
	CreatedOn         time.Time `json:"created_on"`
	ModifiedOn        time.Time `json:"modified_on"`
	MigrationTag      string    `json:"migration_tag"`
	Handlers          []string  `json:"handlers"`
	HasModules        bool      `json:"has_modules"`
	CompatibilityDate string    `json:"compatibility_date"`
}

// Script reads what the account's list of Workers says about the Worker
// name; an error matching ErrNotFound when there is none. The list is the
// only read endpoint that carries the migration tag (the settings
// endpoints do not), and it is what Wrangler reads the tag from.
func (c *Client) Script(ctx context.Context, name string) (*ScriptInfo, error) {
	if p := nameProblem(name); p != "" {
		return nil, invalid("read", name, p)
	}
	info, err := c.lookup(ctx, "read", name)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, fmt.Errorf("cfapi: %s: %w: not among the account's Workers", where("read", name), ErrNotFound)
	}
	return info, nil
}

// lookup finds name in the account's list of Workers; nil when absent.
// Errors say op, the caller's operation.
func (c *Client) lookup(ctx context.Context, op, name string) (*ScriptInfo, error) {
	var list []listedScript
	_, err := c.do(ctx, exchange{op: op, script: name, result: &list}, func(opts ...option.RequestOption) error {
		var p workers.ScriptListParams
		p.AccountID.Value = c.account
		_, err := c.scripts.List(ctx, p, opts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, s := range list {
		if s.ID == name {
			return &ScriptInfo{
				Name:              s.ID,
				Etag:              s.Etag,
				CreatedOn:         s.CreatedOn,
				ModifiedOn:        s.ModifiedOn,
				MigrationTag:      s.MigrationTag,
				Handlers:          s.Handlers,
				HasModules:        s.HasModules,
				CompatibilityDate: s.CompatibilityDate,
			}, nil
		}
	}
	return nil, nil
}

// Delete removes the Worker with force=true, which also removes what
// depends on it (service bindings, its Durable Objects and their data):
// DELETE /accounts/{account_id}/workers/scripts/{script_name}
// (https://developers.cloudflare.com/api/resources/workers/subresources/scripts/methods/delete/).
// A Worker that is not there is an error matching ErrNotFound — except
// after a retry: when an earlier attempt got no answer or a 5xx, that
// attempt may well have done the deletion, and the Worker being gone is
// what the caller asked for.
func (c *Client) Delete(ctx context.Context, name string) error {
	if p := nameProblem(name); p != "" {
		return invalid("delete", name, p)
	}
	x := exchange{op: "delete", script: name, query: url.Values{"force": {"true"}}}
	tries, err := c.do(ctx, x, func(opts ...option.RequestOption) error {
		var p workers.ScriptDeleteParams
		p.AccountID.Value = c.account
		_, err := c.scripts.Delete(ctx, name, p, opts...)
		return err
	})
	if errors.Is(err, ErrNotFound) && tries.earlierFailed() {
		return nil
	}
	return err
}

// AccountSubdomain returns the account's workers.dev subdomain: a Worker
// exposed there answers at https://{name}.{subdomain}.workers.dev.
// GET /accounts/{account_id}/workers/subdomain, result.subdomain
// (https://developers.cloudflare.com/api/resources/workers/subresources/subdomains/methods/get/).
func (c *Client) AccountSubdomain(ctx context.Context) (string, error) {
	var res struct {
		Subdomain string `json:"subdomain"`
	}
	_, err := c.do(ctx, exchange{op: "read account subdomain", result: &res}, func(opts ...option.RequestOption) error {
		var p workers.SubdomainGetParams
		p.AccountID.Value = c.account
		_, err := c.subdomains.Get(ctx, p, opts...)
		return err
	})
	if err != nil {
		return "", err
	}
	if res.Subdomain == "" {
		return "", fmt.Errorf("cfapi: read account subdomain: %w: the answer names no subdomain", ErrNotFound)
	}
	return res.Subdomain, nil
}

// EnableWorkersDev exposes the Worker on the account's workers.dev
// subdomain, without preview URLs:
// POST /accounts/{account_id}/workers/scripts/{script_name}/subdomain with
// {"enabled": true, "previews_enabled": false}
// (https://developers.cloudflare.com/api/resources/workers/subresources/scripts/subresources/subdomain/methods/create/).
func (c *Client) EnableWorkersDev(ctx context.Context, name string) error {
	const op = "enable workers.dev for"
	if p := nameProblem(name); p != "" {
		return invalid(op, name, p)
	}
	body, err := json.Marshal(struct {
		Enabled         bool `json:"enabled"`
		PreviewsEnabled bool `json:"previews_enabled"`
	}{Enabled: true})
	if err != nil {
		return fmt.Errorf("cfapi: %s: %w", where(op, name), err)
	}
	_, err = c.do(ctx, exchange{op: op, script: name, body: body, contentType: "application/json"}, func(opts ...option.RequestOption) error {
		var p workers.ScriptSubdomainNewParams
		p.AccountID.Value = c.account
		_, err := c.scripts.Subdomain.New(ctx, name, p, opts...)
		return err
	})
	return err
}

// PutSecret sets one secret_text binding on an existing Worker, replacing
// a secret of the same name:
// PUT /accounts/{account_id}/workers/scripts/{script_name}/secrets with
// {"name", "text", "type": "secret_text"}
// (https://developers.cloudflare.com/api/resources/workers/subresources/scripts/subresources/secrets/methods/update/).
// The secret survives later uploads only if they keep secret_text
// bindings (Script.KeepBindings).
func (c *Client) PutSecret(ctx context.Context, script, name, text string) error {
	const op = "put secret on"
	var problems []string
	if p := nameProblem(script); p != "" {
		problems = append(problems, p)
	}
	if strings.TrimSpace(name) == "" {
		problems = append(problems, "empty secret name")
	}
	if len(problems) > 0 {
		return invalid(op, script, problems...)
	}
	body, err := json.Marshal(struct {
		Name string `json:"name"`
		Text string `json:"text"`
		Type string `json:"type"`
	}{name, text, BindingSecretText})
	if err != nil {
		return fmt.Errorf("cfapi: %s: %w", where(op, script), err)
	}
	_, err = c.do(ctx, exchange{op: op, script: script, body: body, contentType: "application/json"}, func(opts ...option.RequestOption) error {
		var p workers.ScriptSecretUpdateParams
		p.AccountID.Value = c.account
		_, err := c.scripts.Secrets.Update(ctx, script, p, opts...)
		return err
	})
	return err
}

// exchange is one call through the SDK. The SDK method picks the path and
// adds auth, retries and error decoding; the body sent and the result read
// are the exchange's: with a body set, option.WithRequestBody replaces
// whatever the SDK would have marshalled from its (empty) params.
type exchange struct {
	op, script  string
	body        []byte
	contentType string
	query       url.Values
	// result receives the envelope's "result"; nil to ignore it.
	result any
}

// envelope is the v4 answer: {"success", "errors": [{"code", "message"}],
// "messages", "result"}, the "Returns" of every API reference page (e.g.
// https://developers.cloudflare.com/api/resources/workers/subresources/scripts/methods/list/).
type envelope struct {
	Success bool            `json:"success"`
	Errors  []ErrorDetail   `json:"errors"`
	Result  json.RawMessage `json:"result"`
}

// tries holds the HTTP status of each attempt of one call, 0 for an
// attempt that got no answer.
type tries []int

// earlierFailed reports whether an attempt before the last one got no
// answer or a server error: its effect is unknown.
func (t tries) earlierFailed() bool {
	for _, s := range t[:max(len(t)-1, 0)] {
		if s == 0 || s >= 500 {
			return true
		}
	}
	return false
}

func (c *Client) do(ctx context.Context, x exchange, send func(...option.RequestOption) error) (tries, error) {
	var (
		raw []byte
		got tries
	)
	opts := []option.RequestOption{
		// Reading the answer as bytes lets the client decode the envelope
		// itself and tolerates an empty body (a successful delete "has no
		// response body", says the SDK).
		option.WithResponseBodyInto(&raw),
		option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
			res, err := next(r)
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			got = append(got, status)
			return res, err
		}),
	}
	if x.body != nil {
		opts = append(opts, option.WithRequestBody(x.contentType, x.body))
	}
	for k, vs := range x.query {
		for _, v := range vs {
			opts = append(opts, option.WithQueryAdd(k, v))
		}
	}
	if err := send(opts...); err != nil {
		return got, fromSDK(x.op, x.script, err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return got, nil
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return got, fmt.Errorf("cfapi: %s: decode the answer: %w", where(x.op, x.script), err)
	}
	if !env.Success {
		status := 0
		if len(got) > 0 {
			status = got[len(got)-1]
		}
		return got, &APIError{Op: x.op, Script: x.script, Status: status, Errors: env.Errors, kind: classify(status, env.Errors)}
	}
	if x.result != nil && len(env.Result) > 0 && string(env.Result) != "null" {
		if err := json.Unmarshal(env.Result, x.result); err != nil {
			return got, fmt.Errorf("cfapi: %s: decode the result: %w", where(x.op, x.script), err)
		}
	}
	return got, nil
}
