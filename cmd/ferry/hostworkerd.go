package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/compiler/bundle"
	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/workers/shim"
	"github.com/ferryrun/ferry/hosts/workers/workerd"
	"github.com/ferryrun/ferry/runtime/modstore"
)

type hostWorkerdFlags struct {
	listen, dataDir, configDir, tokenFile, binary string
	jobs                                          []string
	allowPrivate, jsonOut, printConfig            bool
	shutdownTimeout                               time.Duration
}

// workerdInfo is what ferry host workerd prints once it serves.
type workerdInfo struct {
	URL       string           `json:"url"`
	Config    string           `json:"config"`
	DataDir   string           `json:"data_dir,omitempty"`
	Functions []workerdFuncOut `json:"functions"`
}

type workerdFuncOut struct {
	Job        string `json:"job"`
	FunctionID string `json:"function_id"`
	Worker     string `json:"worker"`
	Invoke     string `json:"invoke"`
	Stateful   bool   `json:"stateful"`
}

func newHostWorkerdCmd(e *env) *cobra.Command {
	f := &hostWorkerdFlags{}
	cmd := &cobra.Command{
		Use:   "workerd BUNDLE",
		Short: "Serve a bundle's jobs as Cloudflare Workers in a local workerd",
		Long: `Serve every job of a bundle as the Worker "ferry deploy --provider
cloudflare-workers" would upload, in workerd, Cloudflare's open-source
Workers runtime, on this machine. Each job answers the custom-FaaS invoke
protocol (as "ferry host serve" does) at
  POST /api/functions/<job>/invoke      {"job_id": 0, "args": [bytes]}
  POST /api/functions/<job>/invoke-batch
  GET  /api/functions/<job>/health
and jobs that keep state share a Durable Object store kept in --data-dir.

workerd comes from the npm package "workerd" ("make deps" installs it under
.cache/npm); --workerd or $FERRY_WORKERD name another binary. Workers reach
only public addresses, as on Cloudflare, unless --allow-private-network.
Local workerd does not enforce Cloudflare's CPU and memory limits; Ferry's
Worker enforces the job's own timeout and memory limit itself.

--print-config writes the workerd configuration and exits, to run workerd
yourself ("workerd serve DIR/config.capnp").`,
		Example: `  ferry host workerd app.bundle
  curl -s localhost:8787/api/functions/square/invoke -d '{"job_id":0,"args":[52,50]}'
  ferry host workerd --job counter --listen 127.0.0.1:0 --json app.bundle
  ferry host workerd --print-config --config-dir ./workerd app.bundle`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runHostWorkerd(cmd.Context(), e, f, args[0]) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8787", "`ADDR` to listen on (host:port; port 0 picks a free one)")
	fl.StringSliceVar(&f.jobs, "job", nil, "serve only these jobs (repeatable)")
	fl.StringVar(&f.dataDir, "data-dir", filepath.Join(defaultDir("data"), "workerd"), "`DIR` for the Durable Object state store (empty: in memory)")
	fl.StringVar(&f.configDir, "config-dir", "", "`DIR` for the generated workerd configuration (default: a temporary directory, removed on exit)")
	fl.StringVar(&f.tokenFile, "token-file", "", "require this bearer token, from `FILE` (default: $FERRY_HOST_TOKEN; none: no authentication)")
	fl.StringVar(&f.binary, "workerd", "", "workerd `BINARY` (default: $FERRY_WORKERD, .cache/npm, PATH)")
	fl.BoolVar(&f.allowPrivate, "allow-private-network", false, "let jobs' HTTP requests reach loopback and private addresses")
	fl.BoolVar(&f.printConfig, "print-config", false, "write the configuration to --config-dir and exit")
	fl.BoolVar(&f.jsonOut, "json", false, "print the address and functions as one JSON line on stdout")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 5*time.Second, "how long workerd may take to stop")
	return cmd
}

