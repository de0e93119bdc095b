package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/hosts/lambda"
	"github.com/ferryrun/ferry/hosts/lambda/locallambda"
	"github.com/ferryrun/ferry/hosts/workers/shim"
	"github.com/ferryrun/ferry/hosts/workers/workerd"
)

// hostTarget measures jobs through a host.Host, as the orchestrator calls
// them: deploy, the first (cold) call, warm calls, load.
type hostTarget struct {
	o *Options
	// deploy makes j callable and returns the host and deployment, and
	// how long until the job could be called.
	deploy func(ctx context.Context, j host.Job) (host.Host, *host.Deployment, time.Duration, error)
	// undeploy releases what deploy made.
	undeploy func(ctx context.Context, h host.Host, d *host.Deployment)
	stop     func() error
	// pid is the process serving d, for memory per instance; nil: none
	// on this machine to read (Lambda reports its own).
	pid func(d *host.Deployment) int
}

func (*hostTarget) kind() string { return KindHost }

func (t *hostTarget) close() error {
	if t.stop == nil {
		return nil
	}
	return t.stop()
}

func (t *hostTarget) measure(ctx context.Context, j *Job) (Result, []byte, error) {
	var r Result
	hj, err := hostJob(j)
	if err != nil {
		return r, nil, err
	}
	req := host.Request{Input: j.Input}
	var deploys, colds []time.Duration
	var h host.Host
	var d *host.Deployment
	var first *host.Response
	var rssBefore, rssAfter int64 // the host process around the last first call
	// Each sample deploys afresh, so its first call is cold.
	for range t.o.Samples {
		if d != nil {
			t.undeploy(ctx, h, d)
		}
		var took time.Duration
		h, d, took, err = t.deploy(ctx, hj)
		if err != nil {
			return r, nil, fmt.Errorf("deploy: %w", err)
		}
		deploys = append(deploys, took)
		rssBefore = t.rss(d)
		start := time.Now()
		first, err = h.Invoke(ctx, d, req)
		if err != nil {
			t.undeploy(ctx, h, d)
			return r, nil, fmt.Errorf("first call: %w", err)
		}
		colds = append(colds, time.Since(start))
		rssAfter = t.rss(d)
		r.LinearMemoryKB = max(r.LinearMemoryKB, float64(first.MemoryUsedBytes)/1024)
	}
	defer t.undeploy(ctx, h, d)
	r.DeployMs, r.ColdMs = medianMs(deploys), medianMs(colds)
	kb, err := t.memoryPerInstance(ctx, h, d, first, rssBefore, rssAfter)
	if err != nil {
		return r, nil, fmt.Errorf("memory per instance: %w", err)
	}
	r.MemoryPerInstanceKB = kb
	call := func(ctx context.Context) ([]byte, error) {
		res, err := h.Invoke(ctx, d, req)
		if err != nil {
			return nil, err
		}
		return res.Output, nil
	}
	if _, err := call(ctx); err != nil {
		return r, nil, err
	}
	lat, out, err := sequential(ctx, t.o.Warm, 5*t.o.Duration, call)
	if err != nil {
		return r, nil, err
	}
	r.WarmP50Us, r.WarmP99Us = quantileUs(lat, 0.5), quantileUs(lat, 0.99)
	// Hosts that keep environments warm get as many ready as there will
	// be callers, so the run measures warm calls (cold ones are measured
	// above).
	r.Load = loads(ctx, t.o, call, func(c int) error {
		if w, ok := h.(host.Warmer); ok {
			if _, err := w.Warm(ctx, d, c); err != nil {
				return fmt.Errorf("warm %d: %w", c, err)
			}
		}
		return nil
	})
	return r, out, nil
}

// rss is the resident memory of the process serving d, or -1 when there
// is none to read.
func (t *hostTarget) rss(d *host.Deployment) int64 {
	if t.pid == nil {
		return -1
	}
	n, err := processRSS(t.pid(d))
	if err != nil {
		return -1
	}
	return n
}

