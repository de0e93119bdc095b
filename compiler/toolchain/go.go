package toolchain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// GoDriver builds Go jobs for wasip1: a reactor with -buildmode=c-shared
// (the default), or a command. The source is a main package directory (or a
// file in one) inside a Go module.
type GoDriver struct{}

// Language implements Driver.
func (*GoDriver) Language() Language { return Go }

// Fingerprint implements Driver.
func (*GoDriver) Fingerprint(ctx context.Context) (string, error) {
	goTool, err := lookPath(Go, "go", "golang-go")
	if err != nil {
		return "", err
	}
	return version(ctx, goTool, "version")
}

// Build implements Driver.
func (*GoDriver) Build(ctx context.Context, req Request) ([]byte, error) {
	goTool, err := lookPath(Go, "go", "golang-go")
	if err != nil {
		return nil, err
	}
	src := filepath.Join(req.Dir, req.Source)
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("go source %s: %w", req.Source, err)
	}
	pkgDir := src
	if !st.IsDir() {
		pkgDir = filepath.Dir(src)
	}
	out := filepath.Join(req.WorkDir, "job.wasm")
	args := []string{"build", "-trimpath", "-o", out}
	if req.Shape != Command {
		args = append(args, "-buildmode=c-shared")
	}
	args = append(args, ".")
	env := append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if err := run(ctx, Go, pkgDir, env, goTool, args...); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}
