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
//
// Knowing each connection's state, it also counts the requests net/http
// turns away before routing (400, 431, 505, a TLS handshake on the plain
// port, the header timeout), which no handler and no log sees: a
// connection that turns active and closes without a call to Served.
package connlimit

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is a net.Listener that holds at most max connections open. Set
// its ConnState and ConnContext as the http.Server's, so that it knows
// which connections are in the middle of a request.
type Listener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]*conn
	stats Stats // the counts and LastAccept
}

type conn struct {
	state  http.ConnState
	since  time.Time   // when it last changed state
	served atomic.Bool // a handler saw the request that made it active
}

// New wraps ln so that at most limit connections are open at once.
func New(ln net.Listener, limit int) *Listener {
	return &Listener{Listener: ln, max: limit, conns: map[net.Conn]*conn{}}
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
		now := time.Now()
		l.mu.Lock()
		l.stats.LastAccept = now
		victim, room := l.makeRoom()
		if room {
			l.conns[c] = &conn{state: http.StateNew, since: now}
		} else {
			l.stats.Refused++
		}
		l.mu.Unlock()
		if victim != nil {
			victim.Close()
		}
		if room {
			return c, nil
		}
		c.Close()
	}
}

// makeRoom reports whether there is room for one more connection, and the
// connection to close for it, if one has to go. l.mu must be held.
func (l *Listener) makeRoom() (victim net.Conn, ok bool) {
	if len(l.conns) < l.max {
		return nil, true
	}
	var oldest time.Time
	for c, tc := range l.conns {
		if tc.state != http.StateActive && (victim == nil || tc.since.Before(oldest)) {
			victim, oldest = c, tc.since
		}
	}
	if victim == nil {
		return nil, false
	}
	delete(l.conns, victim)
	l.stats.Evicted++
	return victim, true
}

// ConnState is for http.Server.ConnState.
func (l *Listener) ConnState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tc, ok := l.conns[c]
	if !ok {
		return // closed to make room
	}
	switch s {
	case http.StateActive, http.StateIdle:
		tc.state, tc.since = s, time.Now()
		tc.served.Store(false)
	case http.StateClosed:
		switch {
		case tc.state == http.StateNew:
			l.stats.WithoutRequest++
		case tc.state == http.StateActive && !tc.served.Load():
			l.stats.Rejected++
		}
		delete(l.conns, c)
	case http.StateHijacked:
		delete(l.conns, c)
	}
}

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it lets Served find the
// connection a request came in on.
func (l *Listener) ConnContext(ctx context.Context, c net.Conn) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return context.WithValue(ctx, connKey{}, l.conns[c])
}

// Served records that the request whose context is ctx reached a handler,
// so that its connection closing is not counted as a rejection.
func Served(ctx context.Context) {
	if tc, _ := ctx.Value(connKey{}).(*conn); tc != nil {
		tc.served.Store(true)
	}
}

// Stats is what the listener has seen so far.
type Stats struct {
	Open    int    // connections open now
	Waiting int    // open and waiting for a request: new or idle
	Queued  int    // in the kernel's accept queue, not accepted yet (0 off Linux)
	Refused uint64 // closed on arrival because every open one was busy
	Evicted uint64 // waiting connections closed so that a new one could be served
	// Rejected is connections closed after bytes of a request arrived but
	// before a handler saw it: net/http turned the request away.
	Rejected uint64
	// WithoutRequest is connections closed before a byte of a request
	// arrived: port scans, TCP health checks, header timeouts on idle ones.
	WithoutRequest uint64
	// LastAccept is when the latest connection arrived.
	LastAccept time.Time
}

// Stats reports the connections open now and the counts so far.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Open = len(l.conns)
	for _, tc := range l.conns {
		if tc.state != http.StateActive {
			s.Waiting++
		}
	}
	s.Queued = queued(l.Listener)
	return s
}
