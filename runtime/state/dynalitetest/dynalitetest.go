// Package dynalitetest starts a throwaway dynalite, a DynamoDB-compatible
// server in Node.js, for tests: on 127.0.0.1, on a free port, in memory,
// stopped when the test ends. It holds no client; tests connect to the
// endpoint Start returns with any dummy credentials.
//
// dynalite is found through FERRY_DYNALITE (the path of its cli.js), else
// in .cache/npm at the root of this repository, where `make deps` installs
// it.
package dynalitetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
	// attempts covers losing the free port to another process between
	// finding it and dynalite binding it.
	attempts = 3
	// module is the line of go.mod that marks the repository root.
	module = "module github.com/ferryrun/ferry"
)

// Start starts a dynalite for the test and returns its endpoint,
// http://127.0.0.1:PORT. The server listens on loopback only, keeps
// everything in memory, makes tables active at once, and is stopped (its
// whole process group) in t.Cleanup. Without node or dynalite the test is
// skipped: `make deps` installs both.
func Start(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH; `make deps` installs it")
	}
	cli, err := Path()
	if err != nil {
		t.Skipf("dynalite is not installed (%v); `make deps` installs it, or set FERRY_DYNALITE to its cli.js", err)
	}
	var errs []error
	for range attempts {
		endpoint, err := start(t, node, cli)
		if err == nil {
			return endpoint
		}
		errs = append(errs, err)
	}
	t.Fatalf("dynalitetest: %v", errors.Join(errs...))
	return ""
}

// Path is dynalite's cli.js: $FERRY_DYNALITE, else
// .cache/npm/node_modules/dynalite/cli.js under the repository root found
// above the working directory. It is an error if the file is not there.
func Path() (string, error) {
	if p := os.Getenv("FERRY_DYNALITE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("FERRY_DYNALITE: %w", err)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, ".cache", "npm", "node_modules", "dynalite", "cli.js")
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// repoRoot is the nearest directory above the working directory whose
// go.mod declares Ferry's module; the guest and example modules nested in
// the repository have go.mod files of their own.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/ferryrun/ferry above the working directory")
		}
		dir = parent
	}
}

func isRoot(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == module {
			return true
		}
	}
	return false
}

func start(t testing.TB, node, cli string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	logFile := filepath.Join(t.TempDir(), "dynalite.log")
	log, err := os.Create(logFile)
	if err != nil {
		return "", err
	}
	defer log.Close()
	cmd := exec.Command(node, cli,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--createTableMs", "0",
		"--deleteTableMs", "0",
		"--updateTableMs", "0",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start dynalite: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// stop ends node and anything it started: the group has cmd's pid.
	stop := func(sig syscall.Signal) { _ = syscall.Kill(-cmd.Process.Pid, sig) }
	endpoint := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	deadline := time.Now().Add(startTimeout)
	for ping(endpoint) != nil {
		select {
		case err := <-exited:
			return "", fmt.Errorf("dynalite on port %d exited (%v): %s", port, err, tail(logFile))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop(syscall.SIGKILL)
			<-exited
			return "", fmt.Errorf("dynalite on port %d did not answer within %v: %s", port, startTimeout, tail(logFile))
		}
	}
	t.Cleanup(func() {
		select {
		case err := <-exited:
			// It died under the test: say why, for the failure it caused.
			t.Logf("dynalite on port %d exited before the test ended (%v): %s", port, err, tail(logFile))
			return
		default:
		}
		stop(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			stop(syscall.SIGKILL)
			<-exited
		}
	})
	return endpoint, nil
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ping wants dynalite's health answer to a plain GET, which needs no
// signature.
func ping(endpoint string) error {
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(endpoint + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "healthy") {
		return fmt.Errorf("GET / answered %s %q", resp.Status, body)
	}
	return nil
}

// tail is the end of dynalite's output, for an error.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	const keep = 2000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return strings.TrimSpace(string(b))
}
