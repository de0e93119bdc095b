package hostpkg_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/hostpkg"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

func echoWasm(t testing.TB) []byte {
	t.Helper()
	b, err := examples.WAT("echo")
	require.NoError(t, err)
	return b
}

// zipEntry is one entry of a hand-made zip.
type zipEntry struct {
	name string
	data []byte
}

func makeZip(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e.name)
		require.NoError(t, err)
		_, err = w.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func manifestJSON(t testing.TB, m any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestBuildOpen_RoundTrip(t *testing.T) {
	wasm := echoWasm(t)
	det := true
	jobID := uint32(17)
	m := hostpkg.Manifest{
		Job: "echo", Limits: hostpkg.Limits{MemoryMB: 64, TimeoutMs: 2500, MaxInputBytes: 1024, MaxOutputBytes: 2048},
		Pure: true, Deterministic: &det, AllowHosts: []string{"api.example.com"}, JobID: &jobID,
	}
	b, err := hostpkg.Build(wasm, m, nil)
	require.NoError(t, err)
	assert.True(t, hostpkg.IsZip(b))

	p, err := hostpkg.Open(b, 0)
	require.NoError(t, err)
	assert.Equal(t, wasm, p.Module)
	assert.False(t, p.Bootstrap)
	require.NotNil(t, p.Manifest)
	want := m
	want.Schema = hostpkg.Schema
	want.Digest = modstore.Digest(wasm)
	assert.Equal(t, want, *p.Manifest)
	assert.Equal(t, 2500*1e6, float64(p.Manifest.Limits.Timeout()))

	// The zip holds exactly the two files, sorted, with the fixed stamp.
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		assert.Equal(t, 2020, f.Modified.Year(), f.Name)
		assert.Equal(t, zip.Deflate, f.Method, f.Name)
	}
	assert.Equal(t, []string{hostpkg.ManifestFile, hostpkg.ModuleFile}, names)
}

func TestBuild_Deterministic(t *testing.T) {
	wasm := echoWasm(t)
	m := hostpkg.Manifest{Job: "echo", Limits: hostpkg.Limits{MemoryMB: 32}}
	extra := map[string][]byte{"bootstrap": []byte("#!/bin/sh\n"), "z.txt": []byte("z"), "a.txt": []byte("a"), "dir/b": []byte("b")}
	first, err := hostpkg.Build(wasm, m, extra)
	require.NoError(t, err)
	for range 5 {
		again, err := hostpkg.Build(wasm, m, extra)
		require.NoError(t, err)
		require.Equal(t, first, again, "Build is not deterministic")
	}
	// A change in the module or manifest changes the bytes.
	other, err := hostpkg.Build(wasm, hostpkg.Manifest{Job: "echo", Limits: hostpkg.Limits{MemoryMB: 64}}, extra)
	require.NoError(t, err)
	assert.NotEqual(t, first, other)
}

