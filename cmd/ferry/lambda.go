package main

import (
	"context"

	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/lambda"
	"github.com/ferryrun/ferry/orchestrator/policy"
	"github.com/ferryrun/ferry/orchestrator/service"
)

// envLambdaBootstrap names the bootstrap executable when --lambda-bootstrap
// does not.
const envLambdaBootstrap = "FERRY_LAMBDA_BOOTSTRAP"

// maxBootstrapBytes bounds the bootstrap read into memory (it is ~12 MB).
const maxBootstrapBytes = 64 << 20

// goArch maps a Lambda architecture to Go's.
func goArch(lambdaArch string) string {
	if lambdaArch == lambda.ArchX86 {
		return "amd64"
	}
	return "arm64"
}

// findBootstrap returns the ferry-lambda executable for arch: flag, else
// $FERRY_LAMBDA_BOOTSTRAP, else ferry-lambda-linux-<goarch> beside this
// executable or in ./bin (where `make lambda` puts it).
func findBootstrap(flag, arch string) ([]byte, string, error) {
	name := "ferry-lambda-linux-" + goArch(arch)
	var candidates []string
	switch {
	case flag != "":
		candidates = []string{flag}
	case os.Getenv(envLambdaBootstrap) != "":
		candidates = []string{os.Getenv(envLambdaBootstrap)}
	default:
		if exe, err := os.Executable(); err == nil {
			candidates = append(candidates, filepath.Join(filepath.Dir(exe), name))
		}
		candidates = append(candidates, filepath.Join("bin", name))
	}
	for _, p := range candidates {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.Size() > maxBootstrapBytes {
			return nil, p, fmt.Errorf("lambda bootstrap %s is %d bytes, more than %d: not a ferry-lambda binary", p, fi.Size(), maxBootstrapBytes)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, p, fmt.Errorf("lambda bootstrap: %w", err)
		}
		if len(b) < 4 || string(b[:4]) != "\x7fELF" {
			return nil, p, fmt.Errorf("lambda bootstrap %s is not a Linux executable", p)
		}
		return b, p, nil
	}
	return nil, "", fmt.Errorf("no Lambda bootstrap for %s: build it with `make lambda` (bin/%s), or give --lambda-bootstrap or $%s; looked at %s",
		arch, name, envLambdaBootstrap, strings.Join(candidates, ", "))
}

// lambdaHosts makes Lambda hosts for the policy's aws-lambda providers,
// one per provider (a region each), sharing one bootstrap per
// architecture. It is service.Config.NewHost for ferry serve, and what
// ferry deploy uses.
type lambdaHosts struct {
	pol       *policy.Policy
	bootstrap string // --lambda-bootstrap
	engine    string
	cache     map[string][]byte // arch → bootstrap
}

// newHost makes the host for p, or ErrNoHost for other kinds.
func (l *lambdaHosts) newHost(ctx context.Context, p policy.Provider) (host.Host, error) {
	if p.Type != policy.AWSLambda {
		return nil, fmt.Errorf("%w: %s", service.ErrNoHost, p.Type)
	}
	if p.Role == "" {
		return nil, fmt.Errorf("%s: no execution role; set one with `ferry cloud policy --faas-provider aws-lambda --faas-aws-region %s --faas-aws-role arn:aws:iam::ACCOUNT:role/NAME`", p.ID(), p.Region)
	}
	arch := p.Arch
	if arch == "" {
		arch = lambda.ArchARM64
	}
	if l.cache == nil {
		l.cache = map[string][]byte{}
	}
	boot, ok := l.cache[arch]
	if !ok {
		b, _, err := findBootstrap(l.bootstrap, arch)
		if err != nil {
			return nil, err
		}
		boot = b
		l.cache[arch] = b
	}
	// Credentials, retries and endpoints come from the SDK's default
	// chain: the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID,
	// AWS_ENDPOINT_URL_LAMBDA, …) and ~/.aws.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(p.Region))
	if err != nil {
		return nil, fmt.Errorf("%s: AWS configuration: %w", p.ID(), err)
	}
	var stateSpec string
	if st := l.pol.State(); st != nil && !strings.HasPrefix(st.URL, "file:") {
		stateSpec = st.URL
	}
	return lambda.New(lambda.Config{
		Region: p.Region, Name: p.ID(), AWS: awsCfg, Role: p.Role, Arch: arch, Bootstrap: boot,
		State: stateSpec, Engine: l.engine,
	})
}
