package server

import (
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the one place that lists every route and the middleware.
func (s *Server) routes() {
	getOrHead := []string{http.MethodGet, http.MethodHead}
	metrics := echo.WrapHandler(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))

	for _, e := range []*echo.Echo{s.echo, s.metricsEcho} {
		e.Logger.SetOutput(io.Discard) // everything is logged through slog
		e.HTTPErrorHandler = s.handleError
		// Outermost first. ContextTimeout gives each request's context a
		// deadline and answers a handler's context.DeadlineExceeded with 503.
		e.Use(s.edge, s.recoverPanics(), middleware.ContextTimeout(s.requestTimeout))
	}

	s.echo.Match(getOrHead, "/hello", handleHello)
	s.echo.Match(getOrHead, "/healthz", handleHealthz)
	s.echo.Match(getOrHead, "/readyz", s.handleReadyz)
	if !s.separateMetrics {
		s.echo.Match(getOrHead, "/version", s.handleVersion)
		s.echo.Match(getOrHead, "/metrics", metrics)
	}

	// What only operators need, for a listener of its own (METRICS_ADDR).
	s.metricsEcho.Match(getOrHead, "/version", s.handleVersion)
	s.metricsEcho.Match(getOrHead, "/metrics", metrics)
}
