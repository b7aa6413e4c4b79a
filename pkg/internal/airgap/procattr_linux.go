package airgap

import "syscall"

// daemonProcAttr puts a daemon in its own process group, so a Ctrl-C on
// `go test` reaches the test first and Close can stop it in order, and sets
// Pdeathsig, so that a test binary killed before Close (a -timeout panic)
// does not leave the daemon running.
func daemonProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// unmountDetach lazily unmounts p, even while something still uses it.
func unmountDetach(p string) error { return syscall.Unmount(p, syscall.MNT_DETACH) }
