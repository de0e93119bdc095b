// Package modstore keeps WebAssembly modules on disk, addressed by the sha256
// of their bytes. The same bytes always have the same name, so a module is
// stored once however often it is deployed, and a digest names exactly one
// module forever.
package modstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Prefix starts every digest.
const Prefix = "sha256:"

// ErrNotFound is returned for a digest the store does not hold.
var ErrNotFound = errors.New("module not found")

// ErrBadDigest is returned for a string that is not a sha256 digest.
var ErrBadDigest = errors.New("not a sha256 digest")

// Digest returns the digest of wasm, "sha256:<hex>".
func Digest(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return Prefix + hex.EncodeToString(sum[:])
}

// ParseDigest checks d and returns its hex part.
func ParseDigest(d string) (string, error) {
	h, ok := strings.CutPrefix(d, Prefix)
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("%w: %q", ErrBadDigest, d)
	}
	if _, err := hex.DecodeString(h); err != nil || strings.ToLower(h) != h {
		return "", fmt.Errorf("%w: %q", ErrBadDigest, d)
	}
	return h, nil
}

// Store is a directory of modules. It is safe for concurrent use, also across
// processes: files are written to a temporary name and renamed into place.
type Store struct{ dir string }

// Open returns the store at dir, creating it.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("open module store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Path is where the module with digest d lives (or would live).
func (s *Store) Path(d string) (string, error) {
	h, err := ParseDigest(d)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.dir, "sha256", h+".wasm"), nil
}

// Put stores wasm and returns its digest. Storing bytes already present is a
// no-op.
func (s *Store) Put(wasm []byte) (string, error) {
	d := Digest(wasm)
	p, _ := s.Path(d)
	if _, err := os.Stat(p); err == nil {
		return d, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("store module %s: %w", d, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(wasm); err != nil {
		tmp.Close()
		return "", fmt.Errorf("store module %s: %w", d, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("store module %s: %w", d, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("store module %s: %w", d, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("store module %s: %w", d, err)
	}
	return d, nil
}

// Get returns the module with digest d, verifying that its bytes still hash
// to d (a corrupted file is an error, never silently run).
func (s *Store) Get(d string) ([]byte, error) {
	p, err := s.Path(d)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", d, err)
	}
	if got := Digest(b); got != d {
		return nil, fmt.Errorf("module %s is corrupt on disk (hashes to %s)", d, got)
	}
	return b, nil
}

// Has reports whether the store holds d.
func (s *Store) Has(d string) bool {
	p, err := s.Path(d)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Delete removes d. Deleting an absent module is not an error.
func (s *Store) Delete(d string) error {
	p, err := s.Path(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete module %s: %w", d, err)
	}
	return nil
}
