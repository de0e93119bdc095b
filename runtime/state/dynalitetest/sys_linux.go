package dynalitetest

import "syscall"

// sysProcAttr puts node in a process group of its own, so the cleanup can
// end the group, and kills it if the test binary dies without running its
// cleanups (a panic, a -timeout), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
