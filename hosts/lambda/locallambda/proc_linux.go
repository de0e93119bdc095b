package locallambda

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// sysProcAttr puts the bootstrap in its own process group, so a kill takes
// whatever it started too, and has the kernel kill it if Ferry dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group pid leads. Lambda gives a runtime
// without extensions no SIGTERM: it is just killed (runtimes-extensions-api.html, "Shutdown phase").
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// readMemory returns the process's resident set and its high-water mark
// in KiB, from /proc/PID/status.
func readMemory(pid int) (rssKB, hwmKB int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(k) {
		case "VmRSS":
			dst = &rssKB
		case "VmHWM":
			dst = &hwmKB
		default:
			continue
		}
		f := bytes.Fields(v)
		if len(f) > 0 {
			*dst, _ = strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return rssKB, hwmKB
}

// maxRSSKB is the peak resident set of an exited process, in KiB.
func maxRSSKB(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

// awaitExit blocks until the process has ended without reaping it
// (waitid with WNOWAIT): until it is reaped its pid, and so its process
// group id, cannot be given to another process, so killGroup is safe.
func awaitExit(pid int) {
	const pPID, wNOWAIT = 1, 0x1000000
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|wNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}
