// Package lambdatest builds Ferry's Lambda bootstrap (cmd/ferry-lambda) for
// tests and benchmarks, as Lambda runs it: static, `-tags lambda.norpc`,
// stripped. A build is kept for the rest of the process, so the many tests
// that deploy it link it once.
package lambdatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// TB is the part of testing.TB the package uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
}

var (
	mu    sync.Mutex
	built = map[string][]byte{} // GOARCH → bootstrap
)

// Bootstrap returns the bootstrap built for linux/goarch ("" for this
// machine's), building it on first use.
func Bootstrap(t TB, goarch string) []byte {
	t.Helper()
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[goarch]; ok {
		return b
	}
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, "github.com/ferryrun/ferry/cmd/ferry-lambda")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the Lambda bootstrap for %s: %v\n%s", goarch, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("%v", err)
	}
	built[goarch] = b
	return b
}

// NativeArch is this machine's architecture as Lambda spells it; the local
// Lambda runs the bootstrap natively, so functions tested on it use this.
func NativeArch() string {
	if runtime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}

// File writes the native bootstrap to a file of the test's and returns
// its path (for FERRY_LAMBDA_BOOTSTRAP and --lambda-bootstrap).
func File(t TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ferry-lambda")
	if err := os.WriteFile(p, Bootstrap(t, ""), 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	return p
}
