// Package server is hello's HTTP handler: routes, middleware and error
// handling. It is the only package that imports echo, so moving to another
// router (echo v4 gets only security fixes after 2026-12-31) changes this
// package and nothing else.
package server

import (
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kobuilt/hello/pkg/version"
)

// Server is the whole HTTP handler of the service.
type Server struct {
	echo            *echo.Echo
	metricsEcho     *echo.Echo // see MetricsHandler
	separateMetrics bool
	log             *slog.Logger
	metrics         *requestMetrics
	version         version.Info
	bodyLimit       int64
	requestTimeout  time.Duration
	ready           atomic.Bool
	closeConns      atomic.Bool // see SetKeepAlive
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets where access logs and errors go (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithSeparateMetrics(true) serves /metrics and /version only through
// MetricsHandler, for a listener of their own that only operators and the
// scraper can reach (default: the main handler serves them too).
func WithSeparateMetrics(separate bool) Option {
	return func(s *Server) { s.separateMetrics = separate }
}

// WithBodyLimit sets the largest request body in bytes (default 1 MiB).
func WithBodyLimit(n int64) Option { return func(s *Server) { s.bodyLimit = n } }

// WithRequestTimeout sets the deadline of each request's context (default 10s).
func WithRequestTimeout(d time.Duration) Option { return func(s *Server) { s.requestTimeout = d } }

// WithVersion sets what /version serves (default: version.Get()).
func WithVersion(v version.Info) Option { return func(s *Server) { s.version = v } }

// New builds the handler with every route and middleware. It starts not
// ready: call SetReady(true) once the listener accepts connections.
func New(opts ...Option) *Server {
	s := &Server{
		log:            slog.New(slog.DiscardHandler),
		metrics:        newRequestMetrics(),
		version:        version.Get(),
		bodyLimit:      1 << 20,
		requestTimeout: 10 * time.Second,
	}
	for _, o := range opts {
		o(s)
	}
	s.echo, s.metricsEcho = echo.New(), echo.New()
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// MetricsHandler serves /metrics and /version (and 404 for anything else),
// with the same request IDs, headers and request metrics as the main
// handler, for a listener of its own (METRICS_ADDR).
func (s *Server) MetricsHandler() http.Handler { return s.metricsEcho }

// Metrics is the registry /metrics serves: register a program's own
// metrics with it.
func (s *Server) Metrics() prometheus.Registerer { return s.metrics.registry }

// SetReady sets what /readyz answers: 200 when true, 503 when false.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// SetKeepAlive(false) makes every response say Connection: close, as
// during a shutdown (pkg/graceful); true, the default, keeps connections.
func (s *Server) SetKeepAlive(keep bool) { s.closeConns.Store(!keep) }

// handleError writes echo's JSON error for HTTP errors and a bare 500 for
// anything else, so no internal detail or stack trace reaches a client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		err = echo.ErrStatusRequestEntityTooLarge.WithInternal(err)
	}
	if he := (*echo.HTTPError)(nil); !errors.As(err, &he) || he.Code >= http.StatusInternalServerError {
		s.log.LogAttrs(c.Request().Context(), slog.LevelError, "request failed",
			append(requestAttrs(c), slog.String("error", err.Error()))...)
	}
	s.echo.DefaultHTTPErrorHandler(err, c)
}
