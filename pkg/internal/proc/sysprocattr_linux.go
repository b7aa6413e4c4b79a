package proc

import "syscall"

// SysProcAttr is for a long-running child (dockerd, etcd, the kubelet, ...):
// its own process group, so a Ctrl-C on `go test` reaches the test first and
// its cleanup can stop the children in order; and onParentDeath sent to it
// when the test binary dies, so a binary killed before its cleanup (a
// -timeout panic) leaves no orphan holding ports, mounts and CPU.
func SysProcAttr(onParentDeath syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: onParentDeath}
}
