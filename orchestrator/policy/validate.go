package policy

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
)

// Bounds on the values a policy may hold. Beyond them a value is a typo,
// not a setting.
const (
	MinMemoryMB    = 128
	MaxMemoryMB    = 32768 // the largest any provider offers (Cloud Run functions)
	MaxTimeoutSecs = 3600  // likewise
	maxThreshold   = 1000.0
	maxLatencyMs   = 3_600_000.0
	maxProviders   = 64
)

var (
	awsRegionRE    = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$`)
	gcpProjectRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	azureSubRE     = regexp.MustCompile(`^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$`)
	cfAccountRE    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	providerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]{0,62}$`)
	// RoleARNRE is an IAM role ARN, as Lambda's CreateFunction accepts it
	// (docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html, Role).
	RoleARNRE = regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
)

// Validate checks every value; all problems are reported, joined.
func (p *Policy) Validate() error { return p.validate("", nil) }

// validate checks p; data, when given, is the file p was read from, for
// line and column numbers.
func (p *Policy) validate(file string, data []byte) error {
	v := &validator{file: file, data: data}
	if data != nil {
		v.where = locate(data)
	}
	s := p.Serverless
	if s.Provider.Type == CloudflareWorkers {
		v.add("serverless.provider.type", "cloudflare-workers cannot be serverless.provider (the Tangle CLI cannot read it); list it in ferry.providers")
	} else {
		v.provider("serverless.provider", s.Provider.provider())
	}
	if s.DefaultMemoryMB < MinMemoryMB || s.DefaultMemoryMB > MaxMemoryMB {
		v.add("serverless.default_memory_mb", "%d MB is outside %d..%d", s.DefaultMemoryMB, MinMemoryMB, MaxMemoryMB)
	}
	if s.DefaultTimeoutSecs < 1 || s.DefaultTimeoutSecs > MaxTimeoutSecs {
		v.add("serverless.default_timeout_secs", "%d s is outside 1..%d", s.DefaultTimeoutSecs, MaxTimeoutSecs)
	}
	if e := p.Ferry; e != nil {
		if len(e.Providers) > maxProviders {
			v.add("ferry.providers", "%d providers; at most %d", len(e.Providers), maxProviders)
		}
		ids := map[string]int{}
		// Entries past the limit are not checked: the list must be cut
		// anyway, and checking thousands of entries, each error placed by
		// a scan of the file, took seconds and gave thousands of errors.
		for i, pr := range e.Providers[:min(len(e.Providers), maxProviders)] {
			path := fmt.Sprintf("ferry.providers[%d]", i)
			v.provider(path, pr)
			if j, dup := ids[pr.ID()]; dup {
				v.add(path, "%q is also ferry.providers[%d]; give one a distinct name", pr.ID(), j)
			}
			ids[pr.ID()] = i
		}
		if e.VM != nil {
			if err := e.VM.Validate(); err != nil {
				v.addErr("ferry.vm", err)
			}
		}
		if t := e.CostThresholdUSD; t != nil && (math.IsNaN(*t) || *t < 0 || *t > maxThreshold) {
			v.add("ferry.cost_threshold_usd", "%v is outside 0..%v dollars per execution", *t, maxThreshold)
		}
		if t := e.LatencyThresholdMs; t != nil && (math.IsNaN(*t) || *t <= 0 || *t > maxLatencyMs) {
			v.add("ferry.latency_threshold_ms", "%v is outside (0, %v] ms", *t, maxLatencyMs)
		}
		if e.State != nil {
			if err := ValidateStateURL(e.State.URL); err != nil {
				v.add("ferry.state.url", "%v", err)
			}
		}
	}
	return errors.Join(v.errs...)
}

type validator struct {
	file  string
	where map[string]int64
	errs  []error
	data  []byte
}

func (v *validator) add(field, format string, args ...any) {
	e := &Error{File: v.file, Field: field, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid}
	// A value that is missing from the file is reported at its parent.
	for f := field; f != "" && v.where != nil; f = parent(f) {
		if off, ok := v.where[f]; ok {
			e.Line, e.Col = lineCol(v.data, off)
			break
		}
	}
	v.errs = append(v.errs, e)
}

func (v *validator) addErr(field string, err error) {
	for _, e := range unjoin(err) {
		v.add(field, "%v", e)
	}
}

