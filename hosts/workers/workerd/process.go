package workerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled is returned by Find when no workerd binary is found.
var ErrNotInstalled = errors.New("workerd is not installed")

// Find returns the workerd binary: $FERRY_WORKERD, else the npm package's
// binary in .cache/npm under the repository root above the working
// directory or the executable (where `make deps` installs it), else
// workerd on PATH.
func Find() (string, error) {
	if p := os.Getenv("FERRY_WORKERD"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("FERRY_WORKERD: %w", err)
		}
		return p, nil
	}
	arch := map[string]string{"amd64": "64", "arm64": "arm64"}[runtime.GOARCH]
	rel := filepath.Join(".cache", "npm", "node_modules", "@cloudflare", "workerd-"+runtime.GOOS+"-"+arch, "bin", "workerd")
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			p := filepath.Join(dir, rel)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("workerd"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: set FERRY_WORKERD, put workerd on PATH, or run `make deps` (npm package workerd)", ErrNotInstalled)
}

// Options start a Process.
type Options struct {
	// Binary is workerd's path; empty: Find.
	Binary string
	// Dir holds the generated configuration; required.
	Dir string
	// Log receives workerd's output (the Workers' console lines included);
	// nil: kept only for error messages.
	Log io.Writer
	// StartTimeout bounds the wait until the router answers; default 30 s.
	StartTimeout time.Duration
}

// Process is a running workerd.
type Process struct {
	opts   Options
	cfg    Config
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	tail   *tailBuffer
	mu     sync.Mutex
}

// Start writes cfg into opts.Dir and runs workerd until the router
// answers on cfg.Addr.
func Start(ctx context.Context, cfg Config, opts Options) (*Process, error) {
	if opts.Binary == "" {
		b, err := Find()
		if err != nil {
			return nil, err
		}
		opts.Binary = b
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	p := &Process{opts: opts}
	if err := p.start(ctx, cfg); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Process) start(ctx context.Context, cfg Config) error {
	path, err := Write(p.opts.Dir, cfg)
	if err != nil {
		return err
	}
	p.cfg = cfg
	p.tail = &tailBuffer{max: 16 << 10}
	var out io.Writer = p.tail
	if p.opts.Log != nil {
		out = io.MultiWriter(p.opts.Log, p.tail)
	}
	cmd := exec.Command(p.opts.Binary, "serve", path)
	cmd.Dir = p.opts.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start workerd: %w", err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(ctx); err != nil {
		p.kill()
		return err
	}
	return nil
}

func (p *Process) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(p.opts.StartTimeout)
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		resp, err := c.Get("http://" + p.cfg.Addr + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("workerd exited at start (%v): %s", p.err, p.tail.String())
		case <-ctx.Done():
			return fmt.Errorf("workerd: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("workerd did not answer on %s within %v: %s", p.cfg.Addr, p.opts.StartTimeout, p.tail.String())
		}
	}
}

// URL is the router's base URL.
func (p *Process) URL() string { return "http://" + p.cfg.Addr }

// Config is the configuration running.
func (p *Process) Config() Config { return p.cfg }

// Exited is closed when workerd exits.
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Pid is the running workerd's process id, or 0 when it is not running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Tail is the end of workerd's output.
func (p *Process) Tail() string { return p.tail.String() }

// Reload restarts workerd with a new configuration on the same address.
// Calls in flight are cut off; workerd has no graceful reload.
func (p *Process) Reload(ctx context.Context, cfg Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.stop(5 * time.Second); err != nil {
		return err
	}
	cfg.Addr = p.cfg.Addr
	return p.start(ctx, cfg)
}

// Stop ends workerd: SIGTERM, then SIGKILL after grace.
func (p *Process) Stop(grace time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stop(grace)
}

func (p *Process) stop(grace time.Duration) error {
	if p.cmd == nil {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.kill()
	}
	p.cmd = nil
	return nil
}

func (p *Process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// FreeAddr is a loopback address whose port was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}
