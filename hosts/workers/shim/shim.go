// Package shim holds Ferry's Worker: the JavaScript that runs a job's
// WebAssembly module on Cloudflare Workers (and in workerd), and the Go
// that turns a job into that Worker's modules and bindings.
//
// The JavaScript (embedded from this directory):
//
//   - worker.js: the entry point; the custom-FaaS invoke protocol with
//     Ferry's batch endpoint and bearer auth.
//   - runtime.js: instantiation, the ABI's host functions, limits and
//     failure kinds; JSPI for the host calls that do I/O.
//   - wasi.js, chacha8.js: the minimal WASI preview 1, deterministic like
//     wazero's (Go's ChaCha8 for random_get).
//   - state.js: the ferry-state Worker, a Durable Object per state
//     namespace.
//   - router.js: the front door of a local workerd (package workerd).
//
// The module itself is rewritten before upload: a periodic call out to
// JavaScript at loop heads and function entries (instrument.Options.Tick),
// which stops a guest past its deadline, and a memory maximum at the job's
// memory limit (instrument.CapMemory).
package shim

import (
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/wasmbin/instrument"
	"github.com/ferryrun/ferry/runtime/wasmrt"
)

//go:embed worker.js runtime.js wasi.js chacha8.js state.js router.js
var js embed.FS

// CompatibilityDate is the Workers runtime behaviour Ferry's Worker is
// written for. JSPI (WebAssembly.Suspending/promising) is on at this date
// in workerd 1.20261117.1.
const CompatibilityDate = "2025-09-01"

// StateScript is the default name of the Worker that holds state, and
// StateClass its Durable Object class.
const (
	StateScript = "ferry-state"
	StateClass  = "FerryState"
)

// Module is one module of a Worker: its name (the import path other
// modules use), its content type as Cloudflare's upload API takes it, and
// its bytes.
type Module struct {
	Name        string
	ContentType string
	Data        []byte
}

// Binding is one binding, typed as in Cloudflare's upload metadata.
type Binding struct {
	Type string // plain_text, secret_text, json, durable_object_namespace, service
	Name string
	Text string
	JSON json.RawMessage
	// ClassName and ScriptName name a Durable Object class and the Worker
	// that defines it (empty: this Worker).
	ClassName  string
	ScriptName string
	// Service names another Worker (type service).
	Service string
}

// Worker is one Worker script.
type Worker struct {
	Name               string
	CompatibilityDate  string
	CompatibilityFlags []string
	// Modules; the first is the main module.
	Modules  []Module
	Bindings []Binding
	// DurableObjects are the Durable Object classes this Worker defines.
	DurableObjects []string
	// FunctionID and JobID route protocol paths to this Worker; empty and
	// nil for Workers that serve no job (the state Worker).
	FunctionID string
	JobID      *uint32
	// CPUMs is the CPU time limit per request (Cloudflare's limits.cpu_ms);
	// 0: the plan's default.
	CPUMs int
	// Digest identifies the Worker's whole content (modules and
	// bindings): equal digests, equal Workers.
	Digest string
}

// Spec is what a job's Worker is built from.
type Spec struct {
	// Script is the Worker's name; FunctionID the protocol's id for the
	// job; JobID, when set, routes Tangle's /job/{id}.
	Script     string
	FunctionID string
	JobID      *uint32
	Job        host.Job
	// Token, when set, is required as a bearer token on every call but
	// /healthz. It is bound as a secret.
	Token string
	// StateScript is the Worker holding the FerryState class; default
	// StateScript.
	StateScript string
	// Seed seeds a deterministic job's randomness.
	Seed uint64
	// MaxCPUMs caps the CPU limit (the plan's maximum); 0: no cap.
	MaxCPUMs int
}

