//go:build !linux

package connlimit

import "net"

// queued is 0 where the accept queue cannot be read: a shutdown relies on
// no connection having arrived for a moment (see graceful).
func queued(net.Listener) int { return 0 }
