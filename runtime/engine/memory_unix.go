//go:build unix

package engine

import (
	"syscall"
)

// reserve maps size bytes of zeroed, private, lazily committed memory. Pages
// cost nothing until the guest touches them, growing is a reslice (no copy),
// and unmapping returns the memory to the OS at once instead of leaving a
// large dead buffer for the Go GC.
func reserve(size uint64) ([]byte, bool) {
	if size == 0 || size > maxReserve {
		return nil, false
	}
	b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
	if err != nil {
		return nil, false
	}
	return b, true
}

func release(b []byte) { _ = syscall.Munmap(b[:cap(b)]) }
