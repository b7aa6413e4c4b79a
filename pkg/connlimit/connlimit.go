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

	mu sync.Mutex
	// Every open connection, with the time since which it has waited
	// without a request in progress; zero while a request is.
	conns map[net.Conn]time.Time

	refused, closed atomic.Uint64
}

// New wraps ln, which srv is about to serve, so that at most limit
// connections are open at once. It installs srv.ConnState, calling the one
// already set, if any, after its own work.
func New(srv *http.Server, ln net.Listener, limit int) *Listener {
	l := &Listener{Listener: ln, max: limit, conns: map[net.Conn]time.Time{}}
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
// and accepts the next.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		var victim net.Conn
		if len(l.conns) >= l.max {
			var since time.Time
			for vc, t := range l.conns {
				if !t.IsZero() && (victim == nil || t.Before(since)) {
					victim, since = vc, t
				}
			}
			if victim != nil {
				delete(l.conns, victim)
			}
		}
		full := len(l.conns) >= l.max
		if !full {
			l.conns[c] = time.Now()
		}
		l.mu.Unlock()
		if victim != nil {
			l.closed.Add(1)
			victim.Close()
		}
		if full {
			l.refused.Add(1)
			c.Close()
			continue
		}
		return c, nil
	}
}

func (l *Listener) track(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.conns[c]; !ok {
		return // closed to make room
	}
	switch s {
	case http.StateActive:
		l.conns[c] = time.Time{}
	case http.StateIdle:
		l.conns[c] = time.Now()
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	}
}

// Open is the number of connections open now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Refused is the number of connections closed on arrival because every
// open one was in the middle of a request.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// ClosedToMakeRoom is the number of waiting connections closed so that a
// new one could be served.
func (l *Listener) ClosedToMakeRoom() uint64 { return l.closed.Load() }
