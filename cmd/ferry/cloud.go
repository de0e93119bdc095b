package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryrun/ferry/orchestrator/policy"
)

func newCloudCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cloud",
		Short: "Configure where jobs may run: the deployment policy",
		Long: `The deployment policy says whether jobs may leave this machine, to which FaaS
providers, and what the machine and the providers cost. It is the Tangle
CLI's file, $XDG_CONFIG_HOME/tangle/deployment-policy.json (default
~/.config/tangle/deployment-policy.json); Ferry reads its "serverless"
section and keeps its own settings in a "ferry" section beside it.
docs/policy.md has the schema.`,
		Example: `  ferry cloud policy --serverless true --faas-provider aws-lambda --faas-aws-region us-east-1
  ferry cloud show --json`,
	}
	var path string
	cmd.PersistentFlags().StringVar(&path, "policy", "", "policy file (default: the Tangle CLI's)")
	cmd.AddCommand(newCloudPolicyCmd(e, &path), newCloudShowCmd(e, &path))
	return cmd
}

// policyPath resolves --policy or the default location.
func policyPath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	p, err := policy.Path()
	if err != nil {
		return "", withCode(exitHost, err)
	}
	return p, nil
}

// loadPolicy reads the policy; a malformed file is a usage error (the
// operator fixes the file), an unreadable one a host error.
func loadPolicy(flag string) (*policy.Policy, string, bool, error) {
	path, err := policyPath(flag)
	if err != nil {
		return nil, "", false, err
	}
	p, exists, err := policy.Load(path)
	if err != nil {
		if errors.Is(err, policy.ErrSyntax) || errors.Is(err, policy.ErrInvalid) {
			return nil, path, exists, withCode(exitUsage, fmt.Errorf("policy %s is not usable; fix or delete it:\n%w", path, err))
		}
		return nil, path, exists, withCode(exitHost, err)
	}
	return p, path, exists, nil
}

func newCloudShowCmd(e *env, path *string) *cobra.Command {
	var js bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the deployment policy, with every default and assumption filled in",
		Long: `Show the effective deployment policy: serverless on or off, the defaults, the
VM, the thresholds, the state store, and every provider with the limits,
price and latency estimate Ferry assumes for it. A missing file shows the
defaults (serverless off).`,
		Example: `  ferry cloud show
  ferry cloud show --json | jq '.providers[].id'
  ferry cloud show --policy ./policy.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, file, exists, err := loadPolicy(*path)
			if err != nil {
				return err
			}
			return writeView(e.stdout, p.View(file, exists), js)
		},
	}
	cmd.Flags().BoolVar(&js, "json", false, "print JSON")
	return cmd
}

func writeView(w io.Writer, v policy.View, js bool) error {
	if js {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return withCode(exitHost, enc.Encode(v))
	}
	return withCode(exitHost, v.WriteText(w))
}

func newCloudPolicyCmd(e *env, path *string) *cobra.Command {
	var (
		js bool
		f  policyFlags
	)
	cmd := &cobra.Command{
		Use:   "policy [flags]",
		Short: "Change the deployment policy (the same flags as the Tangle CLI, and more)",
		Long: `Change the deployment policy and save it atomically (mode 0600). The Tangle
CLI's flags work as they do there: --serverless, --faas-provider,
--faas-aws-region, --faas-gcp-project, --faas-azure-subscription,
--faas-custom-endpoint, --faas-memory, --faas-timeout, --serverless-fallback.

--faas-provider makes that provider the only one; add --faas-add to add it to
the list instead (several custom hosts, Lambda in several regions, Workers
beside Lambda). A provider's required flag is checked: gcp-functions needs
--faas-gcp-project, azure-functions --faas-azure-subscription, custom
--faas-custom-endpoint, cloudflare-workers --faas-cf-account.

Nothing is written when a value is wrong. Without flags, it shows the policy.`,
		Example: `  ferry cloud policy --serverless true --faas-provider aws-lambda --faas-aws-region us-east-1 --faas-memory 1024 --faas-timeout 600
  ferry cloud policy --faas-provider custom --faas-custom-endpoint https://faas.example.com
  ferry cloud policy --faas-provider cloudflare-workers --faas-cf-account 0123456789abcdef0123456789abcdef --faas-add
  ferry cloud policy --faas-provider aws-lambda --faas-regions us-east-1,eu-west-1
  ferry cloud policy --vm-hourly-price 0.0084 --vm-instance t4g.micro --cost-threshold 0.0001 --latency-threshold 250
  ferry cloud policy --state-store redis://127.0.0.1:6379/0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := f.update(cmd.Flags())
			if err != nil {
				return withCode(exitUsage, err)
			}
			p, file, exists, err := loadPolicy(*path)
			if err != nil {
				return err
			}
			if u.Empty() {
				if !js {
					fmt.Fprintln(e.stdout, "No changes given. The current policy:")
					fmt.Fprintln(e.stdout)
				}
				return writeView(e.stdout, p.View(file, exists), js)
			}
			q, changes, err := p.Apply(u)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("nothing written:\n%w", err))
			}
			if err := policy.Save(file, q); err != nil {
				return withCode(exitHost, fmt.Errorf("nothing written: %w", err))
			}
			if js {
				return writeView(e.stdout, q.View(file, true), true)
			}
			for _, c := range changes {
				fmt.Fprintf(e.stdout, "✓ %s\n", c)
			}
			fmt.Fprintf(e.stdout, "saved %s\n", file)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&js, "json", false, "print the resulting policy as JSON")
	f.register(fl)
	return cmd
}