func runHostWorkerd(ctx context.Context, e *env, f *hostWorkerdFlags, path string) error {
	b, err := bundle.Open(path)
	if err != nil {
		code := exitHost
		if errors.Is(err, bundle.ErrInvalid) || errors.Is(err, bundle.ErrSchema) || errors.Is(err, bundle.ErrModule) {
			code = exitModule
		}
		return withCode(code, err)
	}
	for _, j := range f.jobs {
		if _, ok := b.Manifest.Job(j); !ok {
			return withCode(exitUsage, fmt.Errorf("--job %s: the bundle has no such job", j))
		}
	}
	token, err := readToken(f.tokenFile, "FERRY_HOST_TOKEN")
	if err != nil {
		return withCode(exitUsage, err)
	}
	if f.printConfig && f.configDir == "" {
		return withCode(exitUsage, errors.New("--print-config needs --config-dir"))
	}
	addr := f.listen
	if _, port, err := net.SplitHostPort(addr); err != nil {
		return withCode(exitUsage, fmt.Errorf("--listen %q: want host:port", addr))
	} else if port == "0" {
		if addr, err = workerd.FreeAddr(); err != nil {
			return withCode(exitHost, err)
		}
	}
	cfg := workerd.Config{Addr: addr, AllowPrivateNetwork: f.allowPrivate}
	if f.dataDir != "" {
		abs, err := filepath.Abs(f.dataDir)
		if err != nil {
			return withCode(exitUsage, err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return withCode(exitHost, fmt.Errorf("--data-dir: %w", err))
		}
		cfg.DataDir = abs
	}
	info := workerdInfo{URL: "http://" + addr, DataDir: cfg.DataDir}
	stateful := false
	for _, mj := range b.Manifest.Jobs {
		if len(f.jobs) > 0 && !slices.Contains(f.jobs, mj.Name) {
			continue
		}
		wasm, err := b.Module(mj.Name)
		if err != nil {
			return withCode(exitModule, err)
		}
		job := host.Job{Name: mj.Name, Module: wasm, Digest: modstore.Digest(wasm), Pure: mj.IsPure, AllowHosts: mj.NetworkCalls}
		if o := mj.Overrides.MemoryMB; o != nil {
			job.Limits.MemoryMB = *o
		}
		if o := mj.Overrides.TimeoutSecs; o != nil {
			job.Limits.Timeout = time.Duration(*o) * time.Second
		}
		w, err := shim.Build(shim.Spec{Script: shim.ScriptName("ferry-", mj.Name), FunctionID: mj.Name, Job: job, Token: token})
		if err != nil {
			return withCode(exitModule, fmt.Errorf("job %s: %w", mj.Name, err))
		}
		st := false
		for _, bd := range w.Bindings {
			st = st || bd.Type == "durable_object_namespace"
		}
		stateful = stateful || st
		cfg.Workers = append(cfg.Workers, *w)
		info.Functions = append(info.Functions, workerdFuncOut{Job: mj.Name, FunctionID: mj.Name, Worker: w.Name,
			Invoke: info.URL + "/api/functions/" + mj.Name + "/invoke", Stateful: st})
	}
	if len(cfg.Workers) == 0 {
		return withCode(exitUsage, errors.New("no jobs to serve"))
	}
	if stateful {
		cfg.Workers = append(cfg.Workers, *shim.State(""))
	}
	dir := f.configDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ferry-workerd-"); err != nil {
			return withCode(exitHost, err)
		}
		defer os.RemoveAll(dir)
	}
	if f.printConfig {
		p, err := workerd.Write(dir, cfg)
		if err != nil {
			return withCode(exitHost, err)
		}
		fmt.Fprintf(e.stdout, "wrote %s\nrun: workerd serve %s\n", p, p)
		return nil
	}
	fmt.Fprintf(e.stderr, "starting workerd with %d Worker(s)…\n", len(cfg.Workers))
	p, err := workerd.Start(ctx, cfg, workerd.Options{Binary: f.binary, Dir: dir, Log: e.stderr})
	if err != nil {
		if errors.Is(err, workerd.ErrNotInstalled) {
			return withCode(exitUsage, err)
		}
		return withCode(exitHost, err)
	}
	info.Config = filepath.Join(dir, "config.capnp")
	fmt.Fprintf(e.stderr, "ferry host workerd listening url=%s\n", info.URL)
	if f.jsonOut {
		if err := json.NewEncoder(e.stdout).Encode(info); err != nil {
			_ = p.Stop(f.shutdownTimeout)
			return withCode(exitHost, err)
		}
	} else {
		fmt.Fprintf(e.stdout, "workerd serves %d job(s) at %s\n", len(info.Functions), info.URL)
		for _, fn := range info.Functions {
			fmt.Fprintf(e.stdout, "  %-20s POST %s\n", fn.Job, fn.Invoke)
		}
		fmt.Fprintln(e.stdout, "Stop with Ctrl-C.")
	}
	select {
	case <-ctx.Done():
	case <-p.Exited():
		return withCode(exitHost, fmt.Errorf("workerd exited: %s", p.Tail()))
	}
	fmt.Fprintln(e.stderr, "stopping workerd")
	if err := p.Stop(f.shutdownTimeout); err != nil {
		return withCode(exitHost, err)
	}
	return nil
}
