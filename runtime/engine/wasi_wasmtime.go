//go:build wasmtime && cgo && unix

package engine

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/ferryrun/ferry/runtime/abi"
)

// WASI preview 1 for the wasmtime engine, written here because Wasmtime's
// own cannot write to an io.Writer or fake its clocks. It is the subset Ferry
// guests need, with the choices of hosts/workers/shim/wasi.js: stdin is the
// instance's Stdin, fds 1 and 2 its Stdout and Stderr, no arguments, no
// environment, no preopened directories. Every other function of the module
// answers ENOSYS, so any WASI program links.
//
// Deterministic mode mirrors wazero's defaults, so a job prints the same
// bytes on either engine: the wall clock starts at 2022-01-01T00:00:00Z and
// the monotonic clock at 0, each advancing 1 ms per reading; sleeping
// returns at once; random_get is ChaCha8 from the instance's seed.

// WASI errno values.
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoIO      = 29
	errnoNosys   = 52
	errnoNotsup  = 58
	errnoSpipe   = 70
)

const (
	fakeEpochNanos = 1640995200 * int64(time.Second) // wazero's fake wall clock start
	fakeClockStep  = int64(time.Millisecond)
)

var monoBase = time.Now()

var le = binary.LittleEndian

// wasiSig is a preview 1 signature: i32 parameters except where i64 is
// marked, and one i32 (errno) result except for proc_exit.
type wasiSig struct {
	name   string
	params string // one letter per parameter: 'i' i32, 'I' i64
	fn     func(s *wasmtimeState, p []uint64) uint32
}

// wasiFuncs is wasi_snapshot_preview1 but for proc_exit, which returns
// nothing and is defined apart. A nil fn answers ENOSYS.
var wasiFuncs = []wasiSig{
	{"args_get", "ii", wasiOK},
	{"args_sizes_get", "ii", wasiZeroPair},
	{"environ_get", "ii", wasiOK},
	{"environ_sizes_get", "ii", wasiZeroPair},
	{"clock_res_get", "ii", wasiClockResGet},
	{"clock_time_get", "iIi", wasiClockTimeGet},
	{"fd_advise", "iIIi", nil},
	{"fd_allocate", "iII", nil},
	{"fd_close", "i", stdioOr(errnoSuccess)},
	{"fd_datasync", "i", nil},
	{"fd_fdstat_get", "ii", wasiFdstatGet},
	{"fd_fdstat_set_flags", "ii", stdioOr(errnoSuccess)},
	{"fd_fdstat_set_rights", "iII", nil},
	{"fd_filestat_get", "ii", nil},
	{"fd_filestat_set_size", "iI", nil},
	{"fd_filestat_set_times", "iIIi", nil},
	{"fd_pread", "iiiIi", nil},
	{"fd_prestat_get", "ii", wasiErrno(errnoBadf)}, // no preopened directories
	{"fd_prestat_dir_name", "iii", wasiErrno(errnoBadf)},
	{"fd_pwrite", "iiiIi", nil},
	{"fd_read", "iiii", wasiFdRead},
	{"fd_readdir", "iiiIi", nil},
	{"fd_renumber", "ii", nil},
	{"fd_seek", "iIii", stdioOr(errnoSpipe)},
	{"fd_sync", "i", stdioOr(errnoSuccess)},
	{"fd_tell", "ii", nil},
	{"fd_write", "iiii", wasiFdWrite},
	{"path_create_directory", "iii", nil},
	{"path_filestat_get", "iiiii", nil},
	{"path_filestat_set_times", "iiiiIIi", nil},
	{"path_link", "iiiiiii", nil},
	{"path_open", "iiiiiIIii", nil},
	{"path_readlink", "iiiiii", nil},
	{"path_remove_directory", "iii", nil},
	{"path_rename", "iiiiii", nil},
	{"path_symlink", "iiiii", nil},
	{"path_unlink_file", "iii", nil},
	{"poll_oneoff", "iiii", wasiPollOneoff},
	{"proc_raise", "i", nil},
	{"random_get", "ii", wasiRandomGet},
	{"sched_yield", "", wasiOK},
	{"sock_accept", "iii", nil},
	{"sock_recv", "iiiiii", nil},
	{"sock_send", "iiiii", nil},
	{"sock_shutdown", "ii", nil},
}

