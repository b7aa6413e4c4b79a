package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/kobuilt/hello/pkg/connlimit"
)

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

// Security headers for an API that serves no HTML. HSTS is left to the
// TLS-terminating proxy in front, which knows whether it is HTTPS.
var securityHeaders = map[string]string{
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Resource-Policy": "same-origin",
}

// edge runs for every request, matched or not: it sets the request ID and
// the security headers, asks for the connection to close during a
// shutdown, limits the body, then writes the access log line and the
// metrics. It hands errors to the error handler
// itself so that it logs the status the client gets.
func (s *Server) edge(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req, res := c.Request(), c.Response()
		connlimit.Served(req.Context())
		id := req.Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = rand.Text() // 26 random characters: unique, and says nothing of the request count
		}
		h := res.Header()
		h.Set(echo.HeaderXRequestID, id)
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		if s.closeConns.Load() {
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
		s.observe(route, req.Method, res.Status, elapsed)
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
		s.log.LogAttrs(req.Context(), level, "request", append(requestAttrs(c),
			slog.Int("status", res.Status),
			slog.Duration("latency", elapsed),
			slog.Int64("bytes", bytes))...)
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

// requestAttrs are the attributes every log line about a request starts with.
func requestAttrs(c echo.Context) []slog.Attr {
	return []slog.Attr{
		slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
		slog.String("method", bounded(c.Request().Method, maxLoggedMethod)),
		slog.String("path", bounded(c.Request().URL.Path, maxLoggedPath)),
	}
}

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

// recoverPanics turns a panic into a 500 and logs it with its stack; the client
// sees only echo's JSON error, written by edge.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
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
			s.log.LogAttrs(c.Request().Context(), slog.LevelError, "panic recovered", append(requestAttrs(c),
				slog.String("error", perr.Error()),
				slog.String("stack", string(stack)))...)
			err = fmt.Errorf("panic: %w", perr)
		}()
		return next(c)
	}
}

// requestTimeout gives each request's context a deadline, so anything a
// handler waits on gives up in time; a handler that returns
// context.DeadlineExceeded gets a 503.
func requestTimeout(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ctx, cancel := context.WithTimeout(c.Request().Context(), d)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			err := next(c)
			if errors.Is(err, context.DeadlineExceeded) {
				return echo.ErrServiceUnavailable.WithInternal(err)
			}
			return err
		}
	}
}