func TestBuild_Refuses(t *testing.T) {
	wasm := echoWasm(t)
	for _, tc := range []struct {
		name  string
		m     hostpkg.Manifest
		extra map[string][]byte
		msg   string
	}{
		{"bad job name", hostpkg.Manifest{Job: "has space"}, nil, "job"},
		{"empty job name", hostpkg.Manifest{}, nil, "job"},
		{"negative limit", hostpkg.Manifest{Job: "j", Limits: hostpkg.Limits{MemoryMB: -1}}, nil, "negative"},
		{"too many hosts", hostpkg.Manifest{Job: "j", AllowHosts: make([]string, 257)}, nil, "allow_hosts"},
		{"extra overwrites the module", hostpkg.Manifest{Job: "j"}, map[string][]byte{hostpkg.ModuleFile: nil}, "bad extra file name"},
		{"extra absolute", hostpkg.Manifest{Job: "j"}, map[string][]byte{"/etc/passwd": nil}, "bad extra file name"},
		{"extra escaping", hostpkg.Manifest{Job: "j"}, map[string][]byte{"../x": nil}, "bad extra file name"},
		{"extra dot", hostpkg.Manifest{Job: "j"}, map[string][]byte{".": nil}, "bad extra file name"},
		{"extra unclean", hostpkg.Manifest{Job: "j"}, map[string][]byte{"a//b": nil}, "bad extra file name"},
		{"extra empty name", hostpkg.Manifest{Job: "j"}, map[string][]byte{"": nil}, "bad extra file name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hostpkg.Build(wasm, tc.m, tc.extra)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestOpen_LambdaStyle(t *testing.T) {
	wasm := echoWasm(t)
	b, err := hostpkg.Build(wasm, hostpkg.Manifest{Job: "echo"}, map[string][]byte{hostpkg.BootstrapFile: []byte("\x7fELF native")})
	require.NoError(t, err)
	p, err := hostpkg.Open(b, 0)
	require.NoError(t, err)
	assert.True(t, p.Bootstrap)
	assert.Equal(t, wasm, p.Module)
	require.NotNil(t, p.Manifest)
	assert.Equal(t, "echo", p.Manifest.Job)

	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	for _, f := range zr.File {
		if f.Name == hostpkg.BootstrapFile {
			assert.Equal(t, fs.FileMode(0o755), f.Mode().Perm(), "bootstrap is executable")
		} else {
			assert.Equal(t, fs.FileMode(0o644), f.Mode().Perm(), f.Name)
		}
	}
}

func TestOpen_WithoutManifest(t *testing.T) {
	wasm := echoWasm(t)
	p, err := hostpkg.Open(makeZip(t, zipEntry{hostpkg.ModuleFile, wasm}, zipEntry{"README.md", []byte("hi")}), 0)
	require.NoError(t, err)
	assert.Equal(t, wasm, p.Module)
	assert.Nil(t, p.Manifest)
	assert.False(t, p.Bootstrap)
	// A ./-prefixed name is the same file.
	p, err = hostpkg.Open(makeZip(t, zipEntry{"./" + hostpkg.ModuleFile, wasm}), 0)
	require.NoError(t, err)
	assert.Equal(t, wasm, p.Module)
}

func TestOpen_Refuses(t *testing.T) {
	wasm := echoWasm(t)
	good := hostpkg.Manifest{Schema: hostpkg.Schema, Job: "echo", Digest: modstore.Digest(wasm)}
	withField := func(field string, v any) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(manifestJSON(t, good), &m))
		m[field] = v
		return manifestJSON(t, m)
	}
	tooMany := []zipEntry{{hostpkg.ModuleFile, wasm}}
	for i := range hostpkg.MaxEntries {
		tooMany = append(tooMany, zipEntry{fmt.Sprintf("f%02d", i), []byte{byte(i)}})
	}
	okEntries := tooMany[:hostpkg.MaxEntries]

	cases := []struct {
		name      string
		zip       []byte
		maxModule int64
		is        error
		msg       string
	}{
		{name: "native only", zip: makeZip(t, zipEntry{hostpkg.BootstrapFile, []byte("\x7fELF")}), is: hostpkg.ErrNativeOnly, msg: "native"},
		{name: "native with a manifest", zip: makeZip(t, zipEntry{hostpkg.BootstrapFile, []byte("\x7fELF")}, zipEntry{hostpkg.ManifestFile, manifestJSON(t, good)}),
			is: hostpkg.ErrNativeOnly, msg: "bootstrap"},
		{name: "no module", zip: makeZip(t, zipEntry{"main.wasm", wasm}), is: hostpkg.ErrInvalid, msg: "no module.wasm"},
		{name: "empty zip", zip: makeZip(t), is: hostpkg.ErrInvalid, msg: "no module.wasm"},
		{name: "not a zip", zip: []byte("PK\x03\x04 but not really a zip"), is: hostpkg.ErrInvalid, msg: "not a zip"},
		{name: "empty input", zip: nil, is: hostpkg.ErrInvalid, msg: "not a zip"},
		{name: "digest mismatch", zip: makeZip(t, zipEntry{hostpkg.ModuleFile, wasm},
			zipEntry{hostpkg.ManifestFile, withField("digest", modstore.Digest([]byte("other")))}), is: hostpkg.ErrInvalid, msg: "hashes to"},
		{name: "manifest unknown field", zip: makeZip(t, zipEntry{hostpkg.ModuleFile, wasm},
			zipEntry{hostpkg.ManifestFile, withField("entrypoint", "bootstrap")}), is: hostpkg.ErrInvalid, msg: "unknown field"},
		{name: "manifest bad schema", zip: makeZip(t, zipEntry{hostpkg.ModuleFile, wasm},
			zipEntry{hostpkg.ManifestFile, withField("schema", 2)}), is: hostpkg.ErrInvalid, msg: "schema"},
		{name: "manifest not JSON", zip: makeZip(t, zipEntry{hostpkg.ModuleFile, wasm},
			zipEntry{hostpkg.ManifestFile, []byte("job = echo")}), is: hostpkg.ErrInvalid, msg: hostpkg.ManifestFile},
		{name: "manifest bad digest", zip: makeZip(t, zipEntry{hostpkg.ModuleFile, wasm},
			zipEntry{hostpkg.ManifestFile, withField("digest", "md5:abc")}), is: hostpkg.ErrInvalid, msg: "digest"},
		{name: "manifest negative limit", zip: makeZip(t, zipEntry{hostpkg.ModuleFile, wasm},
			zipEntry{hostpkg.ManifestFile, withField("limits", map[string]int{"timeout_ms": -5})}), is: hostpkg.ErrInvalid, msg: "negative"},
		{name: "manifest too big", zip: makeZip(t, zipEntry{hostpkg.ModuleFile, wasm},
			zipEntry{hostpkg.ManifestFile, bytes.Repeat([]byte(" "), hostpkg.MaxManifestBytes+1)}), is: hostpkg.ErrInvalid, msg: hostpkg.ManifestFile},
		{name: "too many entries", zip: makeZip(t, tooMany...), is: hostpkg.ErrInvalid, msg: "entries"},
		{name: "module over maxModule", zip: makeZip(t, zipEntry{hostpkg.ModuleFile, wasm}), maxModule: int64(len(wasm) - 1),
			is: hostpkg.ErrInvalid, msg: fmt.Sprintf("at most %d", len(wasm)-1)},
		{name: "module lies about its size", zip: lyingZip(t, hostpkg.ModuleFile, wasm, 10), maxModule: 100, is: hostpkg.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := hostpkg.Open(tc.zip, tc.maxModule)
			require.Error(t, err, "opened %+v", p)
			assert.Nil(t, p)
			assert.True(t, errors.Is(err, tc.is), "%v is not %v", err, tc.is)
			if tc.is == hostpkg.ErrNativeOnly {
				assert.False(t, errors.Is(err, hostpkg.ErrInvalid))
			}
			assert.Contains(t, err.Error(), tc.msg)
		})
	}

	// At the limits: exactly MaxEntries entries, a module of exactly
	// maxModule bytes.
	p, err := hostpkg.Open(makeZip(t, okEntries...), int64(len(wasm)))
	require.NoError(t, err)
	assert.Equal(t, wasm, p.Module)
}

