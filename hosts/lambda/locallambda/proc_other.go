//go:build !linux

package locallambda

import (
	"os"
	"syscall"
)

// Elsewhere than Linux the bootstrap gets no process group of its own and
// no memory accounting: Max Memory Used reads 0 and MemorySize is not
// enforced.

func sysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

func readMemory(int) (rssKB, hwmKB int64) { return 0, 0 }

func maxRSSKB(*os.ProcessState) int64 { return 0 }

func awaitExit(int) {}
