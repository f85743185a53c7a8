//go:build !linux

package harness

import "syscall"

// sysProcAttr returns nil: only Linux can kill CCR when the test binary
// dies, so elsewhere a test binary that is killed can leave CCR running.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}
