package cfapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/workers"
)

// MigrationTag is the Durable Object migration tag Upload sets when it
// creates a Worker's classes.
const MigrationTag = "ferry-v1"

// Module content types a Worker may upload, and what each module becomes
// (https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/;
// the same list is in the API reference of the upload's "files" field,
// https://developers.cloudflare.com/api/resources/workers/subresources/scripts/methods/update/).
const (
	ContentTypeESModule     = "application/javascript+module" // an ES module
	ContentTypeESModuleText = "text/javascript+module"        // an ES module
	ContentTypeCommonJS     = "application/javascript"        // CommonJS
	ContentTypeCommonJSText = "text/javascript"               // CommonJS
	ContentTypeWasm         = "application/wasm"              // imports as a WebAssembly.Module
	ContentTypeText         = "text/plain"                    // imports as a string
	ContentTypeData         = "application/octet-stream"      // imports as an ArrayBuffer
	ContentTypePython       = "text/x-python"
	ContentTypePythonReqs   = "text/x-python-requirement"
	ContentTypeSourceMap    = "application/source-map" // not importable
)

var moduleContentTypes = []string{
	ContentTypeESModule, ContentTypeESModuleText, ContentTypeCommonJS, ContentTypeCommonJSText,
	ContentTypeWasm, ContentTypeText, ContentTypeData, ContentTypePython, ContentTypePythonReqs,
	ContentTypeSourceMap,
}

// Binding types the client can send.
const (
	BindingPlainText              = "plain_text"
	BindingSecretText             = "secret_text"
	BindingJSON                   = "json"
	BindingDurableObjectNamespace = "durable_object_namespace"
	BindingKVNamespace            = "kv_namespace"
	BindingService                = "service"
)

// Module is one part of a Worker: its name (which is also how other
// modules import it, "./job.wasm"), its content type and its bytes.
type Module struct {
	Name        string
	ContentType string
	Data        []byte
}

// Binding is one entry of the upload's metadata "bindings": what the
// Worker sees as env[Name]. Only the fields of its Type are sent.
type Binding struct {
	Type string
	Name string
	// Text is the value of a plain_text or secret_text binding.
	Text string
	// JSON is the value of a json binding: any JSON value.
	JSON json.RawMessage
	// ClassName is the Durable Object class of a
	// durable_object_namespace binding, and ScriptName the Worker that
	// defines it. With ScriptName empty the class is this script's and
	// must be one of its SQLiteClasses.
	ClassName  string
	ScriptName string
	// NamespaceID is the KV namespace of a kv_namespace binding.
	NamespaceID string
	// Service is the Worker a service binding calls.
	Service string
}

// MarshalJSON writes the fields Cloudflare documents for the binding's
// type and no others
// (https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/#bindings).
func (b Binding) MarshalJSON() ([]byte, error) {
	switch b.Type {
	case BindingPlainText, BindingSecretText:
		return json.Marshal(struct {
			Type string `json:"type"`
			Name string `json:"name"`
			Text string `json:"text"`
		}{b.Type, b.Name, b.Text})
	case BindingJSON:
		return json.Marshal(struct {
			Type string          `json:"type"`
			Name string          `json:"name"`
			JSON json.RawMessage `json:"json"`
		}{b.Type, b.Name, b.JSON})
	case BindingDurableObjectNamespace:
		return json.Marshal(struct {
			Type       string `json:"type"`
			Name       string `json:"name"`
			ClassName  string `json:"class_name"`
			ScriptName string `json:"script_name,omitempty"`
		}{b.Type, b.Name, b.ClassName, b.ScriptName})
	case BindingKVNamespace:
		return json.Marshal(struct {
			Type        string `json:"type"`
			Name        string `json:"name"`
			NamespaceID string `json:"namespace_id"`
		}{b.Type, b.Name, b.NamespaceID})
	case BindingService:
		return json.Marshal(struct {
			Type    string `json:"type"`
			Name    string `json:"name"`
			Service string `json:"service"`
		}{b.Type, b.Name, b.Service})
	}
	return nil, fmt.Errorf("binding %q: unsupported type %q", b.Name, b.Type)
}

