// Package connlimit caps the connections an http.Server holds open, so
// that no client can make it run out of memory or file descriptors.
//
// At the cap, a new connection makes room by closing the connection that
// has waited longest without a request in progress: an idle keep-alive
// connection, or one that has not sent a byte yet. nginx does the same
// with its idle keep-alive connections when it runs out. So a probe or a
// new client is served even when idle connections fill the cap, which a
// listener that waits for a free slot (golang.org/x/net/netutil's
// LimitListener) cannot do: its slots free only as connections time out.
// Only when every connection is in the middle of a request is the new one
// refused, closed at once and counted; each of those requests is bounded
// by the server's timeouts.
package connlimit

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is a net.Listener that holds at most max connections open.
type Listener struct {
	net.Listener
	max int

	// Every open connection (net.Conn -> *waiting). Requests only read it,
	// without a lock: a mutex taken twice per request, on the connection
	// state changes, costs more than its map on two busy cores. Only Accept
	// adds, and Accept and the closing connection remove.
	conns sync.Map
	open  atomic.Int64

	refused, closed atomic.Uint64
}

// waiting is the time, in Unix nanoseconds, since which a connection has
// waited without a request in progress; zero while a request is.
type waiting struct{ since atomic.Int64 }

// New wraps ln, which srv is about to serve, so that at most limit
// connections are open at once. It installs srv.ConnState, calling the one
// already set, if any, after its own work.
func New(srv *http.Server, ln net.Listener, limit int) *Listener {
	l := &Listener{Listener: ln, max: limit}
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		l.track(c, s)
		if next != nil {
			next(c, s)
		}
	}
	return l
}

// Accept returns the next connection, after closing the longest-waiting
// one if the cap is reached; when none is waiting, it refuses the new one
// and accepts the next. http.Server calls it from one goroutine, and
// connections only close meanwhile, so the count it checks can only fall.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Load() >= int64(l.max) && !l.closeLongestWaiting() {
			l.refused.Add(1)
			c.Close()
			continue
		}
		w := &waiting{}
		w.since.Store(time.Now().UnixNano())
		l.conns.Store(c, w)
		l.open.Add(1)
		return c, nil
	}
}

// closeLongestWaiting closes the connection that has waited longest
// without a request in progress, and reports whether that made room.
func (l *Listener) closeLongestWaiting() bool {
	var victim net.Conn
	var oldest int64
	l.conns.Range(func(k, v any) bool {
		if since := v.(*waiting).since.Load(); since != 0 && (victim == nil || since < oldest) {
			victim, oldest = k.(net.Conn), since
		}
		return true
	})
	if victim == nil {
		return false
	}
	if l.forget(victim) {
		l.closed.Add(1)
		victim.Close()
	}
	return true // closed here, or it closed itself meanwhile: room either way
}

// forget removes c, once, and reports whether it was there.
func (l *Listener) forget(c net.Conn) bool {
	if _, ok := l.conns.LoadAndDelete(c); ok {
		l.open.Add(-1)
		return true
	}
	return false
}

func (l *Listener) track(c net.Conn, s http.ConnState) {
	v, ok := l.conns.Load(c)
	if !ok {
		return // closed to make room
	}
	switch s {
	case http.StateActive:
		v.(*waiting).since.Store(0)
	case http.StateIdle:
		v.(*waiting).since.Store(time.Now().UnixNano())
	case http.StateClosed, http.StateHijacked:
		l.forget(c)
	}
}

// Open is the number of connections open now.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Refused is the number of connections closed on arrival because every
// open one was in the middle of a request.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// ClosedToMakeRoom is the number of waiting connections closed so that a
// new one could be served.
func (l *Listener) ClosedToMakeRoom() uint64 { return l.closed.Load() }
