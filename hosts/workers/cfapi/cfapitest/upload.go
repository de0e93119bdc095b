package cfapitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// moduleTypes are the content types a module part may have
// (https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/;
// the upload's API reference lists the same under "files"). The value
// says whether the module is an ES module, whose imports are checked.
var moduleTypes = map[string]bool{
	"application/javascript+module": true,
	"text/javascript+module":        true,
	"application/javascript":        false,
	"text/javascript":               false,
	"text/x-python":                 false,
	"text/x-python-requirement":     false,
	"application/wasm":              false,
	"text/plain":                    false,
	"application/octet-stream":      false,
	"application/source-map":        false,
}

// defaultCompatibilityDate is what the API takes when the metadata has
// none (https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/).
const defaultCompatibilityDate = "2021-11-02"

var (
	// scriptName is the API's rule for Worker names: letters, digits, '_'
	// and '-', starting with a letter, ending with a letter or digit, at
	// most 63 (https://developers.cloudflare.com/workers/platform/scripts,
	// an old page; the current reference states no rule).
	scriptName = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$`)
	// staticImport finds `import … from "x"`, `import "x"` and
	// `export … from "x"`.
	staticImport = regexp.MustCompile(`(?m)(?:^|[;}\s])(?:import|export)\s*(?:[\w$*{}\s,]+?\s*from\s*)?["']([^"'\n]+)["']`)
	handlerNames = []string{"fetch", "scheduled", "queue", "email", "tail", "trace"}
)

// module is one module part as read.
type module struct {
	name        string
	contentType string
	data        []byte
}

// partsOf lists a multipart body's parts for Requests; nil if the body is
// not multipart.
func partsOf(contentType string, body []byte) []Part {
	mr, err := multipartReader(contentType, body)
	if err != nil {
		return nil
	}
	var parts []Part
	for {
		p, err := mr.NextPart()
		if err != nil {
			return parts
		}
		n, _ := io.Copy(io.Discard, p)
		parts = append(parts, Part{Name: p.FormName(), FileName: p.FileName(), ContentType: p.Header.Get("Content-Type"), Size: int(n)})
	}
}

func multipartReader(contentType string, body []byte) (*multipart.Reader, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, errors.New("not multipart/form-data")
	}
	return multipart.NewReader(bytes.NewReader(body), params["boundary"]), nil
}

// upload: PUT /accounts/{account_id}/workers/scripts/{script_name}
// (https://developers.cloudflare.com/api/resources/workers/subresources/scripts/methods/update/).
// Failures are 400s with code 10021 unless said otherwise: the spec's
// and Wrangler's reading of Cloudflare's "validation error".
func (s *Server) upload(r *http.Request, body []byte, name string) (any, *change, *apiError) {
	if !scriptName.MatchString(name) {
		return nil, nil, errorf(http.StatusBadRequest, 10016, "Invalid Worker name %q (cfapitest's message)", name)
	}
	meta, modules, e := s.readUpload(r.Header.Get("Content-Type"), body)
	if e != nil {
		return nil, nil, e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.scripts[name]
	if prev == nil && s.opts.MaxScripts > 0 && len(s.scripts) >= s.opts.MaxScripts {
		return nil, nil, errorf(http.StatusBadRequest, 10037, "You have exceeded the limit of %d Workers on your account. (cfapitest's message)", s.opts.MaxScripts)
	}
	tag, classes, e := migrate(prev, meta.Migrations)
	if e != nil {
		return nil, nil, e
	}
	bindings, e := s.bind(name, prev, meta, modules, classes)
	if e != nil {
		return nil, nil, e
	}
	handlers := handlersOf(modules[meta.MainModule])
	if len(handlers) == 0 {
		// 10068 (https://developers.cloudflare.com/workers/observability/errors/).
		return nil, nil, errorf(http.StatusBadRequest, 10068, "No event handlers were registered. This script does nothing.")
	}

	now := time.Now().UTC()
	u := &Uploaded{Name: name, CreatedOn: now}
	if prev != nil {
		u.CreatedOn, u.WorkersDev, u.PreviewsEnabled, u.Uploads = prev.CreatedOn, prev.WorkersDev, prev.PreviewsEnabled, prev.Uploads
	}
	u.Metadata = meta
	u.Modules = map[string]Module{}
	parts := [][]byte{meta.Raw}
	for _, m := range modules {
		u.Modules[m.name] = Module{ContentType: m.contentType, Data: m.data}
		parts = append(parts, []byte(m.name), []byte(m.contentType), m.data)
	}
	u.Bindings = bindings
	u.MigrationTag, u.DurableObjectClasses = tag, classes
	u.Uploads++
	u.Etag = etag(parts...)
	u.Handlers = handlers
	u.ModifiedOn = now
	s.scripts[name] = u

	result := u.summary()
	result["startup_time_ms"] = 1 // nothing runs here
	return result, &change{name: name, script: u.clone()}, nil
}

// readUpload parses the multipart body the way the API documents it: the
// "metadata" part holds JSON; every other part is a module, named by its
// filename — or its form name when it has none — and loaded by its
// Content-Type.
func (s *Server) readUpload(contentType string, body []byte) (Metadata, map[string]module, *apiError) {
	var meta Metadata
	mr, err := multipartReader(contentType, body)
	if err != nil {
		return meta, nil, errorf(http.StatusBadRequest, 10026, "the request body is not multipart/form-data (cfapitest's message)")
	}
	var (
		metaRaw []byte
		sawMeta bool
		order   []module
	)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return meta, nil, errorf(http.StatusBadRequest, 10026, "could not parse the multipart body: %v (cfapitest's message)", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return meta, nil, errorf(http.StatusBadRequest, 10026, "could not read part %q: %v (cfapitest's message)", p.FormName(), err)
		}
		if p.FormName() == "metadata" {
			metaRaw, sawMeta = data, true
			continue
		}
		name := p.FileName()
		if name == "" {
			name = p.FormName()
		}
		order = append(order, module{name: name, contentType: p.Header.Get("Content-Type"), data: data})
	}
	// What Cloudflare answers when the metadata is not one JSON part, as
	// when an SDK splits it into metadata[…] fields (quoted in public
	// deploy code that works around it; see also
	// https://github.com/cloudflare/cloudflare-typescript/issues/2799).
	if !sawMeta {
		return meta, nil, errorf(http.StatusBadRequest, 10021, "Could not read content for part 'metadata'.")
	}
	if err := json.Unmarshal(metaRaw, &meta); err != nil {
		return meta, nil, errorf(http.StatusBadRequest, 10021, "Could not read content for part 'metadata'. (%v)", err)
	}
	meta.Raw = json.RawMessage(metaRaw)
	var raw struct {
		Bindings []json.RawMessage `json:"bindings"`
	}
	if json.Unmarshal(metaRaw, &raw) == nil && len(raw.Bindings) == len(meta.Bindings) {
		for i := range meta.Bindings {
			meta.Bindings[i].Raw = raw.Bindings[i]
		}
	}

	var total int64
	modules := map[string]module{}
	for _, m := range order {
		total += int64(len(m.data))
		if _, dup := modules[m.name]; dup {
			return meta, nil, errorf(http.StatusBadRequest, 10021, "module %q appears twice (cfapitest's message)", m.name)
		}
		mt, _, err := mime.ParseMediaType(m.contentType)
		if _, known := moduleTypes[mt]; err != nil || !known {
			// Cloudflare's words, as quoted in the same deploy code.
			return meta, nil, errorf(http.StatusBadRequest, 10021, "module %s has unsupported Content-Type %s", m.name, m.contentType)
		}
		m.contentType = mt
		modules[m.name] = m
	}
	// 10027, workers.api.error.script_too_large (spec; status not verified).
	if total > s.opts.MaxScriptBytes {
		return meta, nil, errorf(http.StatusBadRequest, 10027, "Your Worker exceeded the size limit of %d bytes (modules total %d)", s.opts.MaxScriptBytes, total)
	}

	switch {
	case meta.BodyPart != "":
		return meta, nil, errorf(http.StatusBadRequest, 10021, "cfapitest serves modules-format Workers only (main_module), not body_part")
	case meta.MainModule == "":
		return meta, nil, errorf(http.StatusBadRequest, 10021, "metadata has no main_module (cfapitest's message)")
	}
	if _, ok := modules[meta.MainModule]; !ok {
		// Cloudflare's start-up error for a module it cannot find; in 2021
		// the main module's own case read "Main module name is not present
		// in bundle" (https://github.com/cloudflare/wrangler-legacy/issues/1952).
		return meta, nil, errorf(http.StatusBadRequest, 10021, "No such module %q.", meta.MainModule)
	}
	if meta.CompatibilityDate == "" {
		meta.CompatibilityDate = defaultCompatibilityDate
	} else if _, err := time.Parse(time.DateOnly, meta.CompatibilityDate); err != nil {
		return meta, nil, errorf(http.StatusBadRequest, 10021, "invalid compatibility_date %q (cfapitest's message)", meta.CompatibilityDate)
	}
	// A static import of a module that is not there fails at start-up:
	// `Uncaught Error: No such module "bjs.js". imported from "worker.js"`
	// (https://github.com/Harry-zklcdc/go-proxy-bingai/issues/253).
	for _, m := range order {
		if !moduleTypes[m.contentType] {
			continue
		}
		for _, spec := range importsOf(m.data) {
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				continue // cloudflare:*, node:* and bare names are not modules of the upload
			}
			target := path.Join(path.Dir(m.name), spec)
			if _, ok := modules[target]; !ok {
				return meta, nil, errorf(http.StatusBadRequest, 10021, "Uncaught Error: No such module %q.\n  imported from %q", target, m.name)
			}
		}
	}
	return meta, modules, nil
}

// migrate applies an upload's migration to the Worker's tag and classes.
// old_tag must equal the Worker's tag (absent: no tag): "Migration tag
// precondition failed; current tag is v1 [code: 10079]"
// (https://github.com/cloudflare/workers-sdk/issues/705), which is also
// what a repeated new_tag without old_tag gets.
func migrate(prev *Uploaded, m *Migrations) (string, []string, *apiError) {
	var (
		tag     string
		classes []string
	)
	if prev != nil {
		tag, classes = prev.MigrationTag, slices.Clone(prev.DurableObjectClasses)
	}
	if m == nil {
		return tag, classes, nil
	}
	if m.OldTag != tag {
		return "", nil, errorf(http.StatusBadRequest, 10079, "Migration tag precondition failed; current tag is %s", tag)
	}
	steps := append([]MigrationStep{m.MigrationStep}, m.Steps...)
	for _, st := range steps {
		for _, cl := range slices.Concat(st.NewClasses, st.NewSQLiteClasses) {
			if slices.Contains(classes, cl) {
				// 10074 is what a replayed class migration got in
				// https://github.com/elizaOS/eliza/issues/23975; the message
				// is this package's.
				return "", nil, errorf(http.StatusBadRequest, 10074, "class %q already has a Durable Object namespace (cfapitest's message)", cl)
			}
			classes = append(classes, cl)
		}
		for _, cl := range st.DeletedClasses {
			classes = slices.DeleteFunc(classes, func(c string) bool { return c == cl })
		}
	}
	if m.NewTag != "" {
		tag = m.NewTag
	}
	return tag, classes, nil
}

// bind checks the upload's bindings and returns the Worker's new binding
// set: the upload's, then the previous ones whose type keep_bindings
// lists and whose name the upload does not reuse.
func (s *Server) bind(name string, prev *Uploaded, meta Metadata, modules map[string]module, classes []string) ([]Binding, *apiError) {
	seen := map[string]bool{}
	for _, b := range meta.Bindings {
		if b.Name == "" {
			// 10052, a binding without a name (spec; message this package's).
			return nil, errorf(http.StatusBadRequest, 10052, "A binding of type %q has no name (cfapitest's message)", b.Type)
		}
		if seen[b.Name] {
			return nil, errorf(http.StatusBadRequest, 10021, "binding name %q is used twice (cfapitest's message)", b.Name)
		}
		seen[b.Name] = true
		if e := s.checkBinding(name, b, modules, classes); e != nil {
			return nil, e
		}
	}
	out := slices.Clone(meta.Bindings)
	if prev != nil {
		for _, b := range prev.Bindings {
			if slices.Contains(meta.KeepBindings, b.Type) && !seen[b.Name] {
				out = append(out, b)
			}
		}
	}
	return out, nil
}

func (s *Server) checkBinding(name string, b Binding, modules map[string]module, classes []string) *apiError {
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(b.Raw, &fields)
	need := func(field string) *apiError {
		if _, ok := fields[field]; !ok {
			return errorf(http.StatusBadRequest, 10021, "binding %q of type %q needs %q (cfapitest's message)", b.Name, b.Type, field)
		}
		return nil
	}
	switch b.Type {
	case "plain_text", "secret_text":
		return need("text")
	case "json":
		return need("json")
	case "kv_namespace":
		return need("namespace_id")
	case "service":
		return need("service")
	case "durable_object_namespace":
		if e := need("class_name"); e != nil {
			return e
		}
		if b.ScriptName != "" && b.ScriptName != name {
			// A class of another Worker: that Worker must define it (not
			// verified live; the message follows the one below).
			other, ok := s.scripts[b.ScriptName]
			if !ok || !slices.Contains(other.DurableObjectClasses, b.ClassName) {
				return errorf(http.StatusBadRequest, 10061, "Cannot create binding for class '%s' in script '%s' because it is not currently configured to implement Durable Objects.", b.ClassName, b.ScriptName)
			}
			return nil
		}
		// https://github.com/cloudflare/workers-sdk/issues/10034
		if !slices.Contains(classes, b.ClassName) {
			return errorf(http.StatusBadRequest, 10061, "Cannot create binding for class '%s' because it is not currently configured to implement Durable Objects. Ensure a --new-class migration has been applied to it.", b.ClassName)
		}
		// https://github.com/cloudflare/workers-sdk/issues/1792
		if !exports(modules, b.ClassName) {
			return errorf(http.StatusBadRequest, 10061, "Cannot create binding for class %s that is not exported by the script", b.ClassName)
		}
	}
	return nil
}

func importsOf(src []byte) []string {
	var specs []string
	for _, m := range staticImport.FindAllSubmatch(src, -1) {
		specs = append(specs, string(m[1]))
	}
	return specs
}

// exports reports whether an ES module exports the class (textually:
// `export class X` or X inside `export { … }`).
func exports(modules map[string]module, class string) bool {
	direct := regexp.MustCompile(`export\s+class\s+` + regexp.QuoteMeta(class) + `\b`)
	listed := regexp.MustCompile(`export\s*\{[^}]*\b` + regexp.QuoteMeta(class) + `\b[^}]*\}`)
	for _, m := range modules {
		if moduleTypes[m.contentType] && (direct.Match(m.data) || listed.Match(m.data)) {
			return true
		}
	}
	return false
}

// handlersOf guesses the main module's event handlers from its text: a
// name among handlerNames written as a method or property.
func handlersOf(main module) []string {
	var out []string
	for _, h := range handlerNames {
		if regexp.MustCompile(`\b` + h + `\s*[(:]`).Match(main.data) {
			out = append(out, h)
		}
	}
	return out
}