// Script is a modules-format Worker to upload.
type Script struct {
	// Name is the Worker's name: lowercase letters, digits and '-',
	// starting with a letter, ending with a letter or digit, at most 63
	// characters (a label of {name}.{subdomain}.workers.dev).
	Name string
	// MainModule names the entry module, one of Modules, of type
	// application/javascript+module or text/javascript+module.
	MainModule string
	Modules    []Module
	// CompatibilityDate ("2006-01-02") is required: without one the API
	// picks 2021-11-02.
	CompatibilityDate  string
	CompatibilityFlags []string
	// Bindings replace the Worker's bindings, except those whose types
	// are listed in KeepBindings.
	Bindings []Binding
	// KeepBindings are binding types carried over from the Worker's
	// previous version, e.g. {"secret_text"} to keep secrets set with
	// PutSecret.
	KeepBindings []string
	// SQLiteClasses are the SQLite-backed Durable Object classes the
	// script defines (and exports). Upload creates them with a migration
	// tagged MigrationTag on the Worker's first upload — when the Worker
	// has no migration tag yet — and sends no migration afterwards: a
	// class added to an existing Worker gets no namespace, and a binding
	// to it is refused (ErrInvalid, code 10061).
	SQLiteClasses []string
	// CPUMs, when positive, is the Worker's CPU limit per invocation in
	// milliseconds (metadata limits.cpu_ms; at most 300000).
	CPUMs int
}

// UploadResult is the API's answer to an upload.
type UploadResult struct {
	ID            string
	Etag          string
	StartupTimeMs int
	Handlers      []string
	ModifiedOn    time.Time
	// MigrationTag is the Worker's migration tag after the upload: as
	// the answer gives it, else as the client knows it.
	MigrationTag string
}

// metadata is the upload's "metadata" part
// (https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/).
// keep_bindings is "list of binding types to keep from previous_upload"
// in the API reference
// (https://developers.cloudflare.com/api/resources/workers/subresources/scripts/methods/update/);
// https://developers.cloudflare.com/cloudflare-for-platforms/workers-for-platforms/configuration/bindings/
// uses it to keep existing bindings across an upload.
type metadata struct {
	MainModule         string     `json:"main_module"`
	CompatibilityDate  string     `json:"compatibility_date"`
	CompatibilityFlags []string   `json:"compatibility_flags,omitempty"`
	Bindings           []Binding  `json:"bindings"`
	KeepBindings       []string   `json:"keep_bindings,omitempty"`
	Migrations         *migration `json:"migrations,omitempty"`
	Limits             *limits    `json:"limits,omitempty"`
}

// migration is a single-step Durable Object migration. old_tag is "used
// to verify against the latest migration tag for this Worker. If they
// don't match, the upload is rejected"; an absent old_tag matches only a
// Worker without a tag (API reference of the upload, metadata.migrations;
// https://developers.cloudflare.com/durable-objects/reference/durable-objects-migrations/).
type migration struct {
	OldTag           string   `json:"old_tag,omitempty"`
	NewTag           string   `json:"new_tag"`
	NewSQLiteClasses []string `json:"new_sqlite_classes"`
}

type limits struct {
	CPUMs int `json:"cpu_ms"`
}

// uploaded is the "result" of an upload (API reference of the upload,
// Returns).
type uploaded struct {
	ID            string    `json:"id"`
	Etag          string    `json:"etag"`
	StartupTimeMs int       `json:"startup_time_ms"`
	Handlers      []string  `json:"handlers"`
	ModifiedOn    time.Time `json:"modified_on"`
	MigrationTag  string    `json:"migration_tag"`
}

