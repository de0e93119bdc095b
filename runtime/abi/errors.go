package abi

import "errors"

// Sentinel errors of Describe. Each error Describe returns wraps exactly one.
var (
	// ErrNotWasm: the bytes are not a WebAssembly module.
	ErrNotWasm = errors.New("not a WebAssembly module")
	// ErrMalformed: the module is truncated or otherwise unreadable.
	ErrMalformed = errors.New("malformed module")
	// ErrABIVersion: the module declares an ABI version this host does not
	// implement.
	ErrABIVersion = errors.New("unsupported Ferry ABI version")
	// ErrMissingExport: an export the shape requires is absent.
	ErrMissingExport = errors.New("missing export")
	// ErrBadSignature: an ABI export or import has the wrong type.
	ErrBadSignature = errors.New("wrong signature")
	// ErrUnsupportedImport: the module imports something no Ferry host
	// provides.
	ErrUnsupportedImport = errors.New("unsupported import")
)
