//go:build !linux

package proc

import "syscall"

// SysProcAttr is nil off Linux: the daemons the harness starts run only on
// Linux, and the tests that need them skip before they get here.
func SysProcAttr(syscall.Signal) *syscall.SysProcAttr { return nil }