// lyingZip holds one stored entry whose header claims claimed bytes while
// it holds data.
func lyingZip(t testing.TB, name string, data []byte, claimed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(data),
		CompressedSize64: uint64(len(data)), UncompressedSize64: claimed,
	})
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// Open bounds the sum of the entries' uncompressed sizes, whatever they
// are.
func TestOpen_TotalUncompressed(t *testing.T) {
	wasm := echoWasm(t)
	build := func(claims ...uint64) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.Create(hostpkg.ModuleFile)
		require.NoError(t, err)
		_, err = w.Write(wasm)
		require.NoError(t, err)
		for i, c := range claims {
			// Stored entries claiming c bytes and holding none: the sizes
			// are only the archive's word, which is what Open checks first.
			_, err := zw.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("pad%d", i), Method: zip.Store, UncompressedSize64: c})
			require.NoError(t, err)
		}
		require.NoError(t, zw.Close())
		return buf.Bytes()
	}
	_, err := hostpkg.Open(build(hostpkg.MaxUncompressedBytes), 0)
	require.Error(t, err)
	assert.True(t, errors.Is(err, hostpkg.ErrInvalid))
	assert.Contains(t, err.Error(), "uncompressed")

	t.Run("overflowing sum", func(t *testing.T) {
		_, err := hostpkg.Open(build(1<<63, 1<<63), 0)
		require.Error(t, err)
		assert.True(t, errors.Is(err, hostpkg.ErrInvalid))
	})
}

