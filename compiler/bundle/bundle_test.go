package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/analyze"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

func manifest(t *testing.T) (*Manifest, map[string][]byte) {
	t.Helper()
	echo, err := examples.WAT("echo")
	require.NoError(t, err)
	cat, err := examples.WAT("cat")
	require.NoError(t, err)
	aEcho, err := analyze.Module(echo, nil)
	require.NoError(t, err)
	aCat, err := analyze.Module(cat, nil)
	require.NoError(t, err)
	mem := 256
	m := &Manifest{Blueprint: "demo", BuiltAt: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Ferry: "test", Jobs: []Job{
		{Name: "echo", Module: modstore.Digest(echo), SizeBytes: len(echo), Language: "wat", Source: "echo.wat", Analysis: *aEcho,
			Profile: &analyze.Profile{Samples: 1, Runs: 2, Deterministic: true}, Overrides: Overrides{MemoryMB: &mem}},
		{Name: "cat", Module: modstore.Digest(cat), SizeBytes: len(cat), Language: "wat", Source: "cat.wat", Analysis: *aCat},
	}}
	return m, map[string][]byte{modstore.Digest(echo): echo, modstore.Digest(cat): cat}
}

func TestWriteOpen_RoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "demo.bundle")
	m, mods := manifest(t)
	require.NoError(t, Write(dir, m, mods))

	b, err := Open(dir)
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion, b.Manifest.Schema)
	assert.Equal(t, []string{"cat", "echo"}, b.jobNames(), "jobs sorted")
	echo, ok := b.Manifest.Job("echo")
	require.True(t, ok)
	assert.True(t, echo.IsPure)
	require.NotNil(t, echo.Overrides.MemoryMB)
	assert.Equal(t, 256, *echo.Overrides.MemoryMB)
	cat, _ := b.Manifest.Job("cat")
	assert.Nil(t, cat.Profile, "unprofiled is explicit")

	wasm, err := b.Module("echo")
	require.NoError(t, err)
	assert.Equal(t, mods[echo.Module], wasm)
	_, err = b.Module("nope")
	assert.ErrorContains(t, err, `no job "nope" (jobs: cat, echo)`)

	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"schema": 1`)
	assert.Contains(t, string(raw), `"profile": null`)

	// Rewriting replaces the bundle whole and leaves no temporary files.
	m.Jobs = m.Jobs[:1]
	require.NoError(t, Write(dir, m, mods))
	b, err = Open(dir)
	require.NoError(t, err)
	assert.Len(t, b.Manifest.Jobs, 1)
	ents, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	assert.Len(t, ents, 1, "only the bundle is left: %v", ents)
}

func TestWrite_FailureLeavesOldBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo.bundle")
	m, mods := manifest(t)
	require.NoError(t, Write(dir, m, mods))

	bad, _ := manifest(t)
	bad.Jobs[0].Module = modstore.Digest([]byte("other bytes"))
	err := Write(dir, bad, mods)
	assert.ErrorIs(t, err, ErrModule)
	b, err := Open(dir)
	require.NoError(t, err, "the old bundle is intact")
	assert.Len(t, b.Manifest.Jobs, 2)
	ents, _ := os.ReadDir(filepath.Dir(dir))
	assert.Len(t, ents, 1, "no half-written bundle left behind")
}

func TestOpen_Bad(t *testing.T) {
	m, mods := manifest(t)
	good := filepath.Join(t.TempDir(), "b")
	require.NoError(t, Write(good, m, mods))
	edit := func(t *testing.T, f func(dir string)) string {
		dir := filepath.Join(t.TempDir(), "b")
		require.NoError(t, os.CopyFS(dir, os.DirFS(good)))
		f(dir)
		return dir
	}
	rewrite := func(from, to string) func(string) {
		return func(dir string) {
			p := filepath.Join(dir, ManifestFile)
			b, _ := os.ReadFile(p)
			require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(b), from, to, 1)), 0o644))
		}
	}
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
		want error
		msg  string
	}{
		{"no manifest", func(t *testing.T) string { return t.TempDir() }, nil, "manifest.json"},
		{"newer schema", func(t *testing.T) string { return edit(t, rewrite(`"schema": 1`, `"schema": 2`)) }, ErrSchema, "schema 1"},
		{"unknown field", func(t *testing.T) string { return edit(t, rewrite(`"ferry": "test"`, `"ferry": "test", "extra": 1`)) }, ErrInvalid, "extra"},
		{"bad job name", func(t *testing.T) string { return edit(t, rewrite(`"name": "cat"`, `"name": "Cat!"`)) }, ErrInvalid, "Cat!"},
		{"missing module", func(t *testing.T) string {
			return edit(t, func(dir string) {
				d := modstore.Digest(mods[m.Jobs[0].Module])
				p, _ := (&modstore.Store{}).Path(d)
				require.NoError(t, os.Remove(filepath.Join(dir, "modules", "sha256", filepath.Base(p))))
			})
		}, ErrModule, "job"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.dir(t))
			require.Error(t, err)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestOpen_CorruptModule(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	m, mods := manifest(t)
	require.NoError(t, Write(dir, m, mods))
	h, _ := modstore.ParseDigest(m.Jobs[1].Module) // "echo" after sorting
	require.NoError(t, os.WriteFile(filepath.Join(dir, "modules", "sha256", h+".wasm"), []byte("tampered"), 0o644))
	b, err := Open(dir)
	require.NoError(t, err)
	_, err = b.Module("echo")
	assert.ErrorIs(t, err, ErrModule)
	assert.ErrorContains(t, err, "corrupt")
}