// Build makes a job's Worker. The module is checked against the ABI and
// rewritten (see the package doc); limits left at zero get Ferry's
// defaults.
func Build(s Spec) (*Worker, error) {
	if !ScriptNameRE.MatchString(s.Script) {
		return nil, fmt.Errorf("worker name %q: %w", s.Script, ErrBadName)
	}
	info, err := abi.Describe(s.Job.Module)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", s.Script, err)
	}
	if info.Has(abi.CapFilesystem) {
		// Refused here so the failure is a clear deploy error, not an
		// ENOSYS at run time.
		return nil, fmt.Errorf("worker %s: %w: the job uses the filesystem, which a Worker does not have", s.Script, ErrUnsupported)
	}
	lim := s.Job.Limits
	def := wasmrt.DefaultLimits()
	memMB := lim.MemoryMB
	if memMB == 0 {
		memMB = int(def.MaxMemoryBytes >> 20)
	}
	timeout := lim.Timeout
	if timeout == 0 {
		timeout = def.Timeout
	}
	maxIn, maxOut := cmp.Or(lim.MaxInputBytes, def.MaxInputBytes), cmp.Or(lim.MaxOutputBytes, def.MaxOutputBytes)
	wasm, err := instrument.InstrumentWith(s.Job.Module, instrument.Options{Tick: true})
	if err != nil {
		return nil, fmt.Errorf("worker %s: prepare module: %w", s.Script, err)
	}
	if wasm, err = instrument.CapMemory(wasm, uint32(memMB)*16); err != nil {
		if errors.Is(err, instrument.ErrMemoryTooSmall) {
			return nil, fmt.Errorf("worker %s: %w: %w", s.Script, ErrLimit, err)
		}
		return nil, fmt.Errorf("worker %s: prepare module: %w", s.Script, err)
	}
	namespace := cmp.Or(s.Job.StateNamespace, s.Job.Name)
	stateful := info.Has(abi.CapState)
	cfg := config{
		FunctionID: s.FunctionID, Job: s.Job.Name, Digest: modstore.Digest(s.Job.Module), JobID: s.JobID,
		Pure: info.Pure(), Shape: string(info.Shape), Deterministic: !info.Has(abi.CapNetwork), Seed: s.Seed,
		MemoryMB: memMB, TimeoutMs: int(timeout.Milliseconds()), MaxInputBytes: maxIn, MaxOutputBytes: maxOut,
		AllowHosts: s.Job.AllowHosts, StateNamespace: namespace, AuthRequired: s.Token != "",
		MaxLogBytes: def.MaxLogBytes, MaxStateKeyBytes: def.MaxStateKeyBytes, MaxStateValueBytes: def.MaxStateValueBytes,
		MaxStateWriteBytes: def.MaxStateWriteBytes, MaxStateAttempts: def.MaxStateAttempts, MaxHostCalls: def.MaxHostCalls,
		MaxHTTPRequests: def.MaxHTTPRequests, MaxHTTPResponseBytes: def.MaxHTTPResponseBytes, HTTPTimeoutMs: int(def.HTTPTimeout.Milliseconds()),
		BinarySizeBytes: len(s.Job.Module),
	}
	if cfg.AllowHosts == nil {
		cfg.AllowHosts = []string{}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", s.Script, err)
	}
	w := &Worker{
		Name: s.Script, CompatibilityDate: CompatibilityDate, FunctionID: s.FunctionID, JobID: s.JobID,
		Modules: append(jsModules("worker.js", "runtime.js", "wasi.js", "chacha8.js"),
			Module{Name: "job.wasm", ContentType: "application/wasm", Data: wasm},
			Module{Name: "tick.wasm", ContentType: "application/wasm", Data: TickModule()}),
		Bindings: []Binding{{Type: "json", Name: "FERRY_CONFIG", JSON: raw}},
		CPUMs:    int(timeout.Milliseconds()),
	}
	if s.MaxCPUMs > 0 && w.CPUMs > s.MaxCPUMs {
		w.CPUMs = s.MaxCPUMs
	}
	if s.Token != "" {
		w.Bindings = append(w.Bindings, Binding{Type: "secret_text", Name: "FERRY_TOKEN", Text: s.Token})
	}
	if stateful {
		w.Bindings = append(w.Bindings, Binding{Type: "durable_object_namespace", Name: "FERRY_STATE",
			ClassName: StateClass, ScriptName: cmp.Or(s.StateScript, StateScript)})
	}
	w.Digest = digest(w)
	return w, nil
}

// State is the Worker that holds every job's state: the FerryState
// Durable Object class, one object per state namespace.
func State(name string) *Worker {
	w := &Worker{
		Name: cmp.Or(name, StateScript), CompatibilityDate: CompatibilityDate,
		Modules:        jsModules("state.js"),
		DurableObjects: []string{StateClass},
	}
	w.Digest = digest(w)
	return w
}