func TestIsZip(t *testing.T) {
	wasm := echoWasm(t)
	pkg, err := hostpkg.Build(wasm, hostpkg.Manifest{Job: "echo"}, nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		in   []byte
		want bool
	}{
		{pkg, true},
		{[]byte("PK\x03\x04"), true},
		{wasm, false},
		{nil, false},
		{[]byte("PK\x03"), false},
		{[]byte("PK\x05\x06"), false}, // an empty zip's end record alone
		{[]byte("pk\x03\x04"), false},
	} {
		assert.Equal(t, tc.want, hostpkg.IsZip(tc.in), "%q", tc.in[:min(8, len(tc.in))])
	}
}

func TestManifest_Validate(t *testing.T) {
	ok := hostpkg.Manifest{Schema: hostpkg.Schema, Job: "a", Digest: modstore.Digest(nil)}
	require.NoError(t, ok.Validate())
	bad := hostpkg.Manifest{Schema: 9, Job: "", Digest: "x", Limits: hostpkg.Limits{MaxOutputBytes: -1}}
	err := bad.Validate()
	require.Error(t, err)
	// Every problem is listed.
	for _, w := range []string{"schema 9", "job", "digest", "negative"} {
		assert.Contains(t, err.Error(), w)
	}
	assert.Equal(t, 4, len(strings.Split(err.Error(), "\n")))
}

// FuzzOpen: Open never panics, and what it opens is consistent.
func FuzzOpen(f *testing.F) {
	wasm, err := examples.WAT("echo")
	if err != nil {
		f.Fatal(err)
	}
	pkg, err := hostpkg.Build(wasm, hostpkg.Manifest{Job: "echo"}, map[string][]byte{hostpkg.BootstrapFile: []byte("#!")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pkg)
	f.Add(makeZip(f, zipEntry{hostpkg.ModuleFile, []byte("\x00asm\x01\x00\x00\x00")}))
	f.Add(makeZip(f, zipEntry{hostpkg.BootstrapFile, []byte("x")}))
	f.Add(lyingZip(f, hostpkg.ModuleFile, []byte("0123456789"), 3))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := hostpkg.Open(b, 1<<20)
		if err != nil {
			if p != nil {
				t.Fatalf("error %v with a package", err)
			}
			if !errors.Is(err, hostpkg.ErrInvalid) && !errors.Is(err, hostpkg.ErrNativeOnly) {
				t.Fatalf("error %v is neither ErrInvalid nor ErrNativeOnly", err)
			}
			return
		}
		if p.Module == nil {
			t.Fatal("opened without a module")
		}
		if len(p.Module) > 1<<20 {
			t.Fatalf("module of %d bytes over the bound", len(p.Module))
		}
		if p.Manifest != nil {
			if err := p.Manifest.Validate(); err != nil {
				t.Fatalf("opened with an invalid manifest: %v", err)
			}
			if p.Manifest.Digest != modstore.Digest(p.Module) {
				t.Fatal("manifest digest does not match the module")
			}
		}
	})
}

// Large entries are compressed once and reused, and the package is the
// same bytes either way.
func TestBuild_LargeEntriesReused(t *testing.T) {
	wasm := echoWasm(t)
	big := bytes.Repeat([]byte("bootstrap bytes "), 1<<17) // 2 MiB
	a, err := hostpkg.Build(wasm, hostpkg.Manifest{Job: "a"}, map[string][]byte{hostpkg.BootstrapFile: big})
	require.NoError(t, err)
	b, err := hostpkg.Build(wasm, hostpkg.Manifest{Job: "a"}, map[string][]byte{hostpkg.BootstrapFile: big})
	require.NoError(t, err)
	assert.Equal(t, a, b, "deterministic")
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	require.NoError(t, err)
	for _, f := range zr.File {
		if f.Name != hostpkg.BootstrapFile {
			continue
		}
		assert.Less(t, f.CompressedSize64, f.UncompressedSize64)
		rc, err := f.Open()
		require.NoError(t, err)
		got, err := io.ReadAll(rc) // checks the CRC too
		require.NoError(t, err)
		assert.Equal(t, big, got)
		assert.Equal(t, fs.FileMode(0o755), f.Mode().Perm())
	}
}
