package locallambda

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	latest = "$LATEST"

	// maxCodeRequestBytes caps CreateFunction and UpdateFunctionCode: the
	// 50 MB zip limit applies to the base64 JSON, 50 MiB × 4/3 (gettingstarted-limits.html; the
	// message is as observed in public issue threads, docs/local-lambda.md).
	maxCodeRequestBytes = 69905067
	// maxFunctions bounds how many functions one server holds.
	maxFunctions = 1024

	// Limits from API_CreateFunction.html and gettingstarted-limits.html
	// (API_CreateFunction.html request members, gettingstarted-limits.html).
	defaultMemory    = 128
	minMemory        = 128
	maxMemory        = 10240
	defaultTimeout   = 3
	maxTimeout       = 900
	defaultEphemeral = 512
	maxEphemeral     = 10240
	maxEnvBytes      = 4096
	maxHandler       = 128
	maxDescription   = 256

	lastModifiedLayout = "2006-01-02T15:04:05.000-0700" // 2019-07-17T23:10:15.832+0000
)

// The model's patterns (aws-sdk-go-v2 service/lambda; API_CreateFunction.html).
const (
	functionNamePattern = `(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`
	rolePattern         = `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`
	envKeyPattern       = `[a-zA-Z]([a-zA-Z0-9_])+`
)

var (
	functionRefRE = regexp.MustCompile(`^(?:arn:aws[a-zA-Z-]*:lambda:([a-z]{2}(?:-gov)?-[a-z]+-\d):)?(?:(\d{12}):)?(?:function:)?([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]{1,128}))?$`)
	roleRE        = regexp.MustCompile(`^` + rolePattern + `$`)
	envKeyRE      = regexp.MustCompile(`^` + envKeyPattern + `$`)
	runtimes      = []string{"provided.al2023", "provided.al2", "provided"}
)

// parseFunctionName splits a FunctionName: name, name:qualifier,
// account:function:name[:qualifier] or a full ARN (API_Invoke.html, FunctionName).
func parseFunctionName(ref string) (name, qualifier, region, account string, ok bool) {
	if len(ref) > 170 {
		return "", "", "", "", false
	}
	m := functionRefRE.FindStringSubmatch(ref)
	if m == nil {
		return "", "", "", "", false
	}
	// "account:function:name" needs "function:"; a bare "123…:name"
	// would be name:qualifier.
	return m[3], m[4], m[1], m[2], true
}

// reserved reports whether a function may not set the variable
// (configuration-envvars.html, "Reserved environment variables").
func reserved(k string) bool {
	switch k {
	case "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_INITIALIZATION_TYPE",
		"AWS_LAMBDA_RUNTIME_API", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR":
		return true
	}
	return strings.HasPrefix(k, "AWS_LAMBDA_FUNCTION_") || strings.HasPrefix(k, "AWS_LAMBDA_LOG_")
}

// runtimeSets reports whether the execution environment sets k itself,
// so Config.Env may not.
func runtimeSets(k string) bool {
	switch k {
	case "AWS_LAMBDA_RUNTIME_API", "_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_REGION",
		"AWS_LAMBDA_INITIALIZATION_TYPE":
		return true
	}
	return strings.HasPrefix(k, "AWS_LAMBDA_FUNCTION_") || strings.HasPrefix(k, "AWS_LAMBDA_LOG_")
}

// fnConf is a function's configuration as FunctionConfiguration shows it.
type fnConf struct {
	Runtime, Role, Handler, Description string
	MemorySize, Timeout, Ephemeral      int
	Architecture                        string
	Vars                                map[string]string
	TracingMode                         string
	CodeSha256                          string
	CodeSize                            int64
}

type function struct {
	name, arn string
	dir       string // this function's code versions live under it
	logs      logRing

	mu       sync.Mutex
	conf     fnConf    // as reported, an update in progress included
	live     *liveConf // what invokes run; nil until the function is Active
	state    string
	reason   string
	reasonCd string
	// LastUpdateStatus and its reason.
	update, updateReason, updateReasonCd string
	revision                             string
	modified                             time.Time
	tags                                 map[string]string
	deleted                              bool
	codeSeq                              int
	envs                                 map[*execEnv]struct{}
	spareTmp                             []spareTmp // TMPDIRs of reset sandboxes
}