// defineWASI defines every function of wasi_snapshot_preview1 in l.
func defineWASI(l *wasmtime.Linker) error {
	for _, f := range wasiFuncs {
		params := make([]wasmtime.ValKind, len(f.params))
		for i, p := range f.params {
			params[i] = wasmtime.KindI32
			if p == 'I' {
				params[i] = wasmtime.KindI64
			}
		}
		fn := f.fn
		if fn == nil {
			fn = wasiErrno(errnoNosys)
		}
		err := defineHost(l, abi.WASI, f.name, params, []wasmtime.ValKind{wasmtime.KindI32},
			func(s *wasmtimeState, stack []uint64) *wasmtime.Trap {
				stack[0] = uint64(fn(s, stack))
				return nil
			})
		if err != nil {
			return err
		}
	}
	return defineHost(l, abi.WASI, "proc_exit", []wasmtime.ValKind{wasmtime.KindI32}, nil,
		func(s *wasmtimeState, stack []uint64) *wasmtime.Trap {
			s.exited, s.exitCode = true, uint32(stack[0])
			return wasmtime.NewTrap("proc_exit") // classify reads the code from s
		})
}

func wasiOK(*wasmtimeState, []uint64) uint32 { return errnoSuccess }

func wasiErrno(errno uint32) func(*wasmtimeState, []uint64) uint32 {
	return func(*wasmtimeState, []uint64) uint32 { return errno }
}

// stdioOr answers errno for fds 0 to 2 and EBADF for any other.
func stdioOr(errno uint32) func(*wasmtimeState, []uint64) uint32 {
	return func(_ *wasmtimeState, p []uint64) uint32 {
		if uint32(p[0]) > 2 {
			return errnoBadf
		}
		return errno
	}
}

// span returns mem[off:off+n], or false when out of bounds.
func span(mem []byte, off, n uint32) ([]byte, bool) {
	end := uint64(off) + uint64(n)
	if end > uint64(len(mem)) {
		return nil, false
	}
	return mem[off:end:end], true
}

func putU32(mem []byte, off, v uint32) bool {
	b, ok := span(mem, off, 4)
	if ok {
		le.PutUint32(b, v)
	}
	return ok
}

func putU64(mem []byte, off uint32, v uint64) bool {
	b, ok := span(mem, off, 8)
	if ok {
		le.PutUint64(b, v)
	}
	return ok
}

// wasiZeroPair answers args_sizes_get and environ_sizes_get: none.
func wasiZeroPair(s *wasmtimeState, p []uint64) uint32 {
	mem := s.guestBytes()
	if !putU32(mem, uint32(p[0]), 0) || !putU32(mem, uint32(p[1]), 0) {
		return errnoFault
	}
	return errnoSuccess
}

// Clock ids: only the real-time and monotonic clocks exist, as in wazero.
const (
	clockRealtime  = 0
	clockMonotonic = 1
)

func wasiClockResGet(s *wasmtimeState, p []uint64) uint32 {
	var res uint64
	switch uint32(p[0]) {
	case clockRealtime:
		res = uint64(time.Microsecond)
	case clockMonotonic:
		res = 1
	default:
		return errnoInval
	}
	if !putU64(s.guestBytes(), uint32(p[1]), res) {
		return errnoFault
	}
	return errnoSuccess
}

func wasiClockTimeGet(s *wasmtimeState, p []uint64) uint32 {
	var now int64
	switch uint32(p[0]) {
	case clockRealtime:
		if s.deterministic {
			s.wall += fakeClockStep
			now = s.wall
		} else {
			now = time.Now().UnixNano()
		}
	case clockMonotonic:
		if s.deterministic {
			s.mono += fakeClockStep
			now = s.mono
		} else {
			now = int64(time.Since(monoBase))
		}
	default:
		return errnoInval
	}
	if !putU64(s.guestBytes(), uint32(p[2]), uint64(now)) {
		return errnoFault
	}
	return errnoSuccess
}

func wasiRandomGet(s *wasmtimeState, p []uint64) uint32 {
	b, ok := span(s.guestBytes(), uint32(p[0]), uint32(p[1]))
	if !ok {
		return errnoFault
	}
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return errnoIO
	}
	return errnoSuccess
}

// wasiFdstatGet describes fds 0 to 2 as character devices with every right.
func wasiFdstatGet(s *wasmtimeState, p []uint64) uint32 {
	if uint32(p[0]) > 2 {
		return errnoBadf
	}
	b, ok := span(s.guestBytes(), uint32(p[1]), 24)
	if !ok {
		return errnoFault
	}
	clear(b)
	b[0] = 2 // filetype: character device
	le.PutUint64(b[8:], 0xffffffff)
	le.PutUint64(b[16:], 0xffffffff)
	return errnoSuccess
}

// iovecs calls f with each buffer of the iovec array at iovs, stopping when
// f returns false. It returns EFAULT for a vector or buffer out of bounds.
func iovecs(mem []byte, iovs, n uint32, f func([]byte) (more bool, errno uint32)) uint32 {
	for i := range n {
		off := uint64(iovs) + 8*uint64(i)
		if off > math.MaxUint32 {
			return errnoFault
		}
		iov, ok := span(mem, uint32(off), 8)
		if !ok {
			return errnoFault
		}
		buf, ok := span(mem, le.Uint32(iov), le.Uint32(iov[4:]))
		if !ok {
			return errnoFault
		}
		more, errno := f(buf)
		if errno != errnoSuccess || !more {
			return errno
		}
	}
	return errnoSuccess
}

