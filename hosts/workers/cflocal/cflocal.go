// Package cflocal is a local Cloudflare for tests: the Workers API of
// package cfapitest, whose every upload, secret change and delete is run at
// once in a real workerd (package workerd). A Worker answers at its
// workers.dev hostname, http://<script>.<subdomain>.workers.dev, through the
// edge address: connections to any *.workers.dev host go to workerd's
// router on 127.0.0.1, which dispatches on the Host header.
//
// So the code under test uploads with the production API client and
// invokes with the production HTTP client, and what runs is exactly what
// was uploaded.
package cflocal

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryrun/ferry/hosts/workers"
	"github.com/ferryrun/ferry/hosts/workers/cfapi/cfapitest"
	"github.com/ferryrun/ferry/hosts/workers/shim"
	"github.com/ferryrun/ferry/hosts/workers/workerd"
)

// Cloudflare is a running local Cloudflare.
type Cloudflare struct {
	// API is the Workers API.
	API *cfapitest.Server
	// Edge is workerd's address, where every *.workers.dev connection
	// goes.
	Edge string

	t       testing.TB
	mu      sync.Mutex
	proc    *workerd.Process
	workers map[string]shim.Worker
	dataDir string
	errs    []error
}

// Options tune Start.
type Options struct {
	API cfapitest.Options
	// Log receives workerd's output; nil: t.Log.
	Log func(line string)
}

// Start starts the API and a workerd with no Workers (the router only),
// and stops both when the test ends. Without workerd the test is skipped:
// `make deps` installs it.
func Start(t testing.TB, opts Options) *Cloudflare {
	t.Helper()
	bin, err := workerd.Find()
	if err != nil {
		t.Skipf("%v", err)
	}
	c := &Cloudflare{t: t, workers: map[string]shim.Worker{}, dataDir: t.TempDir()}
	logf := opts.Log
	if logf == nil {
		logf = func(line string) { t.Log("workerd: " + line) }
	}
	addr, err := workerd.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.proc, err = workerd.Start(ctx, workerd.Config{Addr: addr, DataDir: c.dataDir, AllowPrivateNetwork: true},
		workerd.Options{Binary: bin, Dir: t.TempDir(), Log: lineWriter(logf)})
	if err != nil {
		t.Fatalf("cflocal: %v", err)
	}
	t.Cleanup(func() { _ = c.proc.Stop(5 * time.Second) })
	c.Edge = addr
	api := opts.API
	user := api.OnChange
	api.OnChange = func(name string, s cfapitest.Uploaded, deleted bool) {
		c.apply(name, s, deleted)
		if user != nil {
			user(name, s, deleted)
		}
	}
	c.API = cfapitest.Start(t, api)
	return c
}

// apply runs the account's Workers as they now are.
func (c *Cloudflare) apply(name string, s cfapitest.Uploaded, deleted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if deleted {
		delete(c.workers, name)
	} else {
		c.workers[name] = Worker(s)
	}
	cfg := workerd.Config{Addr: c.Edge, DataDir: c.dataDir, AllowPrivateNetwork: true}
	names := make([]string, 0, len(c.workers))
	for n := range c.workers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cfg.Workers = append(cfg.Workers, c.workers[n])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.proc.Reload(ctx, cfg); err != nil {
		c.errs = append(c.errs, err)
		c.t.Errorf("cflocal: workerd refused the account's Workers after %s changed: %v", name, err)
	}
}

// Worker is an uploaded Worker as workerd runs it: the main module first,
// the bindings and Durable Object classes as Cloudflare holds them.
func Worker(s cfapitest.Uploaded) shim.Worker {
	w := shim.Worker{Name: s.Name, CompatibilityDate: s.Metadata.CompatibilityDate, CompatibilityFlags: s.Metadata.CompatibilityFlags,
		DurableObjects: slices.Clone(s.DurableObjectClasses)}
	main := s.Metadata.MainModule
	if m, ok := s.Modules[main]; ok {
		w.Modules = append(w.Modules, shim.Module{Name: main, ContentType: m.ContentType, Data: m.Data})
	}
	var rest []string
	for n := range s.Modules {
		if n != main {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range rest {
		m := s.Modules[n]
		w.Modules = append(w.Modules, shim.Module{Name: n, ContentType: m.ContentType, Data: m.Data})
	}
	for _, b := range s.Bindings {
		w.Bindings = append(w.Bindings, shim.Binding{Type: b.Type, Name: b.Name, Text: b.Text, JSON: b.JSON,
			ClassName: b.ClassName, ScriptName: b.ScriptName, Service: b.Service})
	}
	return w
}

// HTTPClient is a client whose connections to *.workers.dev go to the
// local edge; everything else is refused, so no call leaves the machine.
func (c *Cloudflare) HTTPClient() *http.Client { return workers.EdgeClient(c.Edge) }

// URL is a Worker's base URL as the edge serves it.
func URL(script, subdomain string) string { return workers.EdgeURL(script, subdomain) }

func lineWriter(f func(string)) writerFunc {
	return func(b []byte) (int, error) {
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			f(l)
		}
		return len(b), nil
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
