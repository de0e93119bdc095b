//go:build wasip1

package guest

import (
	"fmt"
	"io"
	"os"
	"unsafe"
)

// The host imports of ABI v1 (docs/abi.md).

//go:wasmimport ferry log
func ferryLog(level int32, ptr, n uint32)

//go:wasmimport ferry error
func ferryError(ptr, n uint32)

//go:wasmimport ferry take
func ferryTake(ptr, n uint32) int32

//go:wasmimport ferry state_get
func ferryStateGet(kptr, klen uint32) int32

//go:wasmimport ferry state_set
func ferryStateSet(kptr, klen, vptr, vlen uint32) int32

//go:wasmimport ferry state_delete
func ferryStateDelete(kptr, klen uint32) int32

//go:wasmimport ferry http_request
func ferryHTTPRequest(ptr, n uint32) int32

func strPtr(s string) uint32 {
	if len(s) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

func bytesPtr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func hostLog(level Level, msg string) {
	ferryLog(int32(level), strPtr(msg), uint32(len(msg)))
}

// take copies the host's pending result (n bytes) into a new slice.
func take(n int32) []byte {
	b := make([]byte, n)
	if n > 0 {
		ferryTake(bytesPtr(b), uint32(n))
	}
	return b
}

func stateGet(key string) ([]byte, bool, error) {
	n := ferryStateGet(strPtr(key), uint32(len(key)))
	switch {
	case n == codeNotFound:
		return nil, false, nil
	case n < 0:
		return nil, false, codeErr("state get "+key, n)
	}
	return take(n), true, nil
}

func stateSet(key string, value []byte) error {
	if n := ferryStateSet(strPtr(key), uint32(len(key)), bytesPtr(value), uint32(len(value))); n < 0 {
		return codeErr("state set "+key, n)
	}
	return nil
}

func stateDelete(key string) error {
	if n := ferryStateDelete(strPtr(key), uint32(len(key))); n < 0 && n != codeNotFound {
		return codeErr("state delete "+key, n)
	}
	return nil
}

func fetch(req Request) (*Response, error) {
	b := encodeRequest(req)
	n := ferryHTTPRequest(bytesPtr(b), uint32(len(b)))
	if n < 0 {
		return nil, codeErr(req.Method+" "+req.URL, n)
	}
	return decodeResponse(take(n))
}

// Reactor exports. The host calls ferry_alloc for the input, then ferry_run.

//go:wasmexport ferry_abi_v1
func abiV1() {}

var (
	handler Handler
	reactor bool
	// inBuf and outBuf keep the buffers handed to the host reachable, so the
	// GC cannot free them while the host reads or writes them.
	inBuf  []byte
	outBuf []byte
)

//go:wasmexport ferry_alloc
func ferryAlloc(n int32) uint32 {
	if n < 0 {
		return 0
	}
	inBuf = make([]byte, n, n+1) // +1: a distinct, valid pointer even for n == 0
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(inBuf))))
}

//go:wasmexport ferry_run
func ferryRun(ptr, n uint32) uint64 {
	if handler == nil {
		// In a reactor, _initialize does not run main; run it once now so
		// that main's call to Handle registers the handler.
		reactor = true
		mainMain()
		if handler == nil {
			fail("guest.Handle was not called from main")
			return 0
		}
	}
	if uint32(uintptr(unsafe.Pointer(unsafe.SliceData(inBuf)))) != ptr || int(n) > cap(inBuf) {
		fail("input was not allocated with ferry_alloc")
		return 0
	}
	in := inBuf[:n]
	out, err := call(in)
	inBuf = nil
	if err != nil {
		fail(err.Error())
		return 0
	}
	outBuf = out
	return uint64(bytesPtr(out))<<32 | uint64(len(out))
}

func fail(msg string) { ferryError(strPtr(msg), uint32(len(msg))) }

func call(in []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return handler(in)
}

//go:linkname mainMain main.main
func mainMain()

// Handle registers the job's handler. In a reactor it returns at once and the
// host calls the handler per invocation; in a command it runs the handler on
// stdin, writes stdout and exits (status 1 on error).
func Handle(h Handler) {
	handler = h
	if reactor {
		return
	}
	runCommand(h, os.Stdin, os.Stdout, os.Stderr)
}

func runCommand(h Handler, stdin io.Reader, stdout, stderr io.Writer) {
	in, err := io.ReadAll(stdin)
	if err == nil {
		var out []byte
		if out, err = call(in); err == nil {
			_, err = stdout.Write(out)
		}
	}
	if err != nil {
		fail(err.Error())
		fmt.Fprintln(stderr, err)
		os.Exit(1)
	}
}