func wasiFdWrite(s *wasmtimeState, p []uint64) uint32 {
	var w io.Writer
	switch uint32(p[0]) {
	case 1:
		w = s.stdout
	case 2:
		w = s.stderr
	default:
		return errnoBadf
	}
	mem := s.guestBytes()
	var total uint32
	errno := iovecs(mem, uint32(p[1]), uint32(p[2]), func(b []byte) (bool, uint32) {
		n, err := w.Write(b)
		total += uint32(n)
		if err != nil {
			return false, errnoIO
		}
		return true, errnoSuccess
	})
	if errno != errnoSuccess {
		return errno
	}
	if !putU32(mem, uint32(p[3]), total) {
		return errnoFault
	}
	return errnoSuccess
}

// wasiFdRead reads stdin into the buffers in turn, stopping at a short read
// or the end of input, as wazero does.
func wasiFdRead(s *wasmtimeState, p []uint64) uint32 {
	if uint32(p[0]) != 0 {
		return errnoBadf
	}
	mem := s.guestBytes()
	var total uint32
	errno := iovecs(mem, uint32(p[1]), uint32(p[2]), func(b []byte) (bool, uint32) {
		if len(b) == 0 {
			return true, errnoSuccess
		}
		n, err := s.stdin.Read(b)
		total += uint32(n)
		switch {
		case errors.Is(err, io.EOF):
			return false, errnoSuccess
		case err != nil:
			return false, errnoIO
		}
		return n == len(b), errnoSuccess
	})
	if errno != errnoSuccess {
		return errno
	}
	if !putU32(mem, uint32(p[3]), total) {
		return errnoFault
	}
	return errnoSuccess
}

// Subscription and event layout of poll_oneoff.
const (
	subSize   = 48
	eventSize = 32

	eventClock   = 0
	eventFdRead  = 1
	eventFdWrite = 2
)

// wasiPollOneoff answers every subscription at once, as wazero does for
// stdio that is not a terminal: stdin is ready, stdout and stderr cannot
// be polled (ENOTSUP on the event), clocks have expired. When only clocks
// were asked for, it first sleeps for the shortest: really, until the
// call's context ends, or not at all in deterministic mode, where the fake
// clocks only advance when read.
func wasiPollOneoff(s *wasmtimeState, p []uint64) uint32 {
	in, out, nsubs, nevents := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	if nsubs == 0 {
		return errnoInval
	}
	mem := s.guestBytes()
	if uint64(nsubs)*subSize > math.MaxUint32 {
		return errnoFault
	}
	subs, ok := span(mem, in, nsubs*subSize)
	if !ok {
		return errnoFault
	}
	events, ok := span(mem, out, nsubs*eventSize)
	if !ok {
		return errnoFault
	}
	// Validate first: subscriptions and events may overlap in memory.
	timeout, clocksOnly := time.Duration(math.MaxInt64), true
	for i := range nsubs {
		sub := subs[i*subSize:]
		switch sub[8] {
		case eventClock:
			switch le.Uint16(sub[40:]) {
			case 0: // relative
			case 1: // absolute
				return errnoNotsup
			default:
				return errnoInval
			}
			timeout = min(timeout, time.Duration(min(le.Uint64(sub[24:]), math.MaxInt64)))
		case eventFdRead, eventFdWrite:
			clocksOnly = false
		default:
			return errnoInval
		}
	}
	type event struct {
		userdata uint64
		errno    uint16
		kind     byte
	}
	evs := make([]event, nsubs)
	for i := range nsubs {
		sub := subs[i*subSize:]
		ev := event{userdata: le.Uint64(sub), kind: sub[8]}
		fd := le.Uint32(sub[16:])
		switch {
		case ev.kind == eventFdRead && fd != 0, ev.kind == eventFdWrite && fd > 2:
			ev.errno = errnoBadf
		case ev.kind == eventFdWrite:
			ev.errno = errnoNotsup
		}
		evs[i] = ev
	}
	for i, ev := range evs {
		b := events[i*eventSize : (i+1)*eventSize]
		clear(b)
		le.PutUint64(b, ev.userdata)
		le.PutUint16(b[8:], ev.errno)
		b[10] = ev.kind
	}
	if !putU32(mem, nevents, nsubs) {
		return errnoFault
	}
	if clocksOnly && timeout > 0 && !s.deterministic {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.callContext().Done():
		}
	}
	return errnoSuccess
}