func parent(field string) string {
	if i := strings.LastIndexAny(field, ".["); i > 0 {
		return field[:i]
	}
	return ""
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (v *validator) provider(path string, p Provider) {
	if !p.Type.Known() {
		v.add(path+".type", "unknown provider %q; want one of aws-lambda, gcp-functions, azure-functions, custom, cloudflare-workers", p.Type)
		return
	}
	only := func(field, value string, kind Kind) {
		if value != "" && p.Type != kind {
			v.add(path+"."+field, "only for %s, not %s", kind, p.Type)
		}
	}
	only("region", p.Region, AWSLambda)
	only("arch", p.Arch, AWSLambda)
	only("role", p.Role, AWSLambda)
	only("project_id", p.ProjectID, GCPFunctions)
	only("subscription_id", p.SubscriptionID, AzureFunctions)
	only("endpoint", p.Endpoint, Custom)
	only("account_id", p.AccountID, CloudflareWorkers)
	only("plan", p.Plan, CloudflareWorkers)
	if p.CPUMs != 0 && p.Type != CloudflareWorkers {
		v.add(path+".cpu_ms", "only for cloudflare-workers, not %s", p.Type)
	}
	if p.Name != "" && !providerNameRE.MatchString(p.Name) {
		v.add(path+".name", "%q: want lowercase letters, digits and . _ / -, at most 63", p.Name)
	}
	switch p.Type {
	case AWSLambda:
		if !awsRegionRE.MatchString(p.Region) {
			v.add(path+".region", "%q is not an AWS region (like us-east-1)", p.Region)
		}
		if p.Arch != "" && p.Arch != ArchARM64 && p.Arch != ArchX86 {
			v.add(path+".arch", "%q: want arm64 or x86_64", p.Arch)
		}
		if p.Role != "" && !RoleARNRE.MatchString(p.Role) {
			v.add(path+".role", "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", p.Role)
		}
	case GCPFunctions:
		if !gcpProjectRE.MatchString(p.ProjectID) {
			v.add(path+".project_id", "%q is not a GCP project ID (6–30 lowercase letters, digits, hyphens)", p.ProjectID)
		}
	case AzureFunctions:
		if !azureSubRE.MatchString(p.SubscriptionID) {
			v.add(path+".subscription_id", "%q is not an Azure subscription ID (a GUID)", p.SubscriptionID)
		}
	case Custom:
		if err := ValidateEndpoint(p.Endpoint); err != nil {
			v.add(path+".endpoint", "%v", err)
		}
	case CloudflareWorkers:
		if !cfAccountRE.MatchString(p.AccountID) {
			v.add(path+".account_id", "%q is not a Cloudflare account ID (32 lowercase hex digits)", p.AccountID)
		}
		if p.Plan != "" && p.Plan != PlanFree && p.Plan != PlanPaid {
			v.add(path+".plan", "%q: want free or paid", p.Plan)
		}
		switch {
		case p.CPUMs < 0 || p.CPUMs > 300_000:
			v.add(path+".cpu_ms", "%d is outside 1..300000 (Workers Paid allows at most 5 minutes)", p.CPUMs)
		case p.CPUMs > 0 && p.plan() == PlanFree:
			v.add(path+".cpu_ms", "the Free plan's CPU limit is fixed at 10 ms")
		}
	}
	if l := p.Limits; l != nil {
		for _, f := range []struct {
			name     string
			val, max int
		}{
			{"memory_mb", l.MemoryMB, 1 << 20}, {"min_memory_mb", l.MinMemoryMB, 1 << 20},
			{"timeout_secs", l.TimeoutSecs, 86_400}, {"timeout_ms", l.TimeoutMs, 86_400_000},
			{"payload_bytes", l.PayloadBytes, 1 << 40}, {"runtime_overhead_mb", l.RuntimeOverheadMB, 1 << 20},
		} {
			if f.val < 0 || f.val > f.max {
				v.add(path+".limits."+f.name, "%d is outside 0..%d", f.val, f.max)
			}
		}
		if e := l.PayloadExpansion; math.IsNaN(e) || e < 0 || e > 16 {
			v.add(path+".limits.payload_expansion", "%v is outside 0..16", e)
		}
	}
	if p.Price != nil {
		if err := p.Price.Validate(); err != nil {
			v.addErr(path+".price", err)
		}
	}
	if l := p.Latency; l != nil {
		for _, f := range []struct {
			name string
			val  float64
		}{{"overhead_ms", l.OverheadMs}, {"cold_start_ms", l.ColdStartMs}, {"bandwidth_mbps", l.BandwidthMBps}} {
			if math.IsNaN(f.val) || f.val < 0 || f.val > 1e6 {
				v.add(path+".latency."+f.name, "%v is outside 0..1000000", f.val)
			}
		}
	}
}

// ValidateEndpoint checks a custom FaaS host's base URL.
func ValidateEndpoint(s string) error {
	if s == "" {
		return errors.New("required for a custom provider: the host's base URL")
	}
	if len(s) > 2048 {
		return errors.New("longer than 2048 characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: a base URL has no query or fragment", s)
	}
	return nil
}

// ValidateStateURL checks an external state store's URL.
func ValidateStateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", s)
		}
	case "dynamodb":
		if u.Host == "" {
			return fmt.Errorf("%q names no table (dynamodb://TABLE?region=…)", s)
		}
		if ep := u.Query().Get("endpoint"); ep != "" {
			if err := ValidateEndpoint(ep); err != nil {
				return fmt.Errorf("endpoint: %w", err)
			}
		}
	default:
		return fmt.Errorf("%q: want redis://, rediss:// or dynamodb://", s)
	}
	return nil
}