// memoryPerInstance is what one live instance costs the host, in KB:
//
//   - a host that reports its environment's peak (Lambda's Max Memory
//     Used; one environment holds one instance): that;
//   - a host that keeps a pool (`ferry host serve`): the growth of its
//     process's resident memory while Instances more are made ready, per
//     instance;
//   - otherwise (workerd: one instance per isolate): the growth of the
//     process's resident memory across the first call, which creates the
//     instance.
//
// Zero means the host gave nothing to measure.
func (t *hostTarget) memoryPerInstance(ctx context.Context, h host.Host, d *host.Deployment, first *host.Response, rssBefore, rssAfter int64) (float64, error) {
	if first.EnvironmentMemoryBytes > 0 {
		return float64(first.EnvironmentMemoryBytes) / 1024, nil
	}
	if t.pid == nil || rssBefore < 0 || rssAfter < 0 {
		return 0, nil
	}
	if w, ok := h.(host.Warmer); ok {
		ready0, err := w.Warm(ctx, d, 1)
		if err != nil {
			return 0, err
		}
		rss0 := t.rss(d)
		ready1, err := w.Warm(ctx, d, ready0+t.o.Instances)
		if err != nil {
			return 0, err
		}
		rss1 := t.rss(d)
		if ready1 > ready0 && rss0 >= 0 && rss1 >= 0 {
			return float64(max(rss1-rss0, 0)) / float64(ready1-ready0) / 1024, nil
		}
	}
	return float64(max(rssAfter-rssBefore, 0)) / 1024, nil
}

// newHTTPTarget starts `ferry host serve` on loopback and deploys to it
// through the HTTP client host.
func newHTTPTarget(ctx context.Context, o *Options) (*hostTarget, error) {
	if o.FerryBinary == "" {
		return nil, errors.New("the http target needs a ferry binary (Options.FerryBinary)")
	}
	const token = "ferry-bench"
	// The pool holds at least Instances, so memory per instance can be
	// measured over that many; the default is one per CPU.
	cmd := exec.Command(o.FerryBinary, "host", "serve", "--listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(o.WorkDir, "http-host"), "--state", "memory",
		"--pool-size", strconv.Itoa(max(o.Instances, runtime.NumCPU())))
	cmd.Env = append(os.Environ(), "FERRY_HOST_TOKEN="+token)
	url, err := startLogged(cmd, regexp.MustCompile(`listening" url=(http://\S+)`))
	if err != nil {
		return nil, fmt.Errorf("ferry host serve: %w", err)
	}
	c, err := httphost.NewClient(httphost.ClientConfig{BaseURL: url, Token: token, Retries: -1})
	if err != nil {
		stopProcess(cmd)
		return nil, err
	}
	return &hostTarget{o: o,
		deploy: func(ctx context.Context, j host.Job) (host.Host, *host.Deployment, time.Duration, error) {
			start := time.Now()
			d, err := c.Deploy(ctx, j)
			return c, d, time.Since(start), err
		},
		undeploy: func(ctx context.Context, h host.Host, d *host.Deployment) { _ = h.Remove(ctx, d) },
		stop:     func() error { stopProcess(cmd); return nil },
		pid:      func(*host.Deployment) int { return cmd.Process.Pid },
	}, nil
}

// startLogged starts cmd and waits for a stderr line matching re, whose
// first group it returns.
func startLogged(cmd *exec.Cmd, re *regexp.Regexp) (string, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var last string
		for sc.Scan() {
			last = sc.Text()
			if m := re.FindStringSubmatch(last); m != nil {
				found <- m[1]
				_, _ = io.Copy(io.Discard, stderr)
				return
			}
		}
		found <- "\x00" + last
	}()
	select {
	case s := <-found:
		if len(s) > 0 && s[0] == 0 {
			stopProcess(cmd)
			return "", fmt.Errorf("exited before listening: %s", s[1:])
		}
		return s, nil
	case <-time.After(30 * time.Second):
		stopProcess(cmd)
		return "", errors.New("not listening after 30 s")
	}
}

