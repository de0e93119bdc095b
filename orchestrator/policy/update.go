package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ferryrun/ferry/orchestrator/cost"
)

// Update is a change to a policy, as `ferry cloud policy` flags give it. A
// nil field is left alone.
type Update struct {
	Serverless *bool
	// Provider is --faas-provider: the provider list becomes this provider
	// (in each of Regions for aws-lambda), or, with Add, gains it.
	Provider *Kind
	Add      bool
	// Remove names entries (by ID) to drop.
	Remove []string

	AWSRegion         *string
	Regions           []string
	Arch              *string
	Role              *string
	GCPProject        *string
	AzureSubscription *string
	CustomEndpoint    *string
	CFAccount         *string
	CFPlan            *string
	CFCPUMs           *int
	Name              *string
	AllowNetwork      *bool

	MemoryMB     *int
	TimeoutSecs  *int
	FallbackToVM *bool

	VMInstance    *string
	VMHourlyUSD   *float64
	VMVCPUs       *int
	VMUtilisation *float64

	// CostThresholdUSD and LatencyThresholdMs set a threshold; the Clear
	// fields remove one.
	CostThresholdUSD      *float64
	ClearCostThreshold    bool
	LatencyThresholdMs    *float64
	ClearLatencyThreshold bool
	// StateURL sets the external state store; ClearState removes it.
	StateURL   *string
	ClearState bool
}

// Empty reports whether the update changes nothing.
func (u Update) Empty() bool {
	return u.Serverless == nil && u.Provider == nil && len(u.Remove) == 0 && u.kindFlags() == "" &&
		u.MemoryMB == nil && u.TimeoutSecs == nil && u.FallbackToVM == nil && u.VMInstance == nil &&
		u.VMHourlyUSD == nil && u.VMVCPUs == nil && u.VMUtilisation == nil && u.CostThresholdUSD == nil &&
		!u.ClearCostThreshold && u.LatencyThresholdMs == nil && !u.ClearLatencyThreshold &&
		u.StateURL == nil && !u.ClearState && !u.Add
}

// kindFlags names the first provider-specific setting given, "" for none.
func (u Update) kindFlags() string {
	for _, f := range u.providerFlags() {
		if f.set {
			return f.flag
		}
	}
	return ""
}

type providerFlag struct {
	flag string
	set  bool
	kind Kind // "" : any kind
}

func (u Update) providerFlags() []providerFlag {
	return []providerFlag{
		{"--faas-aws-region", u.AWSRegion != nil, AWSLambda},
		{"--faas-regions", len(u.Regions) > 0, AWSLambda},
		{"--faas-arch", u.Arch != nil, AWSLambda},
		{"--faas-aws-role", u.Role != nil, AWSLambda},
		{"--faas-gcp-project", u.GCPProject != nil, GCPFunctions},
		{"--faas-azure-subscription", u.AzureSubscription != nil, AzureFunctions},
		{"--faas-custom-endpoint", u.CustomEndpoint != nil, Custom},
		{"--faas-cf-account", u.CFAccount != nil, CloudflareWorkers},
		{"--faas-cf-plan", u.CFPlan != nil, CloudflareWorkers},
		{"--faas-cf-cpu-ms", u.CFCPUMs != nil, CloudflareWorkers},
		{"--faas-name", u.Name != nil, ""},
		{"--faas-allow-network", u.AllowNetwork != nil, ""},
	}
}

// Apply returns a copy of p with u applied and validated, and a line per
// change for the operator. p itself is not modified.
func (p *Policy) Apply(u Update) (*Policy, []string, error) {
	q := p.Clone()
	var changes []string
	note := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }
	usage := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
	}

	if u.Serverless != nil {
		q.Serverless.Enable = *u.Serverless
		note("serverless: %s", onOff(*u.Serverless))
	}
	if u.Provider == nil {
		if f := u.kindFlags(); f != "" {
			return nil, nil, usage("%s needs --faas-provider (the provider it configures)", f)
		}
		if u.Add {
			return nil, nil, usage("--faas-add needs --faas-provider")
		}
	} else {
		entries, err := u.entries()
		if err != nil {
			return nil, nil, err
		}
		list := entries
		replaced := map[string]bool{}
		if u.Add {
			list = q.Providers()
			for _, e := range entries {
				if i := slices.IndexFunc(list, func(x Provider) bool { return x.ID() == e.ID() }); i >= 0 {
					list[i] = e
					replaced[e.ID()] = true
				} else {
					list = append(list, e)
				}
			}
		}
		q.SetProviders(list)
		for _, e := range entries {
			verb := "provider"
			switch {
			case replaced[e.ID()]:
				verb = "provider replaced"
			case u.Add:
				verb = "provider added"
			}
			note("%s: %s", verb, e)
		}
	}
	if len(u.Remove) > 0 {
		list := q.Providers()
		for _, id := range u.Remove {
			i := slices.IndexFunc(list, func(x Provider) bool { return x.ID() == id })
			if i < 0 {
				return nil, nil, usage("--faas-remove %s: no such provider; have %s", id, ids(list))
			}
			list = slices.Delete(list, i, i+1)
			note("provider removed: %s", id)
		}
		if len(list) == 0 {
			return nil, nil, usage("--faas-remove would leave no provider; turn serverless off with --serverless false instead")
		}
		q.SetProviders(list)
	}
	if u.MemoryMB != nil {
		q.Serverless.DefaultMemoryMB = *u.MemoryMB
		note("default memory: %d MB", *u.MemoryMB)
	}
	if u.TimeoutSecs != nil {
		q.Serverless.DefaultTimeoutSecs = *u.TimeoutSecs
		note("default timeout: %d s", *u.TimeoutSecs)
	}
	if u.FallbackToVM != nil {
		q.Serverless.FallbackToVM = *u.FallbackToVM
		note("fall back to the VM: %s", onOff(*u.FallbackToVM))
	}
	if u.VMInstance != nil || u.VMHourlyUSD != nil || u.VMVCPUs != nil || u.VMUtilisation != nil {
		vm := q.VM()
		if u.VMInstance != nil {
			vm.Instance = *u.VMInstance
			vm.Source, vm.Seen = "policy", ""
		}
		if u.VMHourlyUSD != nil {
			vm.HourlyUSD = *u.VMHourlyUSD
			vm.Source, vm.Seen = "policy", ""
		}
		if u.VMVCPUs != nil {
			vm.VCPUs = *u.VMVCPUs
		}
		if u.VMUtilisation != nil {
			vm.Utilisation = *u.VMUtilisation
		}
		q.ext().VM = &vm
		note("vm: %s", vmString(vm))
	}
	switch {
	case u.ClearCostThreshold:
		q.ext().CostThresholdUSD = nil
		note("cost threshold: none")
	case u.CostThresholdUSD != nil:
		q.ext().CostThresholdUSD = u.CostThresholdUSD
		note("cost threshold: $%g per execution", *u.CostThresholdUSD)
	}
	switch {
	case u.ClearLatencyThreshold:
		q.ext().LatencyThresholdMs = nil
		note("latency threshold: none")
	case u.LatencyThresholdMs != nil:
		q.ext().LatencyThresholdMs = u.LatencyThresholdMs
		note("latency threshold: %g ms", *u.LatencyThresholdMs)
	}
	switch {
	case u.ClearState:
		q.ext().State = nil
		note("state store: none")
	case u.StateURL != nil:
		q.ext().State = &StateStore{URL: *u.StateURL}
		note("state store: %s", *u.StateURL)
	}
	if q.Ferry != nil {
		q.compact()
	}
	if err := q.Validate(); err != nil {
		return nil, nil, err
	}
	return q, changes, nil
}

