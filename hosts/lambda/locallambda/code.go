package locallambda

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxUnzippedBytes is the 250 MB cap on unzipped code (gettingstarted-limits.html).
const maxUnzippedBytes = 262144000

// codeDir is one unpacked version of a function's code. The function's
// live configuration and every environment running it hold a reference;
// the directory goes when the last one is released.
type codeDir struct {
	path string
	refs int // guarded by the function's mu
}

// errUnzip is Lambda's answer to a zip it cannot read.
func errUnzip() *apiError {
	return errInvalid("Could not unzip uploaded file. Please check your file, then try to upload again.")
}

// checkZip opens a deployment package the way Lambda would before
// accepting it: a readable zip, safe names, within the unzipped size.
func checkZip(b []byte) (*zip.Reader, *apiError) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, errUnzip()
	}
	var total uint64
	for _, f := range zr.File {
		if _, ok := entryPath(f.Name); !ok {
			return nil, errUnzip()
		}
		total += f.UncompressedSize64
	}
	if total > maxUnzippedBytes {
		return nil, errInvalid("Unzipped size must be smaller than %d bytes", maxUnzippedBytes)
	}
	return zr, nil
}

// codeSha256 is CodeSha256: the base64 of the package's SHA-256 (API_FunctionConfiguration.html;
// 44 characters, as the field's format implies).
func codeSha256(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// entryPath cleans a zip entry's name; names escaping the root are refused.
func entryPath(name string) (string, bool) {
	name = strings.ReplaceAll(name, `\`, "/")
	if strings.HasPrefix(name, "/") {
		return "", false
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", false
	}
	return clean, true
}

// unpack extracts zr into dir, keeping the entries' permission bits (a
// bootstrap zipped without its executable bit will not start, as on
// Lambda) and symbolic links that stay inside dir.
func unpack(zr *zip.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var written int64
	for _, f := range zr.File {
		name, _ := entryPath(f.Name)
		if name == "." {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		case mode&os.ModeSymlink != 0:
			target, err := readEntry(f, 4096)
			if err != nil {
				return err
			}
			t := string(target)
			if filepath.IsAbs(t) {
				return fmt.Errorf("%s: symbolic link to an absolute path", f.Name)
			}
			if _, ok := entryPath(path.Join(path.Dir(name), t)); !ok {
				return fmt.Errorf("%s: symbolic link out of the package", f.Name)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(t, dst); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		n, err := writeEntry(f, dst, mode.Perm()|0o400, maxUnzippedBytes-written)
		written += n
		if err != nil {
			return err
		}
	}
	return nil
}

func readEntry(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

func writeEntry(f *zip.File, dst string, perm os.FileMode, budget int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(rc, budget+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > budget {
		err = errors.New("unzipped size over the limit")
	}
	return n, err
}
