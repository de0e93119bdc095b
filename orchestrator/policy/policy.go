// Package policy reads, checks and writes the operator's deployment policy:
// the JSON file the Tangle CLI keeps at
// $XDG_CONFIG_HOME/tangle/deployment-policy.json, whose "serverless" section
// says whether jobs may leave the machine and where to. Ferry reads that
// section as the Tangle CLI writes it and keeps its own settings (more
// providers, prices, the VM, thresholds, the state store) in a "ferry"
// section beside it. Sections it does not own are kept byte for byte.
//
// The schema, the defaults and how the two sections stay in step are in
// docs/policy.md.
package policy

import (
	"encoding/json"
	"slices"

	"github.com/ferryrun/ferry/orchestrator/cost"
)

// Policy is the deployment policy file.
type Policy struct {
	// Serverless is the Tangle CLI's section.
	Serverless Serverless
	// Ferry holds Ferry's extensions; nil when the file has none.
	Ferry *Extensions

	// other top-level sections (the Tangle CLI's providers, cost_limits,
	// regions, failover, …), kept verbatim.
	other map[string]json.RawMessage
}

// Serverless is the "serverless" section, exactly as the Tangle CLI writes it.
type Serverless struct {
	Enable             bool
	Provider           TangleProvider
	DefaultMemoryMB    int
	DefaultTimeoutSecs int
	FallbackToVM       bool

	other map[string]json.RawMessage // keys Ferry does not know, kept
}

// TangleProvider is serverless.provider: a type and the one field it needs.
type TangleProvider struct {
	Type           Kind   `json:"type"`
	Region         string `json:"region,omitempty"`
	ProjectID      string `json:"project_id,omitempty"`
	SubscriptionID string `json:"subscription_id,omitempty"`
	Endpoint       string `json:"endpoint,omitempty"`
}

// Extensions is the "ferry" section.
type Extensions struct {
	// Providers, when set, is the whole list of places jobs may go, in
	// order of preference; serverless.provider mirrors its first entry the
	// Tangle CLI can represent.
	Providers []Provider `json:"providers,omitempty"`
	// VM is the machine the orchestrator runs on; nil: DefaultVM.
	VM *cost.VM `json:"vm,omitempty"`
	// CostThresholdUSD is the most one remote execution may cost.
	CostThresholdUSD *float64 `json:"cost_threshold_usd,omitempty"`
	// LatencyThresholdMs is the most one remote execution may take.
	LatencyThresholdMs *float64 `json:"latency_threshold_ms,omitempty"`
	// State is the external store that lets stateful jobs run remotely.
	State *StateStore `json:"state,omitempty"`
}

// StateStore is an external state store, by URL: redis://host:port/db,
// rediss://…, or dynamodb://TABLE?region=…&endpoint=….
type StateStore struct {
	URL string `json:"url"`
}

func (e *Extensions) empty() bool {
	return e == nil || (len(e.Providers) == 0 && e.VM == nil && e.CostThresholdUSD == nil &&
		e.LatencyThresholdMs == nil && e.State == nil)
}

// The Tangle blueprint manager's defaults for a file or field that is
// missing: serverless off, Lambda in us-east-1, 512 MB, 300 s, fall back to
// a VM.
const (
	DefaultMemoryMB    = 512
	DefaultTimeoutSecs = 300
	DefaultAWSRegion   = "us-east-1"
)

// Default is the policy used when there is no file.
func Default() *Policy {
	return &Policy{Serverless: Serverless{
		Provider:           TangleProvider{Type: AWSLambda, Region: DefaultAWSRegion},
		DefaultMemoryMB:    DefaultMemoryMB,
		DefaultTimeoutSecs: DefaultTimeoutSecs,
		FallbackToVM:       true,
	}}
}

// Clone returns a deep copy.
func (p *Policy) Clone() *Policy {
	b, err := json.Marshal(p)
	if err != nil {
		panic("policy: clone: " + err.Error()) // every Policy marshals
	}
	c, err := decode("", b) // no validation: Clone works on any policy
	if err != nil {
		panic("policy: clone: " + err.Error())
	}
	return c
}

