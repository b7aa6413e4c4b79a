package controlplane

import "syscall"

// The components die with the test binary even if it is killed before
// Close runs, instead of holding ports and CPU as orphans.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
