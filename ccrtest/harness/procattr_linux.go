package harness

import "syscall"

// sysProcAttr makes the kernel kill CCR when the test binary dies, so a
// test that times out or panics leaves no CCR behind. The signal fires when
// the OS thread that started CCR exits; Go keeps its threads alive unless a
// goroutine locked to one ends, which the harness never does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