// Router is the local workerd's front door (package workerd).
func Router() []byte { return mustRead("router.js") }

// TickModule is a module that re-exports an imported JavaScript function,
// env.tick: () -> (). A Worker cannot compile modules at run time, and
// only a function that comes from a module can be put in a table; the job's
// tick table holds this one.
func TickModule() []byte {
	return []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type 0: () -> ()
		0x02, 0x0c, 0x01, 0x03, 'e', 'n', 'v', 0x04, 't', 'i', 'c', 'k', 0x00, 0x00, // import env.tick (type 0)
		0x07, 0x08, 0x01, 0x04, 't', 'i', 'c', 'k', 0x00, 0x00, // export "tick" (func 0)
	}
}

// ScriptNameRE is what Ferry names Workers: it becomes a hostname label on
// workers.dev, so lowercase letters, digits and '-', at most 63.
var ScriptNameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Errors Build wraps.
var (
	ErrBadName     = errors.New("want lowercase letters, digits and '-', starting with a letter, at most 63")
	ErrUnsupported = errors.New("not supported on Workers")
	ErrLimit       = errors.New("over a Workers limit")
)

// ScriptName is the Worker name for a job: prefix + the job's name made a
// hostname label; when that loses information (case, '_' or '.', length)
// a hash of the name keeps it unique.
func ScriptName(prefix, job string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, job)
	name := prefix + clean
	if clean != job || len(name) > 63 {
		sum := sha256.Sum256([]byte(job))
		suffix := "-" + hex.EncodeToString(sum[:3])
		name = strings.TrimRight(name[:min(len(name), 63-len(suffix))], "-") + suffix
	}
	return name
}

// config is FERRY_CONFIG, read by worker.js and runtime.js.
type config struct {
	FunctionID           string   `json:"function_id"`
	Job                  string   `json:"job"`
	Digest               string   `json:"digest"`
	JobID                *uint32  `json:"job_id,omitempty"`
	Pure                 bool     `json:"pure"`
	Shape                string   `json:"shape"`
	Deterministic        bool     `json:"deterministic"`
	Seed                 uint64   `json:"seed"`
	MemoryMB             int      `json:"memory_mb"`
	TimeoutMs            int      `json:"timeout_ms"`
	MaxInputBytes        int      `json:"max_input_bytes"`
	MaxOutputBytes       int      `json:"max_output_bytes"`
	AllowHosts           []string `json:"allow_hosts"`
	StateNamespace       string   `json:"state_namespace"`
	AuthRequired         bool     `json:"auth_required"`
	MaxLogBytes          int      `json:"max_log_bytes"`
	MaxStateKeyBytes     int      `json:"max_state_key_bytes"`
	MaxStateValueBytes   int      `json:"max_state_value_bytes"`
	MaxStateWriteBytes   int      `json:"max_state_write_bytes"`
	MaxStateAttempts     int      `json:"max_state_attempts"`
	MaxHostCalls         int      `json:"max_host_calls"`
	MaxHTTPRequests      int      `json:"max_http_requests"`
	MaxHTTPResponseBytes int      `json:"max_http_response_bytes"`
	HTTPTimeoutMs        int      `json:"http_timeout_ms"`
	BinarySizeBytes      int      `json:"binary_size_bytes"`
}

func jsModules(names ...string) []Module {
	out := make([]Module, len(names))
	for i, n := range names {
		out[i] = Module{Name: n, ContentType: "application/javascript+module", Data: mustRead(n)}
	}
	return out
}

func mustRead(name string) []byte {
	b, err := js.ReadFile(name)
	if err != nil {
		panic("shim: embedded file missing: " + name) // a build error, not a runtime one
	}
	return b
}

// digest hashes everything that makes a Worker what it is.
func digest(w *Worker) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%q\n%d\n%q\n", w.Name, w.CompatibilityDate, w.CompatibilityFlags, w.CPUMs, w.DurableObjects)
	for _, m := range w.Modules {
		fmt.Fprintf(h, "m %q %q %d\n", m.Name, m.ContentType, len(m.Data))
		h.Write(m.Data)
	}
	for _, b := range w.Bindings {
		fmt.Fprintf(h, "b %q %q %q %q %q %q %d\n", b.Type, b.Name, b.ClassName, b.ScriptName, b.Service, b.Text, len(b.JSON))
		h.Write(b.JSON)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
