// Package examples gives tests, benchmarks and the demo the example jobs: the
// WAT modules, committed as binaries next to their sources (embedded here),
// and the Go jobs, built from source with the Go toolchain on demand and
// cached by the digest of their sources.
//
// It is not part of Ferry's runtime; nothing outside tests, benchmarks and
// the demo should import it.
package examples

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

//go:embed wat/*.wasm
var watFS embed.FS

// WAT returns the committed binary of wat/NAME.wat.
func WAT(name string) ([]byte, error) {
	b, err := watFS.ReadFile("wat/" + name + ".wasm")
	if err != nil {
		return nil, fmt.Errorf("example %q: %w", name, err)
	}
	return b, nil
}

// WATNames lists the WAT examples.
func WATNames() []string {
	ents, _ := fs.ReadDir(watFS, "wat")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".wasm"))
	}
	return out
}

// GoJobs are the Go example jobs, by directory under go/.
var GoJobs = []string{"incredible-squaring", "sha256", "jsontransform", "counter", "fetcher", "nbody"}

// Shape selects how a Go job is built.
type Shape string

// Build shapes.
const (
	Reactor Shape = "reactor" // -buildmode=c-shared
	Command Shape = "command" // a plain WASI program
)

// Dir is the wasm-examples directory in the source tree.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

var buildMu sync.Mutex

// BuildGo builds go/NAME for wasip1 and returns the module bytes. Results are
// cached under the user cache dir keyed by the sources' digest, so repeated
// test runs do not rebuild.
func BuildGo(ctx context.Context, name string, shape Shape) ([]byte, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	src := filepath.Join(Dir(), "go")
	key, err := sourceDigest(src, name, shape)
	if err != nil {
		return nil, err
	}
	cacheDir := filepath.Join(cacheRoot(), "ferry", "examples")
	out := filepath.Join(cacheDir, fmt.Sprintf("%s-%s-%s.wasm", name, shape, key[:16]))
	if b, err := os.ReadFile(out); err == nil {
		return b, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	tmp := out + ".tmp"
	args := []string{"build", "-trimpath", "-o", tmp}
	if shape == Reactor {
		args = append(args, "-buildmode=c-shared")
	}
	args = append(args, "./"+name)
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build example %s (%s): %w\n%s", name, shape, err, msg)
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

func cacheRoot() string {
	if d, err := os.UserCacheDir(); err == nil {
		return d
	}
	return os.TempDir()
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// sourceDigest hashes the job's sources, the guest SDK and the toolchain.
func sourceDigest(src, name string, shape Shape) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version(), shape)
	for _, dir := range []string{filepath.Join(src, name), filepath.Join(src, "..", "..", "guest"), src} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return "", fmt.Errorf("example %s: %w", name, err)
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return "", err
			}
			fmt.Fprintln(h, e.Name(), len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
