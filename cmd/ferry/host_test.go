package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/hosttest"
	"github.com/ferryrun/ferry/hosts/httphost"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

var (
	ferryBinOnce sync.Once
	ferryBin     string
	ferryBinErr  error
)

// ferryBinary builds cmd/ferry once per test run, so tests can start real
// `ferry host serve` processes.
func ferryBinary(t *testing.T) string {
	t.Helper()
	ferryBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-bin-")
		if err != nil {
			ferryBinErr = err
			return
		}
		ferryBin = filepath.Join(dir, "ferry")
		out, err := exec.Command("go", "build", "-o", ferryBin, ".").CombinedOutput()
		if err != nil {
			ferryBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, ferryBinErr)
	return ferryBin
}

// hostProc is a running `ferry host serve`.
// hostProc is a ferry process started by a test (startFerry).
type hostProc struct {
	cmd    *exec.Cmd
	URL    string
	stderr *syncBuffer
	done   chan error
	exited atomic.Bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listeningRE = regexp.MustCompile(`msg="ferry host listening" url=(http://\S+)`)

// startHost starts `ferry host serve` on a free loopback port with dataDir
// and token, waits until it listens, and stops it (SIGTERM) at cleanup.
func startHost(t *testing.T, dataDir, token string, extra ...string) *hostProc {
	t.Helper()
	args := append([]string{"host", "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir,
		"--cache-dir", filepath.Join(filepath.Dir(dataDir), "cache")}, extra...)
	return startFerry(t, listeningRE, []string{"FERRY_HOST_TOKEN=" + token}, args...)
}

// startFerry starts the ferry binary with args (and env added), waits
// until a stderr line matches up (its first group is the URL), and stops
// the process (SIGTERM, then SIGKILL after 30 s) at cleanup unless it has
// exited already.
func startFerry(t *testing.T, up *regexp.Regexp, env []string, args ...string) *hostProc {
	t.Helper()
	cmd := exec.Command(ferryBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	p := &hostProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = pw
	require.NoError(t, cmd.Start())
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.stderr.Write([]byte(line + "\n"))
			if m := up.FindStringSubmatch(line); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		p.exited.Store(true)
		p.done <- err
		pw.Close()
	}()
	select {
	case p.URL = <-urls:
	case err := <-p.done:
		t.Fatalf("ferry %s exited: %v\n%s", args[0], err, p.stderr)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("ferry %s did not start\n%s", args[0], p.stderr)
	}
	t.Cleanup(func() {
		if p.exited.Load() {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit error.
func (p *hostProc) stop(t *testing.T) error {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("ferry host serve did not stop\n%s", p.stderr)
		return nil
	}
}

func hostClient(t *testing.T, url, token string) *httphost.Client {
	t.Helper()
	c, err := httphost.NewClient(httphost.ClientConfig{BaseURL: url, Token: token})
	require.NoError(t, err)
	return c
}

// The conformance suite against the HTTP client host talking to a real
// `ferry host serve` process on loopback.
func TestHostServe_Conformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	p := startHost(t, filepath.Join(dir, "data"), "conformance-token")
	hosttest.Run(t, func(t *testing.T) host.Host { return hostClient(t, p.URL, "conformance-token") }, hosttest.Options{})
	require.NoError(t, p.stop(t), "a clean shutdown exits 0\n%s", p.stderr)
	assert.Contains(t, p.stderr.String(), "ferry host stopped")
}

// In-flight invocations finish on SIGTERM; deployments survive a restart,
// including after kill -9.
func TestHostServe_ShutdownAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := startHost(t, data, "")
	c := hostClient(t, p.URL, "")
	spin, err := examples.WAT("spin")
	require.NoError(t, err)
	d, err := c.Deploy(ctx, host.Job{Name: "spin", Module: spin, Digest: modstore.Digest(spin), Limits: host.Limits{Timeout: 30 * time.Second}})
	require.NoError(t, err)

	// A call of roughly a second is in flight when SIGTERM arrives.
	in := binary.LittleEndian.AppendUint32(nil, 700_000_000)
	type result struct {
		res *host.Response
		err error
	}
	got := make(chan result, 1)
	go func() {
		r, err := c.Invoke(ctx, d, host.Request{Input: in})
		got <- result{r, err}
	}()
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	r := <-got
	require.NoError(t, r.err, "the in-flight invocation finishes\n%s", p.stderr)
	assert.Equal(t, in, r.res.Output)
	assert.Greater(t, r.res.Duration, 300*time.Millisecond)
	select {
	case err := <-p.done:
		require.NoError(t, err, "exit status after a graceful shutdown\n%s", p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("did not exit")
	}
	_, err = http.Get(p.URL + "/healthz")
	assert.Error(t, err, "nothing listens after shutdown")

	// Restart on the same data dir: the function is back, same id.
	p2 := startHost(t, data, "")
	assert.Contains(t, p2.stderr.String(), "restored function")
	c2 := hostClient(t, p2.URL, "")
	res, err := c2.Invoke(ctx, &host.Deployment{ID: d.ID, Job: "spin", Limits: d.Limits}, host.Request{Input: []byte{1, 0, 0, 0, 'x'}})
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 0, 0, 0, 'x'}, res.Output)

	// kill -9 loses nothing already deployed either.
	require.NoError(t, p2.cmd.Process.Kill())
	<-p2.done
	p3 := startHost(t, data, "")
	res, err = hostClient(t, p3.URL, "").Invoke(ctx, &host.Deployment{ID: d.ID, Job: "spin", Limits: d.Limits}, host.Request{Input: []byte{0, 0, 0, 0}})
	require.NoError(t, err)
	assert.Len(t, res.Output, 4)

	// A second server on the same data directory is refused.
	r2 := ferry(t, "", "host", "serve", "--listen", "127.0.0.1:0", "--data-dir", data)
	assert.Equal(t, exitHost, r2.code)
	assert.Contains(t, r2.stderr, "another ferry host serve")
}

func TestHostServe_Usage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		has  string
	}{
		{"bad log level", []string{"host", "serve", "--data-dir", dir, "--log-level", "loud"}, exitUsage, "--log-level"},
		{"bad log format", []string{"host", "serve", "--data-dir", dir, "--log-format", "xml"}, exitUsage, "--log-format"},
		{"bad listen", []string{"host", "serve", "--data-dir", dir, "--listen", "nope:xx", "--state", "memory"}, exitHost, "--listen"},
		{"missing token file", []string{"host", "serve", "--data-dir", dir, "--token-file", filepath.Join(dir, "none")}, exitUsage, "--token-file"},
		{"bad engine", []string{"host", "serve", "--data-dir", dir, "--engine", "v8", "--state", "memory"}, exitUsage, "unknown engine"},
		{"negative limit", []string{"host", "serve", "--data-dir", dir, "--max-request-bytes", "-1"}, exitUsage, "must be positive"},
		{"extra argument", []string{"host", "serve", "extra"}, exitUsage, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ferry(t, "", tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.has)
		})
	}
	r := ferry(t, "", "host", "serve", "--help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "Example")
}