// entries builds the provider entries --faas-provider and its flags describe.
func (u Update) entries() ([]Provider, error) {
	k := *u.Provider
	if !k.Known() {
		return nil, fmt.Errorf("%w: --faas-provider %q: want one of aws-lambda, gcp-functions, azure-functions, custom, cloudflare-workers", ErrUsage, k)
	}
	for _, f := range u.providerFlags() {
		if f.set && f.kind != "" && f.kind != k {
			return nil, fmt.Errorf("%w: %s is for --faas-provider %s, not %s", ErrUsage, f.flag, f.kind, k)
		}
	}
	e := Provider{Type: k}
	if u.Name != nil {
		e.Name = *u.Name
	}
	if u.AllowNetwork != nil && !*u.AllowNetwork {
		no := false
		e.AllowNetwork = &no
	}
	need := func(v *string, flag string) (string, error) {
		if v == nil || *v == "" {
			return "", fmt.Errorf("%w: --faas-provider %s requires %s", ErrUsage, k, flag)
		}
		return *v, nil
	}
	var err error
	switch k {
	case AWSLambda:
		if u.Arch != nil {
			e.Arch = *u.Arch
		}
		if u.Role != nil {
			e.Role = *u.Role
		}
		regions := u.Regions
		switch {
		case len(regions) > 0 && u.AWSRegion != nil:
			return nil, fmt.Errorf("%w: give --faas-aws-region or --faas-regions, not both", ErrUsage)
		case len(regions) == 0 && u.AWSRegion != nil:
			regions = []string{*u.AWSRegion}
		case len(regions) == 0:
			regions = []string{DefaultAWSRegion} // as the Tangle CLI does
		}
		if len(regions) > 1 && e.Name != "" {
			return nil, fmt.Errorf("%w: --faas-name names one entry; --faas-regions makes %d", ErrUsage, len(regions))
		}
		var out []Provider
		for _, r := range regions {
			x := e
			x.Region = strings.TrimSpace(r)
			if slices.ContainsFunc(out, func(o Provider) bool { return o.Region == x.Region }) {
				return nil, fmt.Errorf("%w: --faas-regions lists %s twice", ErrUsage, x.Region)
			}
			out = append(out, x)
		}
		return out, nil
	case GCPFunctions:
		e.ProjectID, err = need(u.GCPProject, "--faas-gcp-project")
	case AzureFunctions:
		e.SubscriptionID, err = need(u.AzureSubscription, "--faas-azure-subscription")
	case Custom:
		e.Endpoint, err = need(u.CustomEndpoint, "--faas-custom-endpoint")
	case CloudflareWorkers:
		e.AccountID, err = need(u.CFAccount, "--faas-cf-account")
		if u.CFPlan != nil {
			e.Plan = *u.CFPlan
		}
		if u.CFCPUMs != nil {
			e.CPUMs = *u.CFCPUMs
		}
	}
	if err != nil {
		return nil, err
	}
	return []Provider{e}, nil
}

func ids(list []Provider) string {
	var s []string
	for _, p := range list {
		s = append(s, p.ID())
	}
	return strings.Join(s, ", ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func vmString(v cost.VM) string {
	name := v.Instance
	if name == "" {
		name = "vm"
	}
	return fmt.Sprintf("%s, $%g/h, %d vCPU, %.0f%% utilised", name, v.HourlyUSD, v.VCPUs, v.Utilisation*100)
}
