package connlimit

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// queued is how many connections the kernel has completed that wait in
// ln's accept queue, which TCP_INFO reports for a listening socket as
// unacked.
func queued(ln net.Listener) int {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = int(info.Unacked)
		}
	})
	return n
}
