package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// Requests that net/http turns away before any handler runs (a malformed
// request line or header: 400; headers over MaxHeaderBytes: 431; an HTTP
// version it does not speak: 505; an Expect it does not support: 417; a
// TLS handshake on the plain port; headers cut by READ_HEADER_TIMEOUT)
// never reach the access log or the request metrics. net/http tells no
// handler and writes nothing to ErrorLog about them; the only place they
// show is http.Server.ConnState: the connection turns active (bytes of a
// request arrived) and then closes without the handler having seen a
// request. That is what connTracker counts. It cannot tell which status
// net/http answered, or whether it answered at all (a timeout or a client
// that hangs up mid-request gets none), and it does not see the request
// line, which net/http discards.
type connTracker struct {
	conns sync.Map // net.Conn -> *connInfo

	rejected       *metrics.Counter
	withoutRequest *metrics.Counter
}

type connInfo struct {
	state   atomic.Int32 // the last http.ConnState
	handled atomic.Bool  // the handler saw the request that made the connection active
}

type connInfoKey struct{}

func newConnTracker(set *metrics.Set) *connTracker {
	return &connTracker{
		rejected:       set.NewCounter("http_requests_rejected_before_routing_total"),
		withoutRequest: set.NewCounter("http_connections_closed_without_request_total"),
	}
}

// ConnContext is for http.Server.ConnContext: it lets the handler mark the
// connection a request came in on. Use it together with ConnState.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	info := &connInfo{}
	s.conns.conns.Store(c, info)
	return context.WithValue(ctx, connInfoKey{}, info)
}

// ConnState is for http.Server.ConnState: it counts requests net/http
// rejects before routing (http_requests_rejected_before_routing_total) and
// connections closed before a byte of a request arrived
// (http_connections_closed_without_request_total: port scans, TCP health
// checks, idle connections cut by READ_HEADER_TIMEOUT).
func (s *Server) ConnState(c net.Conn, state http.ConnState) {
	v, ok := s.conns.conns.Load(c)
	if !ok {
		return
	}
	info := v.(*connInfo)
	switch state {
	case http.StateActive:
		info.handled.Store(false)
	case http.StateClosed, http.StateHijacked:
		s.conns.conns.Delete(c)
		if state == http.StateHijacked {
			break
		}
		switch http.ConnState(info.state.Load()) {
		case http.StateNew:
			s.conns.withoutRequest.Inc()
		case http.StateActive:
			if !info.handled.Load() {
				s.conns.rejected.Inc()
			}
		}
	}
	info.state.Store(int32(state))
}

// markHandled records that a request reached the handler.
func markHandled(r *http.Request) {
	if info, ok := r.Context().Value(connInfoKey{}).(*connInfo); ok {
		info.handled.Store(true)
	}
}
