// Package hostpkg is the package a remote host receives for one job: a zip
// holding module.wasm and manifest.json (and, for AWS Lambda, the native
// bootstrap that runs them). The HTTP host also accepts a bare module.
//
// Reading a package is defensive: the archive comes from the network, so
// its entries, their sizes and the total uncompressed size are bounded
// before anything is decompressed, and a package holding only a native
// executable is refused (Ferry runs WebAssembly in its sandbox, never
// uploaded native code).
package hostpkg

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/ferryrun/ferry/runtime/modstore"
)

// File names inside a package.
const (
	ModuleFile   = "module.wasm"
	ManifestFile = "manifest.json"
	// BootstrapFile is the native entry point of a Lambda custom runtime.
	BootstrapFile = "bootstrap"
)

// Schema is the manifest schema version this package writes and reads.
const Schema = 1

// Limits of what Open accepts. The custom-FaaS protocol allows 250 MB
// uncompressed.
const (
	MaxUncompressedBytes = 250 << 20
	MaxManifestBytes     = 1 << 20
	MaxEntries           = 64
)

// Errors Open returns; callers map them to status codes.
var (
	// ErrNativeOnly: the zip holds a native bootstrap but no module.wasm.
	ErrNativeOnly = errors.New("package holds a native bootstrap and no module.wasm: Ferry runs WebAssembly modules only, never uploaded native code")
	// ErrInvalid: not a readable package (bad zip, missing or oversized
	// entries, a manifest that does not match the module).
	ErrInvalid = errors.New("invalid package")
)

// Manifest describes the job a package holds.
type Manifest struct {
	Schema int `json:"schema"`
	// Job is the job's name.
	Job string `json:"job"`
	// Digest is module.wasm's "sha256:<hex>"; Open checks it.
	Digest string `json:"digest"`
	// Limits the job runs under. Zero fields: the host's defaults.
	Limits Limits `json:"limits"`
	// Pure and Deterministic are the analyser's findings; they decide what
	// a host may reuse and what the orchestrator may hedge.
	Pure          bool  `json:"pure"`
	Deterministic *bool `json:"deterministic,omitempty"`
	// AllowHosts are the hosts the job's HTTP requests may reach.
	AllowHosts []string `json:"allow_hosts,omitempty"`
	// JobID is the job's Tangle job id, when it has one: hosts that serve
	// the Tangle client route POST /job/{id} to it.
	JobID *uint32 `json:"job_id,omitempty"`
}

// Limits are a job's limits in the manifest.
type Limits struct {
	MemoryMB       int `json:"memory_mb,omitempty"`
	TimeoutMs      int `json:"timeout_ms,omitempty"`
	MaxInputBytes  int `json:"max_input_bytes,omitempty"`
	MaxOutputBytes int `json:"max_output_bytes,omitempty"`
}

// Timeout is TimeoutMs as a duration.
func (l Limits) Timeout() time.Duration { return time.Duration(l.TimeoutMs) * time.Millisecond }

var jobNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Validate checks the manifest's own fields.
func (m *Manifest) Validate() error {
	var errs []error
	if m.Schema != Schema {
		errs = append(errs, fmt.Errorf("schema %d: want %d", m.Schema, Schema))
	}
	if !jobNameRE.MatchString(m.Job) {
		errs = append(errs, fmt.Errorf("job %q: want a letter or digit, then up to 127 of [A-Za-z0-9._-]", m.Job))
	}
	if _, err := modstore.ParseDigest(m.Digest); err != nil {
		errs = append(errs, fmt.Errorf("digest: %w", err))
	}
	l := m.Limits
	if l.MemoryMB < 0 || l.TimeoutMs < 0 || l.MaxInputBytes < 0 || l.MaxOutputBytes < 0 {
		errs = append(errs, fmt.Errorf("limits: negative value in %+v", l))
	}
	if len(m.AllowHosts) > 256 {
		errs = append(errs, fmt.Errorf("allow_hosts: %d entries, at most 256", len(m.AllowHosts)))
	}
	return errors.Join(errs...)
}

// Package is an opened package.
type Package struct {
	Module   []byte
	Manifest *Manifest // nil when the zip has no manifest.json
	// Bootstrap reports whether a native bootstrap was present (and
	// ignored).
	Bootstrap bool
}