// policyFlags are `ferry cloud policy`'s flags.
type policyFlags struct {
	serverless, fallback, allowNetwork                    valueBool
	provider, awsRegion, arch, role, gcp, azure, endpoint string
	cfAccount, cfPlan, name, vmInstance, costT, latencyT  string
	state                                                 string
	regions, remove                                       []string
	add                                                   bool
	cfCPUMs, memory, timeout, vmVCPUs                     int
	vmHourly, vmUtil                                      float64
}

func (f *policyFlags) register(fl *pflag.FlagSet) {
	fl.Var(&f.serverless, "serverless", "allow jobs to run on FaaS providers: true or false")
	fl.StringVar(&f.provider, "faas-provider", "", "aws-lambda, gcp-functions, azure-functions, custom or cloudflare-workers")
	fl.BoolVar(&f.add, "faas-add", false, "add the --faas-provider to the list instead of replacing the list")
	fl.StringSliceVar(&f.remove, "faas-remove", nil, "remove providers by ID (as ferry cloud show lists them)")
	fl.StringVar(&f.awsRegion, "faas-aws-region", "", "AWS region for aws-lambda (default us-east-1)")
	fl.StringSliceVar(&f.regions, "faas-regions", nil, "aws-lambda in each of these regions (comma-separated)")
	fl.StringVar(&f.arch, "faas-arch", "", "Lambda architecture: arm64 (default) or x86_64")
	fl.StringVar(&f.role, "faas-aws-role", "", "IAM execution role ARN Lambda functions run as (required to deploy to aws-lambda)")
	fl.StringVar(&f.gcp, "faas-gcp-project", "", "GCP project ID (gcp-functions)")
	fl.StringVar(&f.azure, "faas-azure-subscription", "", "Azure subscription ID (azure-functions)")
	fl.StringVar(&f.endpoint, "faas-custom-endpoint", "", "base URL of a custom FaaS host (custom)")
	fl.StringVar(&f.cfAccount, "faas-cf-account", "", "Cloudflare account ID (cloudflare-workers)")
	fl.StringVar(&f.cfPlan, "faas-cf-plan", "", "Workers plan: paid (default) or free")
	fl.IntVar(&f.cfCPUMs, "faas-cf-cpu-ms", 0, "Workers CPU limit per call in ms (paid: 1..300000, default 30000)")
	fl.StringVar(&f.name, "faas-name", "", "name for the provider entry (to keep several of one kind)")
	fl.Var(&f.allowNetwork, "faas-allow-network", "may jobs that make HTTP requests run on this provider: true or false")
	fl.IntVar(&f.memory, "faas-memory", 0, "default memory for functions, MB (128..32768)")
	fl.IntVar(&f.timeout, "faas-timeout", 0, "default timeout for functions, seconds (1..3600)")
	fl.Var(&f.fallback, "serverless-fallback", "fall back to this machine when serverless fails: true or false")
	fl.StringVar(&f.vmInstance, "vm-instance", "", "this machine's instance type, for display")
	fl.Float64Var(&f.vmHourly, "vm-hourly-price", 0, "this machine's price, USD per hour")
	fl.IntVar(&f.vmVCPUs, "vm-vcpus", 0, "this machine's vCPUs")
	fl.Float64Var(&f.vmUtil, "vm-utilisation", 0, "expected average busy fraction of this machine, (0, 1]")
	fl.StringVar(&f.costT, "cost-threshold", "", `most a remote execution may cost, USD, or "none"`)
	fl.StringVar(&f.latencyT, "latency-threshold", "", `most a remote execution may take, ms, or "none"`)
	fl.StringVar(&f.state, "state-store", "", `external state store URL (redis://…, rediss://…, dynamodb://TABLE?region=…), or "none"`)
}