// Providers is the effective provider list, in order of preference.
//
// Without ferry.providers it is serverless.provider alone. With it, it is
// that list; but when serverless.provider no longer matches the entry it
// mirrors (the Tangle CLI changed it since Ferry wrote the file), the
// Tangle CLI's choice replaces that entry.
func (p *Policy) Providers() []Provider {
	tp := p.Serverless.Provider.provider()
	if p.Ferry == nil || len(p.Ferry.Providers) == 0 {
		return []Provider{tp}
	}
	list := slices.Clone(p.Ferry.Providers)
	if i := firstTangle(list); i >= 0 && list[i].tangle() != p.Serverless.Provider {
		list[i] = tp
		// The Tangle CLI may have picked a provider that is also listed
		// further down: keep the first of two entries with one ID.
		seen := map[string]bool{}
		list = slices.DeleteFunc(list, func(x Provider) bool {
			dup := seen[x.ID()]
			seen[x.ID()] = true
			return dup
		})
	}
	return list
}

// TangleChanged reports whether serverless.provider was changed outside
// Ferry, so it replaces an entry of ferry.providers (see Providers).
func (p *Policy) TangleChanged() bool {
	if p.Ferry == nil || len(p.Ferry.Providers) == 0 {
		return false
	}
	i := firstTangle(p.Ferry.Providers)
	return i >= 0 && p.Ferry.Providers[i].tangle() != p.Serverless.Provider
}

// SetProviders makes list the provider list: ferry.providers holds it unless
// it is a single entry serverless.provider can hold alone, and
// serverless.provider mirrors its first entry the Tangle CLI can represent
// (left as it was when there is none).
func (p *Policy) SetProviders(list []Provider) {
	if i := firstTangle(list); i >= 0 {
		p.Serverless.Provider = list[i].tangle()
	}
	if len(list) == 1 && list[0].plainTangle() {
		if p.Ferry != nil {
			p.Ferry.Providers = nil
		}
	} else {
		p.ext().Providers = slices.Clone(list)
	}
	p.compact()
}

// VM is the orchestrator's machine.
func (p *Policy) VM() cost.VM {
	if p.Ferry != nil && p.Ferry.VM != nil {
		return *p.Ferry.VM
	}
	return DefaultVM()
}

// CostThreshold and LatencyThreshold return the policy's thresholds.
func (p *Policy) CostThreshold() *float64 {
	if p.Ferry == nil {
		return nil
	}
	return p.Ferry.CostThresholdUSD
}

// LatencyThreshold returns the policy's latency threshold in ms.
func (p *Policy) LatencyThreshold() *float64 {
	if p.Ferry == nil {
		return nil
	}
	return p.Ferry.LatencyThresholdMs
}

// State returns the external state store, nil when none is configured.
func (p *Policy) State() *StateStore {
	if p.Ferry == nil {
		return nil
	}
	return p.Ferry.State
}

func (p *Policy) ext() *Extensions {
	if p.Ferry == nil {
		p.Ferry = &Extensions{}
	}
	return p.Ferry
}

func (p *Policy) compact() {
	if p.Ferry.empty() {
		p.Ferry = nil
	}
}

func firstTangle(list []Provider) int {
	return slices.IndexFunc(list, func(p Provider) bool { return p.Type.Tangle() })
}

// tangle is the entry as serverless.provider holds it.
func (p Provider) tangle() TangleProvider {
	t := TangleProvider{Type: p.Type}
	switch p.Type {
	case AWSLambda:
		t.Region = p.Region
	case GCPFunctions:
		t.ProjectID = p.ProjectID
	case AzureFunctions:
		t.SubscriptionID = p.SubscriptionID
	case Custom:
		t.Endpoint = p.Endpoint
	}
	return t
}

// plainTangle reports whether serverless.provider says all there is to say
// about the entry.
func (p Provider) plainTangle() bool {
	return p.Type.Tangle() && p == p.tangle().provider()
}

func (t TangleProvider) provider() Provider {
	return Provider{Type: t.Type, Region: t.Region, ProjectID: t.ProjectID, SubscriptionID: t.SubscriptionID, Endpoint: t.Endpoint}
}