// spareTmp is the TMPDIR of a sandbox that was reset, waiting for the
// environment that replaces it.
type spareTmp struct {
	dir  string
	live *liveConf
}

// keepTmp keeps dir for the next environment of live, if there is room
// and live is still current. fn.mu is held.
func (fn *function) keepTmp(dir string, live *liveConf, limit int) bool {
	if fn.deleted || fn.live != live || len(fn.spareTmp) >= limit {
		return false
	}
	fn.spareTmp = append(fn.spareTmp, spareTmp{dir, live})
	return true
}

// takeTmp returns a kept TMPDIR for an environment of live, or "".
// fn.mu is held.
func (fn *function) takeTmp(live *liveConf) string {
	for i, t := range fn.spareTmp {
		if t.live == live {
			fn.spareTmp = append(fn.spareTmp[:i], fn.spareTmp[i+1:]...)
			return t.dir
		}
	}
	return ""
}

// dropTmp forgets every kept TMPDIR and returns their paths. fn.mu is held.
func (fn *function) dropTmp() []string {
	dirs := make([]string, 0, len(fn.spareTmp))
	for _, t := range fn.spareTmp {
		dirs = append(dirs, t.dir)
	}
	fn.spareTmp = nil
	return dirs
}

// release drops a reference to c and returns its path when it was the
// last one. fn.mu is held.
func (fn *function) release(c *codeDir) string {
	c.refs--
	if c.refs == 0 {
		return c.path
	}
	return ""
}

// retire takes e out of the pool and kills it. fn.mu is held.
func (fn *function) retire(e *execEnv) {
	delete(fn.envs, e)
	e.retired = true
	e.killWith(killRetired)
}

// killAll kills every environment and waits until they are gone.
func (fn *function) killAll(r killReason) {
	fn.mu.Lock()
	envs := make([]*execEnv, 0, len(fn.envs))
	for e := range fn.envs {
		envs = append(envs, e)
	}
	fn.mu.Unlock()
	for _, e := range envs {
		e.killWith(r)
	}
	for _, e := range envs {
		select {
		case <-e.dead:
		case <-time.After(10 * time.Second):
		}
	}
}

// Request bodies, with the model's member names (API_CreateFunction.html,
// API_UpdateFunctionCode.html, API_UpdateFunctionConfiguration.html).

type environmentIn struct {
	Variables map[string]string
}

type ephemeralIn struct {
	Size *int64
}

type createRequest struct {
	FunctionName      *string
	Runtime           *string
	Role              *string
	Handler           *string
	Description       *string
	Timeout           *int64
	MemorySize        *int64
	Publish           bool
	PackageType       *string
	Architectures     []string
	Environment       *environmentIn
	EphemeralStorage  *ephemeralIn
	Layers            []string
	FileSystemConfigs []json.RawMessage
	Tags              map[string]string
	TracingConfig     *struct{ Mode string }
	Code              *struct {
		ZipFile         []byte
		S3Bucket        *string
		S3Key           *string
		S3ObjectVersion *string
		ImageUri        *string
	}
}

type updateCodeRequest struct {
	ZipFile       []byte
	S3Bucket      *string
	S3Key         *string
	ImageUri      *string
	Publish       bool
	DryRun        bool
	RevisionId    *string
	Architectures []string
}

type updateConfigRequest struct {
	Runtime           *string
	Role              *string
	Handler           *string
	Description       *string
	Timeout           *int64
	MemorySize        *int64
	Environment       *environmentIn
	EphemeralStorage  *ephemeralIn
	Layers            []string
	FileSystemConfigs []json.RawMessage
	TracingConfig     *struct{ Mode string }
	RevisionId        *string
}

// Validation as the service does it (API_CreateFunction.html, API_Environment.html,
// configuration-envvars.html). The SDK checks only that
// required members are present.

func checkRuntime(rt string) *apiError {
	if slices.Contains(runtimes, rt) {
		return nil
	}
	return errInvalid("The runtime parameter of %s is not supported by Ferry's local Lambda, which runs bootstrap executables: use one of %s", rt, strings.Join(runtimes, ", "))
}

func checkRole(role string) *apiError {
	if roleRE.MatchString(role) {
		return nil
	}
	return errValidation(role, "role", "Member must satisfy regular expression pattern: "+rolePattern)
}

