package httphost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferryrun/ferry/runtime/modstore"
)

// record is a deployed function as it is kept on disk, so deployments
// survive a restart: <data>/functions/<id>.json, with the module in the
// content-addressed store <data>/modules.
type record struct {
	FunctionID      string    `json:"function_id"`
	Digest          string    `json:"digest"`
	Config          Config    `json:"config"`
	DeployedAt      time.Time `json:"deployed_at"`
	BinarySizeBytes int64     `json:"binary_size_bytes"`
	ColdStartMs     int64     `json:"cold_start_ms"`
	// Package is "wasm" or "zip": what was uploaded.
	Package string `json:"package"`
	// Job is the job name from the package's manifest, if it had one.
	Job string `json:"job,omitempty"`
}

// store persists records and modules. Its methods are called with the
// server's deploy lock held.
type store struct {
	dir     string // <data>/functions
	modules *modstore.Store
}

func openStore(dataDir string) (*store, error) {
	dir := filepath.Join(dataDir, "functions")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open data dir: %w", err)
	}
	mods, err := modstore.Open(filepath.Join(dataDir, "modules"))
	if err != nil {
		return nil, fmt.Errorf("open data dir: %w", err)
	}
	return &store{dir: dir, modules: mods}, nil
}

func (s *store) path(id string) string { return filepath.Join(s.dir, id+".json") }

// save writes the module and then the record, each atomically; a crash in
// between leaves an unreferenced module, never a record without one.
func (s *store) save(rec *record, wasm []byte) error {
	if _, err := s.modules.Put(wasm); err != nil {
		return fmt.Errorf("save %s: %w", rec.FunctionID, err)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("save %s: %w", rec.FunctionID, err)
	}
	if err := writeAtomic(s.path(rec.FunctionID), append(b, '\n')); err != nil {
		return fmt.Errorf("save %s: %w", rec.FunctionID, err)
	}
	return nil
}

// remove deletes the record, and the module when no other record uses it.
func (s *store) remove(id, digest string, stillUsed bool) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if !stillUsed {
		if err := s.modules.Delete(digest); err != nil && !errors.Is(err, modstore.ErrNotFound) {
			return fmt.Errorf("remove %s: module: %w", id, err)
		}
	}
	return nil
}

// load reads every record with its module. A record that cannot be read
// is reported in errs and skipped; the rest still load.
func (s *store) load() (recs []*record, wasm [][]byte, errs []error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, []error{fmt.Errorf("read %s: %w", s.dir, err)}
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(s.dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		if rec.FunctionID+".json" != name || !functionIDRE.MatchString(rec.FunctionID) {
			errs = append(errs, fmt.Errorf("%s: record names function %q", p, rec.FunctionID))
			continue
		}
		mod, err := s.modules.Get(rec.Digest)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		recs = append(recs, &rec)
		wasm = append(wasm, mod)
	}
	return recs, wasm, errs
}

// writeAtomic writes b to a temporary file beside path, syncs it and
// renames it into place.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