// Build writes a package: module.wasm, manifest.json (its Digest and
// Schema filled in) and any extra files (name → content, e.g. a Lambda
// bootstrap, written with mode 0755). Entries are sorted and stamped with a
// fixed time, so the same inputs give the same bytes (and the same hash,
// which remote hosts use to skip unchanged uploads).
func Build(wasm []byte, m Manifest, extra map[string][]byte) ([]byte, error) {
	m.Schema = Schema
	m.Digest = modstore.Digest(wasm)
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("package %s: %w", m.Job, err)
	}
	man, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", m.Job, err)
	}
	files := map[string][]byte{ModuleFile: wasm, ManifestFile: append(man, '\n')}
	for name, b := range extra {
		if _, dup := files[name]; dup || !fs.ValidPath(name) || name == "." {
			return nil, fmt.Errorf("package %s: bad extra file name %q", m.Job, name)
		}
		files[name] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	stamp := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range names {
		hdr := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: stamp}
		mode := 0o644
		if _, isExtra := extra[n]; isExtra && n == BootstrapFile {
			mode = 0o755
		}
		hdr.SetMode(fs.FileMode(mode))
		if len(files[n]) >= minCachedEntry {
			// A large entry (the Lambda bootstrap, a Go module) is
			// compressed once per process and written raw afterwards:
			// deploying twenty jobs compresses the 16 MB bootstrap once.
			d := deflated(files[n])
			hdr.CRC32, hdr.CompressedSize64, hdr.UncompressedSize64 = d.crc, uint64(len(d.data)), uint64(len(files[n]))
			w, err := zw.CreateRaw(hdr)
			if err != nil {
				return nil, fmt.Errorf("package %s: %w", m.Job, err)
			}
			if _, err := w.Write(d.data); err != nil {
				return nil, fmt.Errorf("package %s: %w", m.Job, err)
			}
			continue
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", m.Job, err)
		}
		if _, err := w.Write(files[n]); err != nil {
			return nil, fmt.Errorf("package %s: %w", m.Job, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("package %s: %w", m.Job, err)
	}
	return buf.Bytes(), nil
}

// minCachedEntry is the size from which Build reuses compressed entries.
const minCachedEntry = 1 << 20

// maxCachedBytes bounds the compressed entries kept.
const maxCachedBytes = 64 << 20

type deflatedEntry struct {
	data []byte
	crc  uint32
}

var deflateCache struct {
	sync.Mutex
	entries map[[sha256.Size]byte]*deflatedEntry
	order   [][sha256.Size]byte // oldest first
	bytes   int
}

// deflated returns b compressed as Build's Deflate entries are (archive/zip's
// compressor), from the cache when b was compressed before.
func deflated(b []byte) *deflatedEntry {
	key := sha256.Sum256(b)
	c := &deflateCache
	c.Lock()
	if e, ok := c.entries[key]; ok {
		c.Unlock()
		return e
	}
	c.Unlock()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, 5) // the level archive/zip uses, so the bytes match CreateHeader's
	_, _ = fw.Write(b)
	_ = fw.Close()
	e := &deflatedEntry{data: buf.Bytes(), crc: crc32.ChecksumIEEE(b)}
	c.Lock()
	defer c.Unlock()
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]*deflatedEntry{}
	}
	if _, ok := c.entries[key]; !ok && len(e.data) <= maxCachedBytes {
		for c.bytes+len(e.data) > maxCachedBytes && len(c.order) > 0 {
			old := c.order[0]
			c.order = c.order[1:]
			c.bytes -= len(c.entries[old].data)
			delete(c.entries, old)
		}
		c.entries[key] = e
		c.order = append(c.order, key)
		c.bytes += len(e.data)
	}
	return e
}

// IsZip reports whether b starts like a zip archive.
func IsZip(b []byte) bool { return len(b) >= 4 && string(b[:4]) == "PK\x03\x04" }

// Open reads a package zip. maxModule bounds module.wasm's uncompressed
// size (0: MaxUncompressedBytes). Entries other than module.wasm,
// manifest.json and bootstrap are ignored but still count towards the
// bounds.
func Open(b []byte, maxModule int64) (*Package, error) {
	if maxModule <= 0 || maxModule > MaxUncompressedBytes {
		maxModule = MaxUncompressedBytes
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: not a zip archive: %v", ErrInvalid, err)
	}
	if len(zr.File) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrInvalid, len(zr.File), MaxEntries)
	}
	var total uint64
	for _, f := range zr.File {
		if f.UncompressedSize64 > MaxUncompressedBytes-total {
			return nil, fmt.Errorf("%w: over %d bytes uncompressed", ErrInvalid, MaxUncompressedBytes)
		}
		total += f.UncompressedSize64
	}
	p := &Package{}
	var manifest []byte
	for _, f := range zr.File {
		switch path.Clean(f.Name) {
		case ModuleFile:
			if p.Module, err = readEntry(f, maxModule); err != nil {
				return nil, err
			}
		case ManifestFile:
			if manifest, err = readEntry(f, MaxManifestBytes); err != nil {
				return nil, err
			}
		case BootstrapFile:
			p.Bootstrap = true
		}
	}
	if p.Module == nil {
		if p.Bootstrap {
			return nil, ErrNativeOnly
		}
		return nil, fmt.Errorf("%w: no %s in the zip", ErrInvalid, ModuleFile)
	}
	if manifest != nil {
		var m Manifest
		dec := json.NewDecoder(bytes.NewReader(manifest))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, ManifestFile, err)
		}
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, ManifestFile, err)
		}
		if d := modstore.Digest(p.Module); d != m.Digest {
			return nil, fmt.Errorf("%w: %s hashes to %s, the manifest says %s", ErrInvalid, ModuleFile, d, m.Digest)
		}
		p.Manifest = &m
	}
	return p, nil
}

func readEntry(f *zip.File, max int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalid, f.Name, f.UncompressedSize64, max)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	defer rc.Close()
	// The header's size is the archive's claim; read one byte more than
	// allowed to catch an entry that lies about it.
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrInvalid, f.Name, max)
	}
	return b, nil
}
