package server

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/kobuilt/hello/pkg/connlimit"
)

// clientRequestID matches an X-Request-ID a client sent that is an ID at
// all: 1 to 64 letters, digits and ._:- (UUIDs, trace IDs, proxies' IDs).
// It is logged, as client_request_id, to correlate with the caller's logs;
// it never stands in for the request's own ID, which the service makes,
// so a client can neither forge nor reuse one in the logs.
var clientRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// Security headers for an API that serves no HTML. HSTS is left to the
// TLS-terminating proxy in front, which knows whether it is HTTPS. The
// values are assigned, not Set: Set allocates a slice per header per
// request (5 allocations, 360 ns of BenchmarkHello's 4.9 µs).
var securityHeaders = map[string][]string{
	"X-Content-Type-Options":       {"nosniff"},
	"X-Frame-Options":              {"DENY"},
	"Content-Security-Policy":      {"default-src 'none'; frame-ancestors 'none'"},
	"Referrer-Policy":              {"no-referrer"},
	"Cross-Origin-Resource-Policy": {"same-origin"},
}

// edge runs for every request, matched or not. It hands errors to the
// error handler itself so that it logs the status the client gets.
func (s *Server) edge(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req, res := c.Request(), c.Response()
		connlimit.Served(req.Context())
		h := res.Header()
		// 26 random characters: unique, and says nothing of the request count.
		h.Set(echo.HeaderXRequestID, rand.Text())
		for k, v := range securityHeaders {
			h[k] = v
		}
		// Close the connection during a shutdown (SetKeepAlive), and after
		// a request whose framing a proxy in front may have read otherwise:
		// a chunked one (net/http reads Content-Length and
		// Transfer-Encoding both set as chunked, RFC 9112 section 6.1) and
		// any HTTP/1.0 one (net/http ignores its Transfer-Encoding). Kept
		// open, the bytes after the body net/http read would be served as
		// a request the proxy never saw: request smuggling.
		if s.closeConns.Load() || len(req.TransferEncoding) > 0 || !req.ProtoAtLeast(1, 1) {
			h.Set("Connection", "close")
		}

		// A body declared too large is refused at once; one that turns out
		// too large fails to read with *http.MaxBytesError, which
		// handleError answers with 413. The net/http writer, so that it
		// closes the connection rather than read the rest of the body.
		var err error
		if req.ContentLength > s.bodyLimit {
			err = echo.ErrStatusRequestEntityTooLarge
		} else {
			req.Body = http.MaxBytesReader(res.Writer, req.Body, s.bodyLimit)
			err = next(c)
		}
		if err != nil {
			c.Error(err)
		}
		elapsed := time.Since(start)

		route := c.Path()
		if route == "" {
			route = "unmatched" // no route template: keeps scanners from creating a series per path
		}
		s.metrics.observe(route, req.Method, res.Status, elapsed)
		switch route {
		case "/healthz", "/readyz", "/metrics":
			return nil // polled by probes and scrapers: logging each poll would drown the log
		}
		level := slog.LevelInfo
		if res.Status >= http.StatusInternalServerError {
			level = slog.LevelError
		}
		bytes := res.Size
		if req.Method == http.MethodHead {
			bytes = 0 // net/http drops a HEAD response's body but reports it written
		}
		// A record of its own rather than LogAttrs, which looks up the
		// caller for every line (430 ns of BenchmarkHello's 4.9 µs).
		if h := s.log.Handler(); h.Enabled(req.Context(), level) {
			r := slog.NewRecord(time.Now(), level, "request", 0)
			r.AddAttrs(append(requestAttrs(c),
				slog.Int("status", res.Status),
				slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
				slog.Int64("bytes", bytes),
				slog.String("user_agent", bounded(req.UserAgent(), maxLoggedUserAgent)))...)
			_ = h.Handle(req.Context(), r) // a failed write is counted by pkg/logbuffer
		}
		return nil
	}
}

// The longest method and path the logs carry. net/http accepts a method
// of any length (HTTP's own are at most 7 bytes, WebDAV's 16) and a path as
// long as MAX_HEADER_BYTES allows, so without a bound one request can make a
// log line of tens of kilobytes.
const (
	maxLoggedMethod    = 32
	maxLoggedPath      = 1024
	maxLoggedUserAgent = 256
)

// requestAttrs are the attributes every log line about a request starts
// with. The peer is the connection's: X-Forwarded-For is whatever the
// client chose to send (docs/operations.md says how to trust a proxy's).
// The path is the one routing used, as it came on the wire (/hel%6co is
// not /hello), so it is also plain ASCII.
func requestAttrs(c echo.Context) []slog.Attr {
	req := c.Request()
	attrs := []slog.Attr{
		slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
		slog.String("remote_addr", req.RemoteAddr),
		slog.String("method", bounded(req.Method, maxLoggedMethod)),
		slog.String("path", bounded(req.URL.EscapedPath(), maxLoggedPath)),
	}
	if id := req.Header.Get(echo.HeaderXRequestID); clientRequestID.MatchString(id) {
		attrs = append(attrs, slog.String("client_request_id", id))
	}
	return attrs
}

// bounded cuts s to at most n bytes, and says how long it was. A method is
// a token and the path escaped, so both are ASCII; a User-Agent cut in the
// middle of a character gets U+FFFD from the JSON handler.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// recoverPanics turns a panic into a 500 and logs it with the panicking
// goroutine's stack; the client sees only echo's JSON error, which edge
// writes so that it logs the status the client got.
func (s *Server) recoverPanics() echo.MiddlewareFunc {
	return middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableStackAll:     true,
		DisableErrorHandler: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.LogAttrs(c.Request().Context(), slog.LevelError, "panic recovered", append(requestAttrs(c),
				slog.String("error", err.Error()),
				slog.String("stack", string(stack)))...)
			return fmt.Errorf("panic: %w", err)
		},
	})
}