// Upload creates or replaces the Worker s.Name — its code, bindings and
// settings — and deploys it at once:
// PUT /accounts/{account_id}/workers/scripts/{script_name} with a
// multipart body (one "metadata" JSON part, then one part per module
// whose name and filename are the module's name, as Wrangler sends them).
// Nothing is sent when s is invalid.
//
// A script with SQLiteClasses first reads the Worker's migration tag from
// the list of Workers. If the migration is refused because the tag is
// already set (code 10079) and the tag is now MigrationTag, an earlier
// attempt applied it and lost the answer (a retried 5xx, a timed-out
// call), so the upload is sent once more without the migration.
func (c *Client) Upload(ctx context.Context, s Script) (*UploadResult, error) {
	if err := c.check(s); err != nil {
		return nil, err
	}
	var (
		mig   *migration
		known string // the Worker's migration tag, as far as the client knows
	)
	if len(s.SQLiteClasses) > 0 {
		info, err := c.lookup(ctx, "upload", s.Name)
		if err != nil {
			return nil, err
		}
		if info != nil {
			known = info.MigrationTag
		}
		if known == "" {
			mig = &migration{NewTag: MigrationTag, NewSQLiteClasses: s.SQLiteClasses}
		}
	}
	res, err := c.put(ctx, s, mig)
	var apiErr *APIError
	if mig != nil && errors.As(err, &apiErr) && apiErr.HasCode(codeMigrationTagPrecondition) {
		info, lerr := c.lookup(ctx, "upload", s.Name)
		if lerr == nil && info != nil && info.MigrationTag == MigrationTag {
			mig = nil
			res, err = c.put(ctx, s, nil)
		}
	}
	if err != nil {
		return nil, err
	}
	if mig != nil {
		known = mig.NewTag
	}
	out := &UploadResult{
		ID:            res.ID,
		Etag:          res.Etag,
		StartupTimeMs: res.StartupTimeMs,
		Handlers:      res.Handlers,
		ModifiedOn:    res.ModifiedOn,
		MigrationTag:  res.MigrationTag,
	}
	if out.MigrationTag == "" {
		out.MigrationTag = known
	}
	return out, nil
}

