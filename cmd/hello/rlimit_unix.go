//go:build linux || darwin

package main

import "syscall"

// openFileLimit is the most files the process may hold open (0 when it
// cannot tell). The Go runtime has already raised the soft limit to the
// hard one, so this is what a container's ulimit allows.
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Cur
}