func checkHandler(h string) *apiError {
	if len(h) > maxHandler {
		return errValidation(h, "handler", "Member must have length less than or equal to 128")
	}
	if strings.ContainsFunc(h, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' }) {
		return errValidation(h, "handler", `Member must satisfy regular expression pattern: [^\s]+`)
	}
	return nil
}

func checkRange(v int64, field string, lo, hi int64) *apiError {
	if v < lo {
		return errValidation(v, field, "Member must have value greater than or equal to "+strconv.FormatInt(lo, 10))
	}
	if v > hi {
		return errValidation(v, field, "Member must have value less than or equal to "+strconv.FormatInt(hi, 10))
	}
	return nil
}

func checkArchitectures(a []string) (string, *apiError) {
	if a == nil {
		return "", nil
	}
	if len(a) != 1 {
		return "", errValidation("["+strings.Join(a, ", ")+"]", "architectures", "Member must have length less than or equal to 1 and greater than or equal to 1")
	}
	if a[0] != "x86_64" && a[0] != "arm64" {
		return "", errValidation("["+a[0]+"]", "architectures", "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]")
	}
	return a[0], nil
}

func checkEnvironment(vars map[string]string) *apiError {
	var bad, res []string
	for k := range vars {
		if !envKeyRE.MatchString(k) {
			bad = append(bad, k)
		} else if reserved(k) {
			res = append(res, k)
		}
	}
	slices.Sort(bad)
	slices.Sort(res)
	if len(bad) > 0 {
		return errValidation(strings.Join(bad, ", "), "environment.variables", "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "+envKeyPattern+"]")
	}
	if len(res) > 0 {
		return errInvalid("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", strings.Join(res, ", "))
	}
	// The 4 KB are measured on the variables' JSON.
	if b, _ := json.Marshal(vars); len(b) > maxEnvBytes {
		return errInvalid("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %s", b)
	}
	return nil
}

func unsupported(what string) *apiError {
	return errInvalid("%s is not supported by Ferry's local Lambda", what)
}

// decodeJSON decodes a control-plane body.
func decodeJSON(b []byte, v any) *apiError {
	if len(b) == 0 {
		b = []byte("{}")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", "could not parse the request: " + err.Error(), ""}
	}
	return nil
}

func (s *Server) createFunction(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(w, r, maxCodeRequestBytes, "CreateFunction")
	if aerr != nil {
		aerr.write(w)
		return
	}
	var req createRequest
	if aerr := decodeJSON(body, &req); aerr != nil {
		aerr.write(w)
		return
	}
	conf, zr, aerr := s.checkCreate(&req)
	if aerr != nil {
		aerr.write(w)
		return
	}
	name, _, _, _, _ := parseFunctionName(*req.FunctionName)

	s.mu.Lock()
	if s.fns[name] != nil {
		s.mu.Unlock()
		errConflict("Function already exist: " + name).write(w)
		return
	}
	if len(s.fns) >= maxFunctions {
		s.mu.Unlock()
		(&apiError{http.StatusBadRequest, "CodeStorageExceededException", fmt.Sprintf("Ferry's local Lambda holds at most %d functions", maxFunctions), ""}).write(w)
		return
	}
	s.fnSeq++
	fn := &function{
		name: name, arn: s.arn(name),
		dir:  filepath.Join(s.root, "functions", name+"."+strconv.Itoa(s.fnSeq)),
		conf: conf, revision: newUUID(), modified: time.Now(), tags: req.Tags,
		// Creation is asynchronous (functions-states.html).
		state: "Pending", reason: "The function is being created.", reasonCd: "Creating",
		envs: map[*execEnv]struct{}{},
	}
	s.fns[name] = fn
	s.mu.Unlock()
	fn.mu.Lock()
	resp := s.configuration(fn)
	fn.mu.Unlock()
	if !s.goTracked(func() { s.apply(fn, zr) }) {
		errService("the local Lambda service is shutting down").write(w)
		return
	}
	s.log.Info("function created", "function", name, "code_size", conf.CodeSize, "runtime", conf.Runtime)
	writeJSON(w, http.StatusCreated, resp)
}