func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// newLambdaTarget runs a local Lambda (the control plane and Invoke in
// AWS's wire format, the real bootstrap over the Runtime API) on
// loopback and deploys to it with the Lambda host.
func newLambdaTarget(_ context.Context, o *Options) (*hostTarget, error) {
	if o.LambdaBootstrap == nil {
		return nil, errors.New("the lambda target needs the ferry-lambda bootstrap (make lambda)")
	}
	srv, err := locallambda.New(locallambda.Config{Dir: filepath.Join(o.WorkDir, "lambda")})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Close(context.Background())
		return nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	arch := "x86_64"
	if runtime.GOARCH == "arm64" {
		arch = "arm64"
	}
	h, err := lambda.New(lambda.Config{
		Region: "us-east-1", BaseEndpoint: "http://" + ln.Addr().String(), Role: "arn:aws:iam::123456789012:role/ferry-bench",
		AWS:  aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench", "")},
		Arch: arch, Bootstrap: o.LambdaBootstrap, WaitMinDelay: 10 * time.Millisecond,
	})
	if err != nil {
		_ = hs.Close()
		_ = srv.Close(context.Background())
		return nil, err
	}
	return &hostTarget{o: o,
		deploy: func(ctx context.Context, j host.Job) (host.Host, *host.Deployment, time.Duration, error) {
			start := time.Now()
			d, err := h.Deploy(ctx, j)
			return h, d, time.Since(start), err
		},
		undeploy: func(ctx context.Context, h host.Host, d *host.Deployment) { _ = h.Remove(ctx, d) },
		stop: func() error {
			_ = hs.Close()
			return srv.Close(context.Background())
		},
	}, nil
}

// newWorkerdTarget runs each job as Ferry's Worker in a local workerd
// (one process per deployment) and calls it through the HTTP client host.
// Deploying is workerd's start, which includes compiling the module, as
// Cloudflare compiles at upload.
func newWorkerdTarget(o *Options) (*hostTarget, error) {
	if o.WorkerdBinary == "" {
		return nil, errors.New("the workerd target needs workerd (npm package workerd; make deps installs it)")
	}
	procs := map[*host.Deployment]*workerd.Process{}
	return &hostTarget{o: o,
		deploy: func(ctx context.Context, j host.Job) (host.Host, *host.Deployment, time.Duration, error) {
			w, err := shim.Build(shim.Spec{Script: shim.ScriptName("ferry-", j.Name), FunctionID: j.Name, Job: j})
			if err != nil {
				return nil, nil, 0, err
			}
			addr, err := workerd.FreeAddr()
			if err != nil {
				return nil, nil, 0, err
			}
			dir, err := os.MkdirTemp(o.WorkDir, "workerd-")
			if err != nil {
				return nil, nil, 0, err
			}
			start := time.Now()
			p, err := workerd.Start(ctx, workerd.Config{Addr: addr, Workers: []workerd.Worker{*w}},
				workerd.Options{Binary: o.WorkerdBinary, Dir: dir, Log: io.Discard})
			if err != nil {
				return nil, nil, 0, err
			}
			took := time.Since(start)
			c, err := httphost.NewClient(httphost.ClientConfig{BaseURL: p.URL(), Name: "workerd", Retries: -1})
			if err != nil {
				_ = p.Stop(5 * time.Second)
				return nil, nil, 0, err
			}
			d := &host.Deployment{ID: j.Name, Job: j.Name, Digest: j.Digest, Pure: j.Pure, Host: "workerd", Limits: j.Limits}
			procs[d] = p
			return c, d, took, nil
		},
		undeploy: func(_ context.Context, _ host.Host, d *host.Deployment) {
			if p := procs[d]; p != nil {
				_ = p.Stop(5 * time.Second)
				delete(procs, d)
			}
		},
		pid: func(d *host.Deployment) int {
			if p := procs[d]; p != nil {
				return p.Pid()
			}
			return 0
		},
	}, nil
}
