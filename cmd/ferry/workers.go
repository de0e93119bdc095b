package main

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/workers"
	"github.com/ferryrun/ferry/orchestrator/policy"
)

// Environment the Workers host reads. CLOUDFLARE_API_TOKEN and
// CLOUDFLARE_ACCOUNT_ID are wrangler's names, so one setup serves both.
const (
	envCFToken     = "CLOUDFLARE_API_TOKEN"
	envCFAccount   = "CLOUDFLARE_ACCOUNT_ID"
	envCFAPI       = "FERRY_CLOUDFLARE_API_URL" // the API elsewhere (a local one)
	envWorkersEdge = "FERRY_WORKERS_EDGE"       // connect *.workers.dev here, over plain HTTP (a local workerd)
	envWorkersSub  = "FERRY_WORKERS_SUBDOMAIN"  // the account's workers.dev subdomain, to skip asking
)

// workersHost makes the Workers host for a cloudflare-workers provider.
// token is the bearer token every Worker requires.
func workersHost(p policy.Provider, token string) (host.Host, error) {
	apiToken := os.Getenv(envCFToken)
	if apiToken == "" {
		return nil, fmt.Errorf("%s: no Cloudflare API token: set $%s to a token with the \"Workers Scripts Write\" permission", p.ID(), envCFToken)
	}
	account := p.AccountID
	if account == "" {
		account = os.Getenv(envCFAccount)
	}
	if account == "" {
		return nil, fmt.Errorf("%s: no Cloudflare account: ferry cloud policy --faas-provider cloudflare-workers --faas-cf-account ID, or $%s", p.ID(), envCFAccount)
	}
	if token == "" {
		return nil, errors.New(p.ID() + ": Workers are public on workers.dev, so Ferry requires a bearer token for them: --host-token-file FILE or $FERRY_HOST_TOKEN")
	}
	cfg := workers.Config{
		Name: p.ID(), AccountID: account, APIToken: apiToken, APIBaseURL: os.Getenv(envCFAPI),
		Plan: p.Plan, CPUMs: p.CPUMs, Token: token, Subdomain: os.Getenv(envWorkersSub),
	}
	if edge := os.Getenv(envWorkersEdge); edge != "" {
		if _, _, err := net.SplitHostPort(edge); err != nil {
			return nil, fmt.Errorf("$%s %q: want host:port", envWorkersEdge, edge)
		}
		cfg.URL = workers.EdgeURL
		cfg.HTTPClient = workers.EdgeClient(edge)
	}
	return workers.New(cfg)
}