// checkCreate validates a CreateFunction request and applies defaults.
func (s *Server) checkCreate(req *createRequest) (fnConf, *zip.Reader, *apiError) {
	var c fnConf
	if req.FunctionName == nil || req.Role == nil || req.Code == nil {
		return c, nil, errInvalid("FunctionName, Role and Code are required")
	}
	_, qual, region, account, ok := parseFunctionName(*req.FunctionName)
	if !ok {
		return c, nil, errValidation(*req.FunctionName, "functionName", "Member must satisfy regular expression pattern: "+functionNamePattern)
	}
	if qual != "" || (region != "" && region != s.cfg.Region) || (account != "" && account != s.cfg.AccountID) {
		return c, nil, errInvalid("The function name %s does not name a function of this region and account without a qualifier", *req.FunctionName)
	}
	switch {
	case req.PackageType != nil && *req.PackageType == "Image", req.Code.ImageUri != nil:
		return c, nil, unsupported("PackageType Image")
	case req.PackageType != nil && *req.PackageType != "Zip":
		return c, nil, errValidation(*req.PackageType, "packageType", "Member must satisfy enum value set: [Image, Zip]")
	case req.Code.S3Bucket != nil || req.Code.S3Key != nil:
		return c, nil, unsupported("Code from S3")
	case len(req.Layers) > 0:
		return c, nil, unsupported("Layers")
	case len(req.FileSystemConfigs) > 0:
		return c, nil, unsupported("FileSystemConfigs")
	case req.Publish:
		return c, nil, unsupported("Publish (versions)")
	}
	if req.Runtime == nil {
		return c, nil, errInvalid("Runtime is required for .zip file archive functions")
	}
	if req.Handler == nil {
		return c, nil, errInvalid("Handler is required for .zip file archive functions")
	}
	c = fnConf{
		Runtime: *req.Runtime, Role: *req.Role, Handler: *req.Handler,
		MemorySize: defaultMemory, Timeout: defaultTimeout, Ephemeral: defaultEphemeral,
		Architecture: "x86_64", TracingMode: "PassThrough",
	}
	if req.Description != nil {
		c.Description = *req.Description
	}
	if req.TracingConfig != nil && req.TracingConfig.Mode != "" {
		c.TracingMode = req.TracingConfig.Mode
	}
	if req.Environment != nil {
		c.Vars = req.Environment.Variables
	}
	aerr := s.checkConf(&c, req.MemorySize, req.Timeout, req.EphemeralStorage)
	if aerr != nil {
		return c, nil, aerr
	}
	arch, aerr := checkArchitectures(req.Architectures)
	if aerr != nil {
		return c, nil, aerr
	}
	if arch != "" {
		c.Architecture = arch
	}
	if len(req.Code.ZipFile) == 0 {
		return c, nil, errInvalid("Code.ZipFile is required: Ferry's local Lambda takes .zip file archives only")
	}
	zr, aerr := checkZip(req.Code.ZipFile)
	if aerr != nil {
		return c, nil, aerr
	}
	c.CodeSha256, c.CodeSize = codeSha256(req.Code.ZipFile), int64(len(req.Code.ZipFile))
	return c, zr, nil
}