func (c *Client) put(ctx context.Context, s Script, mig *migration) (*uploaded, error) {
	body, contentType, err := encode(s, mig)
	if err != nil {
		return nil, fmt.Errorf("cfapi: %s: %w", where("upload", s.Name), err)
	}
	var res uploaded
	_, err = c.do(ctx, exchange{op: "upload", script: s.Name, body: body, contentType: contentType, result: &res}, func(opts ...option.RequestOption) error {
		// Scripts.Update only chooses the path here: the body it would
		// marshal (v7's flattened form) is replaced by ours.
		var p workers.ScriptUpdateParams
		p.AccountID.Value = c.account
		_, err := c.scripts.Update(ctx, s.Name, p, opts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// encode builds the multipart body: the "metadata" part first, as JSON,
// then each module in order, named by its name as both form name and
// filename and typed by its content type (which decides how it loads).
func encode(s Script, mig *migration) ([]byte, string, error) {
	meta := metadata{
		MainModule:         s.MainModule,
		CompatibilityDate:  s.CompatibilityDate,
		CompatibilityFlags: s.CompatibilityFlags,
		Bindings:           s.Bindings,
		KeepBindings:       s.KeepBindings,
		Migrations:         mig,
	}
	if meta.Bindings == nil {
		meta.Bindings = []Binding{} // an upload replaces the bindings: say "none" explicitly
	}
	if s.CPUMs > 0 {
		meta.Limits = &limits{CPUMs: s.CPUMs}
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, "", fmt.Errorf("encode metadata: %w", err)
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	part, err := w.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(metaJSON); err != nil {
		return nil, "", err
	}
	for _, m := range s.Modules {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", multipart.FileContentDisposition(m.Name, m.Name))
		h.Set("Content-Type", m.ContentType)
		part, err := w.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		if _, err := part.Write(m.Data); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

var (
	// scriptNamePattern is stricter than the API (which also takes '_'
	// and capitals): the name becomes a hostname label on workers.dev.
	scriptNamePattern = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// moduleNamePattern keeps module names to relative paths that need no
	// quoting in a Content-Disposition header.
	moduleNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$`)
	identPattern      = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)
)

const maxCPUMs = 300_000 // https://developers.cloudflare.com/workers/platform/limits/#cpu-time

func nameProblem(name string) string {
	if !scriptNamePattern.MatchString(name) {
		return fmt.Sprintf("Worker name %q: want up to 63 of [a-z0-9-], starting with a letter and ending with a letter or digit", name)
	}
	return ""
}

// check refuses a script the API would refuse, or that Ferry never means
// to send, before anything goes on the wire.
func (c *Client) check(s Script) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if p := nameProblem(s.Name); p != "" {
		problems = append(problems, p)
	}

	var total int64
	seen := map[string]bool{}
	var main *Module
	if len(s.Modules) == 0 {
		add("no modules")
	}
	for i, m := range s.Modules {
		total += int64(len(m.Data))
		switch {
		case !moduleNamePattern.MatchString(m.Name) || slices.Contains(strings.Split(m.Name, "/"), ".."):
			add("module name %q: want a relative path of [A-Za-z0-9_.-/]", m.Name)
		case m.Name == "metadata":
			add(`module name "metadata" is the metadata part's`)
		case seen[m.Name]:
			add("module %q twice", m.Name)
		}
		seen[m.Name] = true
		if !slices.Contains(moduleContentTypes, m.ContentType) {
			add("module %q: content type %q is none of %s", m.Name, m.ContentType, strings.Join(moduleContentTypes, ", "))
		}
		if m.Name == s.MainModule {
			main = &s.Modules[i]
		}
	}
	switch {
	case s.MainModule == "":
		add("no main module")
	case main == nil:
		add("main module %q is not among the modules", s.MainModule)
	case main.ContentType != ContentTypeESModule && main.ContentType != ContentTypeESModuleText:
		add("main module %q is %q: want an ES module (%s)", s.MainModule, main.ContentType, ContentTypeESModule)
	}

	if s.CompatibilityDate == "" {
		add("no compatibility date")
	} else if _, err := time.Parse(time.DateOnly, s.CompatibilityDate); err != nil {
		add("compatibility date %q: want YYYY-MM-DD", s.CompatibilityDate)
	}
	for _, f := range s.CompatibilityFlags {
		if strings.TrimSpace(f) == "" {
			add("empty compatibility flag")
		}
	}

	classes := map[string]bool{}
	for _, cl := range s.SQLiteClasses {
		if !identPattern.MatchString(cl) {
			add("Durable Object class %q: want a JavaScript identifier", cl)
		}
		if classes[cl] {
			add("Durable Object class %q twice", cl)
		}
		classes[cl] = true
	}
	names := map[string]bool{}
	for _, b := range s.Bindings {
		if b.Name == "" {
			add("binding of type %q without a name", b.Type)
		} else if names[b.Name] {
			add("binding %q twice", b.Name)
		}
		names[b.Name] = true
		switch b.Type {
		case BindingPlainText, BindingSecretText:
		case BindingJSON:
			if !json.Valid(b.JSON) {
				add("json binding %q: value is not JSON", b.Name)
			}
		case BindingDurableObjectNamespace:
			switch {
			case b.ScriptName != "" && b.ScriptName != s.Name:
				if !identPattern.MatchString(b.ClassName) {
					add("binding %q: Durable Object class %q: want a JavaScript identifier", b.Name, b.ClassName)
				}
				if p := nameProblem(b.ScriptName); p != "" {
					add("binding %q: %s", b.Name, p)
				}
			case !classes[b.ClassName]:
				add("binding %q: Durable Object class %q is not among the script's SQLiteClasses", b.Name, b.ClassName)
			}
		case BindingKVNamespace:
			if b.NamespaceID == "" {
				add("kv_namespace binding %q without a namespace id", b.Name)
			}
		case BindingService:
			if p := nameProblem(b.Service); p != "" {
				add("service binding %q: %s", b.Name, p)
			}
		default:
			add("binding %q: unsupported type %q", b.Name, b.Type)
		}
	}
	for _, k := range s.KeepBindings {
		if strings.TrimSpace(k) == "" {
			add("empty type in KeepBindings")
		}
	}
	if s.CPUMs < 0 || s.CPUMs > maxCPUMs {
		add("CPU limit %d ms: want 0 (the default) to %d", s.CPUMs, maxCPUMs)
	}

	if len(problems) > 0 {
		return invalid("upload", s.Name, problems...)
	}
	if total > c.maxScriptBytes {
		return fmt.Errorf("cfapi: %s: %w: modules total %d bytes, over the limit of %d", where("upload", s.Name), ErrTooLarge, total, c.maxScriptBytes)
	}
	return nil
}
