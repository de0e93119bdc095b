// Package blueprint reads and checks blueprint.toml, the file at the root of
// a blueprint folder that names the blueprint, its jobs and their serverless
// preferences. `ferry build` starts from it.
//
// Here live the schema (Blueprint, Serverless, Job), Load and Parse (strict
// TOML decoding: an unknown key or a wrong type is an error that points at
// file:line:column), Validate (every rule, all problems reported at once),
// and InferLanguage (a job's language from its source when the file does not
// say). The schema is documented in docs/blueprint.md.
package blueprint

import (
	"slices"
)

// FileName is the name of the file at the root of a blueprint folder.
const FileName = "blueprint.toml"

// MaxFileSize is the largest blueprint.toml Load and Parse accept.
const MaxFileSize = 1 << 20

// Blueprint is the [blueprint] table of blueprint.toml.
type Blueprint struct {
	// Name identifies the blueprint: [a-z0-9][a-z0-9-]{0,62}. Required.
	Name string `toml:"name"`
	// Serverless holds the blueprint-wide serverless preferences.
	Serverless Serverless `toml:"serverless"`
	// Jobs maps each job's name to its settings; Parse fills in Job.Name.
	// At least one job is required.
	Jobs map[string]Job `toml:"jobs"`

	// Dir is the absolute path of the blueprint folder: set by Load, empty
	// after Parse. Job sources and samples are relative to it.
	Dir string `toml:"-"`
}

// Serverless is [blueprint.serverless]. Every field is optional.
type Serverless struct {
	// Providers the jobs may be deployed to. Empty: no restriction.
	Providers []Provider `toml:"providers"`
	// CostThreshold is the most one execution may cost, in US dollars
	// (>= 0). Nil: no limit.
	CostThreshold *float64 `toml:"cost_threshold"`
	// LatencyThreshold is the most one execution may take, in
	// milliseconds (> 0). Nil: no limit.
	LatencyThreshold *int `toml:"latency_threshold"`
	// Regions the jobs may be deployed to. Empty: no restriction.
	Regions []string `toml:"regions"`
}

// Job is one [blueprint.jobs.NAME] table.
type Job struct {
	// Name is the job's key in [blueprint.jobs]: [a-z0-9_-]{1,64}. Filled
	// in by Parse; not a TOML key.
	Name string `toml:"-"`
	// Source is the job's code: a file or folder, relative to the
	// blueprint folder and inside it. Required.
	Source string `toml:"source"`
	// Language of Source. Empty in the file: Load infers it (InferLanguage).
	Language Language `toml:"language"`
	// Shape of the built module. Empty: see ResolvedShape.
	Shape Shape `toml:"shape"`
	// Samples are files of sample inputs for profiling, relative to the
	// blueprint folder and inside it. Load checks that they exist.
	Samples []string `toml:"samples"`
	// InlineSamples are sample inputs written in the file.
	InlineSamples []string `toml:"inline_samples"`
	// ForceServerless makes every invocation run on a serverless host.
	ForceServerless bool `toml:"force_serverless"`
	// Memory in MB, 1..10240. Nil: the host's default.
	Memory *int `toml:"memory"`
	// Timeout in seconds, 1..900. Nil: the host's default.
	Timeout *int `toml:"timeout"`
	// AllowHosts are the hosts the job's HTTP requests may reach:
	// "example.com" (any port), "example.com:8443" or "*.example.com".
	// Empty: no network.
	AllowHosts []string `toml:"allow_hosts"`
}

// Language is the language of a job's source.
type Language string

// Languages.
const (
	LanguageGo   Language = "go"
	LanguageRust Language = "rust"
	LanguageC    Language = "c"
	LanguageWAT  Language = "wat"  // WebAssembly text format
	LanguageWasm Language = "wasm" // a prebuilt module
)

// Languages lists the valid languages.
var Languages = []Language{LanguageGo, LanguageRust, LanguageC, LanguageWAT, LanguageWasm}

// Shape is the shape of a job module (docs/abi.md).
type Shape string

// Shapes.
const (
	ShapeReactor Shape = "reactor"
	ShapeCommand Shape = "command"
)

// Shapes lists the valid shapes.
var Shapes = []Shape{ShapeReactor, ShapeCommand}

// Provider is a serverless provider.
type Provider string

// Providers.
const (
	ProviderAWSLambda         Provider = "aws_lambda"
	ProviderGCPFunctions      Provider = "gcp_functions"
	ProviderAzureFunctions    Provider = "azure_functions"
	ProviderCloudflareWorkers Provider = "cloudflare_workers"
	ProviderCustom            Provider = "custom" // a host speaking the custom FaaS HTTP protocol
)

// Providers lists the valid providers.
var Providers = []Provider{
	ProviderAWSLambda, ProviderGCPFunctions, ProviderAzureFunctions,
	ProviderCloudflareWorkers, ProviderCustom,
}

// Limits of Job.Memory and Job.Timeout.
const (
	MinMemoryMB       = 1
	MaxMemoryMB       = 10240
	MinTimeoutSeconds = 1
	MaxTimeoutSeconds = 900
)

// JobNames returns the job names in sorted order.
func (b *Blueprint) JobNames() []string {
	names := make([]string, 0, len(b.Jobs))
	for name := range b.Jobs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// SortedJobs returns the jobs in JobNames order, each with Name set.
func (b *Blueprint) SortedJobs() []Job {
	jobs := make([]Job, 0, len(b.Jobs))
	for _, name := range b.JobNames() {
		j := b.Jobs[name]
		j.Name = name
		jobs = append(jobs, j)
	}
	return jobs
}

// ResolvedShape is the shape the job's module is built as: Shape when set;
// otherwise reactor for Go (the build chooses the shape), and empty for the
// other languages, whose source decides it (the module's exports, read as
// `ferry inspect` does).
func (j Job) ResolvedShape() Shape {
	if j.Shape != "" {
		return j.Shape
	}
	if j.Language == LanguageGo {
		return ShapeReactor
	}
	return ""
}
