package blueprint

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// lookedFor lists what InferLanguage looks for, in its order.
const lookedFor = "looked for a .wasm, .wat, .c or .go file, or a folder holding *.c files, Cargo.toml, go.mod or *.go files"

// InferLanguage says what language the job source at source (relative to
// the blueprint folder dir) is written in, from the file system:
//
//   - a .wasm file: wasm (a prebuilt module)
//   - a .wat file: wat
//   - a .c file, or a folder holding *.c files: c
//   - a folder holding Cargo.toml: rust
//   - a .go file, or a folder holding go.mod or *.go files: go
//
// A folder is matched by its own entries only, in the order above (so a
// folder with both *.c files and Cargo.toml is c). Anything else is an error
// wrapping ErrUnknownLanguage that names the source and what was looked for.
// source must stay inside dir (ErrInvalid otherwise), and it must exist
// (ErrSourceNotFound otherwise); a symbolic link may not lead out of dir.
func InferLanguage(dir, source string) (Language, error) {
	if msg := checkRelPath(source); msg != "" {
		return "", fmt.Errorf("infer language of %q: source %s: %w", source, msg, ErrInvalid)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("infer language of %q: open blueprint folder: %w", source, err)
	}
	defer root.Close()
	return inferIn(root, source)
}

// inferError is InferLanguage's failure; msg leaves out the source name so
// that Load can put it after the field path instead.
type inferError struct {
	source string
	msg    string
	err    error // sentinel
	cause  error
}

func (e *inferError) Error() string {
	return fmt.Sprintf("infer language of %q: %s", e.source, e.msg)
}

func (e *inferError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.err}
	}
	return []error{e.err, e.cause}
}

func inferIn(root *os.Root, source string) (Language, error) {
	p := filepath.FromSlash(source)
	fi, err := root.Stat(p)
	if err != nil {
		return "", &inferError{source: source, msg: fsMsg(err), err: ErrSourceNotFound, cause: err}
	}
	if !fi.IsDir() {
		switch path.Ext(source) {
		case ".wasm":
			return LanguageWasm, nil
		case ".wat":
			return LanguageWAT, nil
		case ".c":
			return LanguageC, nil
		case ".go":
			return LanguageGo, nil
		}
		return "", &inferError{source: source, msg: "unknown file type; " + lookedFor, err: ErrUnknownLanguage}
	}

	f, err := root.Open(p)
	if err != nil {
		return "", &inferError{source: source, msg: fsMsg(err), err: ErrSourceNotFound, cause: err}
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return "", &inferError{source: source, msg: "read folder: " + fsMsg(err), err: ErrUnknownLanguage, cause: err}
	}
	var hasC, hasCargo, hasGoMod, hasGo bool
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		switch {
		case name == "Cargo.toml":
			hasCargo = true
		case name == "go.mod":
			hasGoMod = true
		case strings.HasSuffix(name, ".c"):
			hasC = true
		case strings.HasSuffix(name, ".go"):
			hasGo = true
		}
	}
	switch {
	case hasC:
		return LanguageC, nil
	case hasCargo:
		return LanguageRust, nil
	case hasGoMod || hasGo:
		return LanguageGo, nil
	}
	return "", &inferError{source: source, msg: "nothing recognised in the folder; " + lookedFor, err: ErrUnknownLanguage}
}