// checkConf applies and validates the members Create and
// UpdateFunctionConfiguration share.
func (s *Server) checkConf(c *fnConf, memory, timeout *int64, eph *ephemeralIn) *apiError {
	if memory != nil {
		if aerr := checkRange(*memory, "memorySize", minMemory, maxMemory); aerr != nil {
			return aerr
		}
		c.MemorySize = int(*memory)
	}
	if timeout != nil {
		if aerr := checkRange(*timeout, "timeout", 1, maxTimeout); aerr != nil {
			return aerr
		}
		c.Timeout = int(*timeout)
	}
	if eph != nil && eph.Size != nil {
		if aerr := checkRange(*eph.Size, "ephemeralStorage.size", defaultEphemeral, maxEphemeral); aerr != nil {
			return aerr
		}
		c.Ephemeral = int(*eph.Size)
	}
	if len(c.Description) > maxDescription {
		return errValidation(c.Description, "description", "Member must have length less than or equal to 256")
	}
	if c.TracingMode != "PassThrough" && c.TracingMode != "Active" {
		return errValidation(c.TracingMode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")
	}
	if aerr := checkRuntime(c.Runtime); aerr != nil {
		return aerr
	}
	if aerr := checkRole(c.Role); aerr != nil {
		return aerr
	}
	if aerr := checkHandler(c.Handler); aerr != nil {
		return aerr
	}
	return checkEnvironment(c.Vars)
}

// apply finishes a create or an update in the background: it unpacks new
// code (zr non-nil), then makes the configuration live. Environments of
// the old generation are retired; those serving an invoke finish it
// first (functions-states.html).
func (s *Server) apply(fn *function, zr *zip.Reader) {
	var dir string
	var unpackErr error
	if zr != nil {
		fn.mu.Lock()
		fn.codeSeq++
		dir = filepath.Join(fn.dir, strconv.Itoa(fn.codeSeq))
		fn.mu.Unlock()
		unpackErr = unpack(zr, dir)
	}
	if s.cfg.beforeApply != nil {
		s.cfg.beforeApply(fn.name)
	}
	fn.mu.Lock()
	if fn.deleted {
		fn.mu.Unlock()
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
		return
	}
	if unpackErr != nil {
		s.log.Warn("could not unpack function code", "function", fn.name, "err", unpackErr)
		msg := "Could not unzip uploaded file. Please check your file, then try to upload again."
		if fn.live == nil {
			fn.state, fn.reason, fn.reasonCd = "Failed", msg, "InvalidZipFileException"
		} else {
			// The old code and configuration stay live.
			fn.conf = fn.live.conf
		}
		fn.update, fn.updateReason, fn.updateReasonCd = "Failed", msg, "InvalidZipFileException"
		fn.mu.Unlock()
		_ = os.RemoveAll(dir)
		return
	}
	var remove string
	next := &liveConf{conf: fn.conf}
	if old := fn.live; old != nil {
		next.gen = old.gen + 1
		if dir == "" {
			next.code = old.code
			old.code.refs++
		}
		remove = fn.release(old.code)
	}
	if dir != "" {
		next.code = &codeDir{path: dir, refs: 1}
	}
	fn.live = next
	// New code or configuration means new sandboxes.
	stale := fn.dropTmp()
	fn.state, fn.reason, fn.reasonCd = "Active", "", ""
	fn.update, fn.updateReason, fn.updateReasonCd = "Successful", "", ""
	for e := range fn.envs {
		if e.live == next || e.assigned != nil {
			continue
		}
		e.mu.Lock()
		free := e.phase == phaseIdle || e.phase == phaseAnswered
		e.mu.Unlock()
		if free {
			fn.retire(e)
		}
	}
	fn.mu.Unlock()
	for _, dir := range append(stale, remove) {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	s.log.Debug("function active", "function", fn.name, "generation", next.gen)
}

// beginUpdate checks that fn can be updated now (functions-states.html) and the
// optimistic lock. A function whose creation failed takes new code only.
// fn.mu is held.
func beginUpdate(fn *function, revision *string, code bool) *apiError {
	switch {
	case fn.state == "Pending":
		return errConflict("The operation cannot be performed at this time. The function is currently in the following state: Pending. StateReasonCode: Creating")
	case fn.update == "InProgress":
		return errConflict("The operation cannot be performed at this time. An update is in progress for resource: " + fn.arn)
	case fn.live == nil && !code:
		return errConflict("The operation cannot be performed at this time. The function is currently in the following state: Failed")
	case revision != nil && *revision != fn.revision:
		return &apiError{http.StatusPreconditionFailed, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id", ""}
	}
	return nil
}

func (s *Server) updateFunctionCode(w http.ResponseWriter, r *http.Request) {
	var req updateCodeRequest
	fn, ok := s.readUpdate(w, r, "UpdateFunctionCode", &req)
	if !ok {
		return
	}
	var aerr *apiError
	switch {
	case req.ImageUri != nil:
		aerr = unsupported("ImageUri")
	case req.S3Bucket != nil || req.S3Key != nil:
		aerr = unsupported("Code from S3")
	case req.Publish:
		aerr = unsupported("Publish (versions)")
	case len(req.ZipFile) == 0:
		aerr = errInvalid("ZipFile is required: Ferry's local Lambda takes .zip file archives only")
	}
	if aerr != nil {
		aerr.write(w)
		return
	}
	arch, aerr := checkArchitectures(req.Architectures)
	if aerr != nil {
		aerr.write(w)
		return
	}
	zr, aerr := checkZip(req.ZipFile)
	if aerr != nil {
		aerr.write(w)
		return
	}
	fn.mu.Lock()
	if aerr := beginUpdate(fn, req.RevisionId, true); aerr != nil {
		fn.mu.Unlock()
		aerr.write(w)
		return
	}
	c := fn.conf
	c.CodeSha256, c.CodeSize = codeSha256(req.ZipFile), int64(len(req.ZipFile))
	if arch != "" {
		c.Architecture = arch
	}
	if req.DryRun {
		resp := s.configuration(fn)
		resp.CodeSha256, resp.CodeSize, resp.Architectures = c.CodeSha256, c.CodeSize, []string{c.Architecture}
		fn.mu.Unlock()
		writeJSON(w, http.StatusOK, resp)
		return
	}
	s.startUpdate(fn, c)
	resp := s.configuration(fn)
	fn.mu.Unlock()
	if !s.goTracked(func() { s.apply(fn, zr) }) {
		errService("the local Lambda service is shutting down").write(w)
		return
	}
	s.log.Info("function code updated", "function", fn.name, "code_size", c.CodeSize)
	writeJSON(w, http.StatusOK, resp)
}

// readUpdate reads an update of an unqualified function: the function, and
// the JSON body decoded into req. On failure it has answered and ok is
// false.
func (s *Server) readUpdate(w http.ResponseWriter, r *http.Request, op string, req any) (fn *function, ok bool) {
	fn, qual, aerr := s.lookup(r.PathValue("name"), "")
	if aerr == nil && qual != "" {
		aerr = errInvalid("%s takes an unqualified function name", op)
	}
	if aerr == nil {
		var body []byte
		if body, aerr = readBody(w, r, maxCodeRequestBytes, op); aerr == nil {
			aerr = decodeJSON(body, req)
		}
	}
	if aerr != nil {
		aerr.write(w)
		return nil, false
	}
	return fn, true
}

// startUpdate records an accepted update. fn.mu is held.
func (s *Server) startUpdate(fn *function, c fnConf) {
	fn.conf = c
	fn.revision = newUUID()
	fn.modified = time.Now()
	fn.update, fn.updateReason, fn.updateReasonCd = "InProgress", "", ""
}

func (s *Server) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request) {
	var req updateConfigRequest
	fn, ok := s.readUpdate(w, r, "UpdateFunctionConfiguration", &req)
	if !ok {
		return
	}
	var aerr *apiError
	switch {
	case len(req.Layers) > 0:
		aerr = unsupported("Layers")
	case len(req.FileSystemConfigs) > 0:
		aerr = unsupported("FileSystemConfigs")
	}
	if aerr != nil {
		aerr.write(w)
		return
	}
	fn.mu.Lock()
	c := fn.conf
	if req.Runtime != nil {
		c.Runtime = *req.Runtime
	}
	if req.Role != nil {
		c.Role = *req.Role
	}
	if req.Handler != nil {
		c.Handler = *req.Handler
	}
	if req.Description != nil {
		c.Description = *req.Description
	}
	if req.TracingConfig != nil && req.TracingConfig.Mode != "" {
		c.TracingMode = req.TracingConfig.Mode
	}
	if req.Environment != nil {
		c.Vars = req.Environment.Variables
	}
	aerr = s.checkConf(&c, req.MemorySize, req.Timeout, req.EphemeralStorage)
	if aerr == nil {
		aerr = beginUpdate(fn, req.RevisionId, false)
	}
	if aerr != nil {
		fn.mu.Unlock()
		aerr.write(w)
		return
	}
	s.startUpdate(fn, c)
	resp := s.configuration(fn)
	fn.mu.Unlock()
	if !s.goTracked(func() { s.apply(fn, nil) }) {
		errService("the local Lambda service is shutting down").write(w)
		return
	}
	s.log.Info("function configuration updated", "function", fn.name)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) getFunction(w http.ResponseWriter, r *http.Request) {
	fn, _, aerr := s.lookup(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if aerr != nil {
		aerr.write(w)
		return
	}
	fn.mu.Lock()
	resp := struct {
		Configuration functionConfiguration
		Code          map[string]string
		Tags          map[string]string `json:",omitempty"`
	}{s.configuration(fn), map[string]string{"RepositoryType": "S3"}, fn.tags}
	fn.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) getFunctionConfiguration(w http.ResponseWriter, r *http.Request) {
	fn, _, aerr := s.lookup(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if aerr != nil {
		aerr.write(w)
		return
	}
	fn.mu.Lock()
	resp := s.configuration(fn)
	fn.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request) {
	list := []functionConfiguration{}
	for _, fn := range s.functionsSorted() {
		fn.mu.Lock()
		list = append(list, s.configuration(fn))
		fn.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, map[string]any{"Functions": list})
}

// deleteFunction removes the function and kills its environments before
// answering 204 (API_DeleteFunction.html).
func (s *Server) deleteFunction(w http.ResponseWriter, r *http.Request) {
	fn, qual, aerr := s.lookup(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if aerr == nil && qual == latest {
		aerr = errInvalid("$LATEST version cannot be deleted without deleting the function.")
	}
	if aerr != nil {
		aerr.write(w)
		return
	}
	s.mu.Lock()
	if s.fns[fn.name] == fn {
		delete(s.fns, fn.name)
	}
	s.mu.Unlock()
	fn.mu.Lock()
	already := fn.deleted
	fn.deleted = true
	fn.mu.Unlock()
	if already {
		errNotFound(fn.arn).write(w)
		return
	}
	fn.killAll(killDeleted)
	fn.mu.Lock()
	remove := fn.dropTmp()
	if fn.live != nil {
		remove = append(remove, fn.release(fn.live.code))
	}
	fn.mu.Unlock()
	for _, dir := range append(remove, fn.dir) {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	s.log.Info("function deleted", "function", fn.name)
	w.WriteHeader(http.StatusNoContent)
}

// functionConfiguration is FunctionConfiguration with the fields of spec
// 3.3, in the model's member names.
type functionConfiguration struct {
	FunctionName               string
	FunctionArn                string
	Runtime                    string
	Role                       string
	Handler                    string
	CodeSize                   int64
	Description                string
	Timeout                    int
	MemorySize                 int
	LastModified               string
	CodeSha256                 string
	Version                    string
	Environment                *environmentOut `json:",omitempty"`
	TracingConfig              struct{ Mode string }
	RevisionId                 string
	State                      string
	StateReason                string `json:",omitempty"`
	StateReasonCode            string `json:",omitempty"`
	LastUpdateStatus           string `json:",omitempty"`
	LastUpdateStatusReason     string `json:",omitempty"`
	LastUpdateStatusReasonCode string `json:",omitempty"`
	PackageType                string
	Architectures              []string
	EphemeralStorage           struct{ Size int }
	LoggingConfig              struct{ LogFormat, LogGroup string }
	SnapStart                  struct{ ApplyOn, OptimizationStatus string }
}

type environmentOut struct {
	Variables map[string]string
}

// configuration renders fn. fn.mu is held.
func (s *Server) configuration(fn *function) functionConfiguration {
	c := fn.conf
	out := functionConfiguration{
		FunctionName: fn.name, FunctionArn: fn.arn,
		Runtime: c.Runtime, Role: c.Role, Handler: c.Handler, Description: c.Description,
		CodeSize: c.CodeSize, CodeSha256: c.CodeSha256,
		Timeout: c.Timeout, MemorySize: c.MemorySize,
		LastModified: fn.modified.UTC().Format(lastModifiedLayout),
		Version:      latest, RevisionId: fn.revision,
		State: fn.state, StateReason: fn.reason, StateReasonCode: fn.reasonCd,
		LastUpdateStatus: fn.update, LastUpdateStatusReason: fn.updateReason, LastUpdateStatusReasonCode: fn.updateReasonCd,
		PackageType: "Zip", Architectures: []string{c.Architecture},
	}
	if len(c.Vars) > 0 {
		out.Environment = &environmentOut{Variables: c.Vars}
	}
	out.TracingConfig.Mode = c.TracingMode
	out.EphemeralStorage.Size = c.Ephemeral
	out.LoggingConfig.LogFormat, out.LoggingConfig.LogGroup = "Text", "/aws/lambda/"+fn.name
	out.SnapStart.ApplyOn, out.SnapStart.OptimizationStatus = "None", "Off"
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		errService("encode the reply: " + err.Error()).write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
