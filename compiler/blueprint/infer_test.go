package blueprint_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/blueprint"
)

// makeTree creates files (name → content; a name ending in / is a folder)
// under a new temporary folder and returns it.
func makeTree(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			require.NoError(t, os.MkdirAll(p, 0o755))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, nil, 0o644))
	}
	return dir
}

func TestInferLanguage_Valid(t *testing.T) {
	tests := []struct {
		name   string
		files  []string
		source string
		want   blueprint.Language
	}{
		{name: "wasm file", files: []string{"out/job.wasm"}, source: "out/job.wasm", want: blueprint.LanguageWasm},
		{name: "wat file", files: []string{"job.wat"}, source: "job.wat", want: blueprint.LanguageWAT},
		{name: "c file", files: []string{"src/job.c"}, source: "src/job.c", want: blueprint.LanguageC},
		{name: "go file", files: []string{"main.go"}, source: "main.go", want: blueprint.LanguageGo},
		{name: "c folder", files: []string{"j/a.c", "j/a.h", "j/Makefile"}, source: "j", want: blueprint.LanguageC},
		{name: "rust folder", files: []string{"j/Cargo.toml", "j/src/lib.rs"}, source: "j", want: blueprint.LanguageRust},
		{name: "go module folder", files: []string{"j/go.mod", "j/cmd/main.go"}, source: "j", want: blueprint.LanguageGo},
		{name: "go files folder", files: []string{"j/main.go"}, source: "j", want: blueprint.LanguageGo},
		{name: "folder with trailing slash", files: []string{"j/main.go"}, source: "j/", want: blueprint.LanguageGo},
		{name: "dot-slash source", files: []string{"j/main.go"}, source: "./j", want: blueprint.LanguageGo},
		{name: "blueprint folder itself", files: []string{"go.mod"}, source: ".", want: blueprint.LanguageGo},
		{name: "c wins over Cargo.toml", files: []string{"j/Cargo.toml", "j/shim.c"}, source: "j", want: blueprint.LanguageC},
		{name: "Cargo.toml wins over go files", files: []string{"j/Cargo.toml", "j/gen.go"}, source: "j", want: blueprint.LanguageRust},
		{name: "a folder named x.c is not a c file", files: []string{"x.c/go.mod"}, source: "x.c", want: blueprint.LanguageGo},
		{name: "only the folder's own entries count", files: []string{"j/go.mod", "j/vendor/a.c"}, source: "j", want: blueprint.LanguageGo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := makeTree(t, tc.files...)
			got, err := blueprint.InferLanguage(dir, tc.source)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestInferLanguage_Invalid(t *testing.T) {
	tests := []struct {
		name     string
		files    []string
		source   string
		want     string
		sentinel error
	}{
		{name: "unknown file", files: []string{"job.py"}, source: "job.py",
			want:     `infer language of "job.py": unknown file type; looked for a .wasm, .wat, .c or .go file, or a folder holding *.c files, Cargo.toml, go.mod or *.go files`,
			sentinel: blueprint.ErrUnknownLanguage},
		{name: "rust file", files: []string{"lib.rs"}, source: "lib.rs",
			want: `infer language of "lib.rs": unknown file type; looked for`, sentinel: blueprint.ErrUnknownLanguage},
		{name: "empty folder", files: []string{"j/"}, source: "j",
			want:     `infer language of "j": nothing recognised in the folder; looked for a .wasm, .wat, .c or .go file, or a folder holding *.c files, Cargo.toml, go.mod or *.go files`,
			sentinel: blueprint.ErrUnknownLanguage},
		{name: "sources only in subfolders", files: []string{"j/src/main.go", "j/c/a.c"}, source: "j",
			want: `infer language of "j": nothing recognised in the folder`, sentinel: blueprint.ErrUnknownLanguage},
		{name: "missing", source: "nope",
			want: `infer language of "nope": not found in the blueprint folder`, sentinel: blueprint.ErrSourceNotFound},
		{name: "escapes", source: "../x",
			want: `infer language of "../x": source must stay inside the blueprint folder`, sentinel: blueprint.ErrInvalid},
		{name: "absolute", source: "/etc",
			want: `infer language of "/etc": source must be relative to the blueprint folder, not absolute`, sentinel: blueprint.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := makeTree(t, tc.files...)
			got, err := blueprint.InferLanguage(dir, tc.source)
			require.Error(t, err)
			assert.Empty(t, got)
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), "error:\n%s\nwant prefix:\n%s", err, tc.want)
			assert.ErrorIs(t, err, tc.sentinel)
		})
	}
}

func TestInferLanguage_SymlinkOutOfFolder(t *testing.T) {
	outside := makeTree(t, "main.go")
	dir := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "j")))
	_, err := blueprint.InferLanguage(dir, "j")
	require.Error(t, err)
	assert.ErrorIs(t, err, blueprint.ErrSourceNotFound)
}

func TestInferLanguage_SymlinkInsideFolder(t *testing.T) {
	dir := makeTree(t, "real/Cargo.toml")
	require.NoError(t, os.Symlink("real", filepath.Join(dir, "j")))
	got, err := blueprint.InferLanguage(dir, "j")
	require.NoError(t, err)
	assert.Equal(t, blueprint.LanguageRust, got)
}
