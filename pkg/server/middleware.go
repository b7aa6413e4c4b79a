package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// Request IDs are a random per-process prefix and a counter: unique across
// replicas without a random read per request. They need to be unique, not
// secret, so the prefix comes from math/rand/v2 (seeded by the kernel at
// exec): crypto/rand's first read costs about 0.2 ms of start-up.
var (
	idPrefix  = strconv.FormatUint(rand.Uint64()|1<<63, 16)
	idCounter atomic.Uint64
)

func newRequestID() string {
	var buf [40]byte
	b := append(buf[:0], idPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, idCounter.Add(1), 16)
	return string(b)
}

// validRequestID accepts an incoming X-Request-ID only if it is short and
// printable, so it cannot forge log lines or bloat them.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// edgeMiddleware runs for every request, matched or not: it sets the
// request ID and security headers, rejects bodies declared larger than the
// limit, then writes the access log line and the metrics. It hands errors
// to the error handler itself so that it logs the status the client gets.
func (s *Server) edgeMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req, res := c.Request(), c.Response()
		markHandled(req)
		h := res.Header()
		id := req.Header[echo.HeaderXRequestID]
		if len(id) != 1 || !validRequestID(id[0]) {
			id = []string{newRequestID()}
		}
		h[echo.HeaderXRequestID] = id // never modified, so it can be shared
		for k, v := range securityHeaders {
			h[k] = v
		}

		var err error
		if req.ContentLength > s.bodyLimit {
			err = echo.ErrStatusRequestEntityTooLarge
		} else {
			err = next(c)
		}
		if err != nil {
			c.Error(err)
		}
		end := time.Now()
		elapsed := end.Sub(start)

		route := c.Path()
		if route == "" {
			route = "unmatched" // no route template: keeps scanners from creating a series per path
		}
		s.metrics.observe(route, req.Method, res.Status, elapsed)
		if quietPath(route) {
			return nil
		}
		level := slog.LevelInfo
		if res.Status >= http.StatusInternalServerError {
			level = slog.LevelError
		}
		// Built by hand rather than with LogAttrs: the access log has no
		// use for the caller's PC, which LogAttrs spends about a fifth of
		// the line's cost finding (runtime.Callers), and the end time is
		// already known.
		ctx := req.Context()
		if h := s.log.Handler(); h.Enabled(ctx, level) {
			r := slog.NewRecord(end, level, "request", 0)
			bytes := res.Size
			if req.Method == http.MethodHead {
				bytes = 0 // net/http drops a HEAD response's body but reports it written
			}
			r.AddAttrs(
				slog.String("request_id", id[0]),
				slog.String("method", bounded(req.Method, maxLoggedMethod)),
				slog.String("path", bounded(req.URL.Path, maxLoggedPath)),
				slog.Int("status", res.Status),
				slog.Duration("latency", elapsed),
				slog.Int64("bytes", bytes),
			)
			_ = h.Handle(ctx, r) // a failed log write cannot be reported anywhere better
		}
		return nil
	}
}

// The longest method and path the logs carry. net/http accepts a method
// of any length (HTTP's own are at most 7 bytes, WebDAV's 16) and a path as
// long as MAX_HEADER_BYTES allows, so without a bound one request can make a
// log line of tens of kilobytes.
const (
	maxLoggedMethod = 32
	maxLoggedPath   = 1024
)

// bounded cuts s to at most n bytes, at a UTF-8 boundary, and says how much
// it cut.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// recoverMiddleware turns a panic into a 500 and logs it with its stack;
// the client sees only echo's JSON error, written by edgeMiddleware.
func (s *Server) recoverMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			perr, ok := r.(error)
			if !ok {
				perr = fmt.Errorf("%v", r)
			}
			if errors.Is(perr, http.ErrAbortHandler) {
				panic(r) // net/http's way to abort a response: let it do so
			}
			stack := make([]byte, 4<<10)
			stack = stack[:runtime.Stack(stack, false)]
			s.log.LogAttrs(c.Request().Context(), slog.LevelError, "panic recovered",
				slog.String("request_id", requestID(c)),
				slog.String("method", bounded(c.Request().Method, maxLoggedMethod)),
				slog.String("path", bounded(c.Request().URL.Path, maxLoggedPath)),
				slog.String("error", perr.Error()),
				slog.String("stack", string(stack)))
			err = fmt.Errorf("panic: %w", perr)
		}()
		return next(c)
	}
}

// bodyLimitMiddleware makes reading more than limit bytes of a body fail
// with *http.MaxBytesError, which handleError answers with 413; a body
// declared larger than that never gets this far (edgeMiddleware). A request
// without a body (net/http's NoBody: most GETs) has nothing to limit.
func bodyLimitMiddleware(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if req := c.Request(); req.Body != nil && req.Body != http.NoBody {
				// The net/http writer, so that it closes the connection
				// rather than read the rest of the body.
				req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, limit)
			}
			return next(c)
		}
	}
}

// Security headers for an API that serves no HTML. Values are shared
// slices, assigned without the allocation Header().Set makes. HSTS is left
// to the TLS-terminating proxy in front, which knows whether it is HTTPS.
var securityHeaders = map[string][]string{
	"X-Content-Type-Options":       {"nosniff"},
	"X-Frame-Options":              {"DENY"},
	"Content-Security-Policy":      {"default-src 'none'; frame-ancestors 'none'"},
	"Referrer-Policy":              {"no-referrer"},
	"Cross-Origin-Resource-Policy": {"same-origin"},
}
