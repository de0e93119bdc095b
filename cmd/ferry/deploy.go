package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/orchestrator/plan"
	"github.com/ferryrun/ferry/orchestrator/policy"
	"github.com/ferryrun/ferry/orchestrator/service"
)

// deployed is one line of ferry deploy's result.
type deployed struct {
	Job      string  `json:"job"`
	Provider string  `json:"provider"`
	Status   string  `json:"status"` // created/updated, unchanged, skipped, failed
	ID       string  `json:"id,omitempty"`
	Endpoint string  `json:"endpoint,omitempty"`
	Region   string  `json:"region,omitempty"`
	Digest   string  `json:"digest,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"`
	Reason   string  `json:"reason,omitempty"`
}

func newDeployCmd(e *env) *cobra.Command {
	var (
		provider, policyFile, bootstrapPath, tokenFile, engine string
		jobs                                                   []string
		js                                                     bool
	)
	cmd := &cobra.Command{
		Use:   "deploy --provider KIND|ID BUNDLE",
		Short: "Deploy a bundle's jobs to a FaaS provider ahead of ferry serve",
		Long: `Deploy every job of a bundle that the plan lets run on a provider (as
"ferry plan" shows) to each of the policy's entries of that provider: every
configured region for aws-lambda. A job whose function already holds the
same module and configuration is left alone, so deploying twice uploads
nothing the second time. ferry serve deploys the same way at start; use
deploy to do it ahead of time, in CI, or for one provider only.

aws-lambda needs an execution role in the policy (--faas-aws-role), AWS
credentials from the usual places (AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws;
AWS_ENDPOINT_URL_LAMBDA points the API elsewhere, such as at
"ferry host lambda-local"), and the bootstrap executable for the function's
architecture ("make lambda" builds bin/ferry-lambda-linux-{arm64,amd64}).

cloudflare-workers needs the account (--faas-cf-account, or
$CLOUDFLARE_ACCOUNT_ID), an API token with "Workers Scripts Write"
($CLOUDFLARE_API_TOKEN), a workers.dev subdomain on the account, and a
bearer token the Workers will require (--host-token-file or
$FERRY_HOST_TOKEN). Each job becomes the Worker ferry-<job>; jobs that keep
state share the Worker ferry-state. $FERRY_CLOUDFLARE_API_URL and
$FERRY_WORKERS_EDGE point the API and the Workers elsewhere (a local
workerd, docs/workers.md).

Progress goes to stderr, one line per step; --json prints the result.`,
		Example: `  ferry cloud policy --serverless true --faas-provider aws-lambda --faas-regions us-east-1,eu-west-1 \
      --faas-aws-role arn:aws:iam::123456789012:role/ferry-jobs
  ferry deploy --provider aws-lambda app.bundle
  ferry deploy --provider aws-lambda/eu-west-1 --job square app.bundle --json
  CLOUDFLARE_API_TOKEN=… ferry deploy --provider cloudflare-workers --host-token-file token app.bundle`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if provider == "" {
				return withCode(exitUsage, errors.New("--provider is required (aws-lambda, cloudflare-workers, custom, or an ID from ferry cloud show)"))
			}
			b, err := bundle.Open(args[0])
			if err != nil {
				code := exitHost
				if errors.Is(err, bundle.ErrInvalid) || errors.Is(err, bundle.ErrSchema) || errors.Is(err, bundle.ErrModule) {
					code = exitModule
				}
				return withCode(code, err)
			}
			for _, j := range jobs {
				if _, ok := b.Manifest.Job(j); !ok {
					return withCode(exitUsage, fmt.Errorf("--job %s: the bundle has no such job", j))
				}
			}
			pol, _, _, err := loadPolicy(policyFile)
			if err != nil {
				return err
			}
			token, err := readToken(tokenFile, "FERRY_HOST_TOKEN")
			if err != nil {
				return withCode(exitUsage, err)
			}
			var targets []policy.Provider
			for _, p := range pol.Providers() {
				if string(p.Type) == provider || p.ID() == provider {
					targets = append(targets, p)
				}
			}
			if len(targets) == 0 {
				return withCode(exitUsage, fmt.Errorf("--provider %s: the policy has no such provider (ferry cloud show lists them)", provider))
			}
			if !pol.Serverless.Enable {
				return withCode(exitUsage, errors.New("serverless is off in the policy, so no job may run on a provider: ferry cloud policy --serverless true"))
			}
			jobsIn, prefs := plan.FromManifest(b.Manifest)
			p := plan.Make(plan.Input{Blueprint: b.Manifest.Blueprint, Jobs: jobsIn, Policy: pol, Prefs: prefs})
			lh := &lambdaHosts{pol: pol, bootstrap: bootstrapPath, engine: engine}

			var results []deployed
			failed := 0
			for _, pr := range targets {
				id := pr.ID()
				var h host.Host
				switch pr.Type {
				case policy.AWSLambda:
					h, err = lh.newHost(ctx, pr)
				case policy.Custom:
					h, err = httphost.NewClient(httphost.ClientConfig{BaseURL: pr.Endpoint, Name: id, Token: token})
				case policy.CloudflareWorkers:
					h, err = workersHost(pr, token)
				default:
					err = fmt.Errorf("deploying to %s is not supported by this ferry yet (aws-lambda, cloudflare-workers and custom are)", pr.Type)
				}
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("%s: %w", id, err))
				}
				for _, mj := range b.Manifest.Jobs {
					if len(jobs) > 0 && !slices.Contains(jobs, mj.Name) {
						continue
					}
					r := deployed{Job: mj.Name, Provider: id}
					jp, _ := p.Job(mj.Name)
					t := planTarget(jp, id)
					if t == nil || !t.Eligible {
						r.Status, r.Reason = "skipped", "not eligible here"
						if t != nil {
							r.Reason = blockingReasons(t.Reasons)
						}
						fmt.Fprintf(e.stderr, "  skipped   %-16s %s: %s\n", mj.Name, id, r.Reason)
						results = append(results, r)
						continue
					}
					wasm, err := b.Module(mj.Name)
					if err != nil {
						return withCode(exitModule, err)
					}
					start := time.Now()
					steps := 0
					dctx := host.WithProgress(ctx, func(step string) {
						steps++
						fmt.Fprintf(e.stderr, "  %-9s %-16s %s: %s\n", "…", mj.Name, id, step)
					})
					d, err := h.Deploy(dctx, service.HostJob(mj, wasm, *t))
					r.Seconds = time.Since(start).Round(time.Millisecond).Seconds()
					if err != nil {
						failed++
						r.Status, r.Reason = "failed", err.Error()
						fmt.Fprintf(e.stderr, "  FAILED    %-16s %s: %v\n", mj.Name, id, err)
						results = append(results, r)
						continue
					}
					r.Status = "deployed"
					if steps == 0 && (pr.Type == policy.AWSLambda || pr.Type == policy.CloudflareWorkers) {
						r.Status = "unchanged"
					}
					r.ID, r.Endpoint, r.Region, r.Digest = d.ID, d.Endpoint, d.Region, d.Digest
					fmt.Fprintf(e.stderr, "  %-9s %-16s %s: %s (%.1fs)\n", r.Status, mj.Name, id, d.ID, r.Seconds)
					results = append(results, r)
				}
			}
			if js {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"deployments": results}); err != nil {
					return withCode(exitHost, err)
				}
			} else {
				n := 0
				for _, r := range results {
					if r.Status == "deployed" || r.Status == "unchanged" {
						n++
					}
				}
				fmt.Fprintf(e.stdout, "%d deployed or unchanged, %d failed, %d skipped\n", n, failed, len(results)-n-failed)
			}
			if failed > 0 {
				return withCode(exitHost, fmt.Errorf("%d deployment(s) failed: %w", failed, errReported))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&provider, "provider", "", "provider `KIND` (aws-lambda, cloudflare-workers, custom) or ID (aws-lambda/us-east-1) to deploy to")
	fl.StringSliceVar(&jobs, "job", nil, "deploy only these jobs (repeatable)")
	fl.StringVar(&policyFile, "policy", "", "deployment policy `FILE` (default: the Tangle CLI's file)")
	fl.StringVar(&bootstrapPath, "lambda-bootstrap", "", "ferry-lambda executable for the functions' architecture (default: $"+envLambdaBootstrap+", else bin/ferry-lambda-linux-ARCH)")
	fl.StringVar(&engine, "lambda-engine", "", "engine the Lambda bootstrap runs jobs on: tiered (default), compiler or interpreter")
	fl.StringVar(&tokenFile, "host-token-file", "", "bearer token for custom FaaS hosts and Workers, from `FILE` (default: $FERRY_HOST_TOKEN)")
	fl.BoolVar(&js, "json", false, "print the result as JSON")
	return cmd
}

func planTarget(jp *plan.JobPlan, id string) *plan.Target {
	if jp == nil {
		return nil
	}
	for i := range jp.Targets {
		if jp.Targets[i].ID == id {
			return &jp.Targets[i]
		}
	}
	return nil
}

func blockingReasons(rs []plan.Reason) string {
	var out []string
	for _, r := range rs {
		if r.Blocking {
			out = append(out, r.Message)
		}
	}
	if len(out) == 0 {
		return "not eligible here"
	}
	return strings.Join(out, "; ")
}