// update turns the flags that were given into a policy.Update.
func (f *policyFlags) update(fl *pflag.FlagSet) (policy.Update, error) {
	var u policy.Update
	set := fl.Changed
	str := func(name, v string) *string {
		if !set(name) {
			return nil
		}
		return &v
	}
	if set("serverless") {
		u.Serverless = &f.serverless.v
	}
	if set("serverless-fallback") {
		u.FallbackToVM = &f.fallback.v
	}
	if set("faas-allow-network") {
		u.AllowNetwork = &f.allowNetwork.v
	}
	if set("faas-provider") {
		k := policy.Kind(f.provider)
		u.Provider = &k
	}
	u.Add = f.add
	u.Remove = f.remove
	u.AWSRegion = str("faas-aws-region", f.awsRegion)
	u.Regions = f.regions
	u.Arch = str("faas-arch", f.arch)
	u.Role = str("faas-aws-role", f.role)
	u.GCPProject = str("faas-gcp-project", f.gcp)
	u.AzureSubscription = str("faas-azure-subscription", f.azure)
	u.CustomEndpoint = str("faas-custom-endpoint", f.endpoint)
	u.CFAccount = str("faas-cf-account", f.cfAccount)
	u.CFPlan = str("faas-cf-plan", f.cfPlan)
	u.Name = str("faas-name", f.name)
	u.VMInstance = str("vm-instance", f.vmInstance)
	if set("faas-cf-cpu-ms") {
		u.CFCPUMs = &f.cfCPUMs
	}
	if set("faas-memory") {
		if f.memory < policy.MinMemoryMB || f.memory > policy.MaxMemoryMB {
			return u, fmt.Errorf("--faas-memory %d: want %d..%d MB", f.memory, policy.MinMemoryMB, policy.MaxMemoryMB)
		}
		u.MemoryMB = &f.memory
	}
	if set("faas-timeout") {
		if f.timeout < 1 || f.timeout > policy.MaxTimeoutSecs {
			return u, fmt.Errorf("--faas-timeout %d: want 1..%d seconds", f.timeout, policy.MaxTimeoutSecs)
		}
		u.TimeoutSecs = &f.timeout
	}
	if set("vm-hourly-price") {
		u.VMHourlyUSD = &f.vmHourly
	}
	if set("vm-vcpus") {
		u.VMVCPUs = &f.vmVCPUs
	}
	if set("vm-utilisation") {
		u.VMUtilisation = &f.vmUtil
	}
	var err error
	if set("cost-threshold") {
		if u.CostThresholdUSD, u.ClearCostThreshold, err = optFloat("--cost-threshold", f.costT); err != nil {
			return u, err
		}
	}
	if set("latency-threshold") {
		if u.LatencyThresholdMs, u.ClearLatencyThreshold, err = optFloat("--latency-threshold", f.latencyT); err != nil {
			return u, err
		}
	}
	if set("state-store") {
		if f.state == "none" || f.state == "" {
			u.ClearState = true
		} else {
			u.StateURL = &f.state
		}
	}
	return u, nil
}

// optFloat parses a number or "none".
func optFloat(flag, s string) (*float64, bool, error) {
	if strings.EqualFold(s, "none") {
		return nil, true, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, false, fmt.Errorf("%s %q: want a number or none", flag, s)
	}
	return &v, false, nil
}

// valueBool is a boolean flag that takes its value as the next argument,
// as the Tangle CLI's do: --serverless true.
type valueBool struct{ v bool }

func (b *valueBool) String() string { return strconv.FormatBool(b.v) }
func (b *valueBool) Type() string   { return "bool" }
func (b *valueBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	b.v = v
	return nil
}
