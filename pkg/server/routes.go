package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// addRoutes is the one place that lists every route and the middleware
// stack, outermost first.
func (s *Server) addRoutes() {
	e := s.echo
	e.Use(
		s.requestIDMiddleware,
		s.observeMiddleware, // access log and metrics see the final status
		s.recoverMiddleware(),
		securityHeadersMiddleware,
		middleware.BodyLimit(formatBytes(s.bodyLimit)),
		middleware.ContextTimeout(s.requestTimeout),
	)

	e.Match([]string{http.MethodGet, http.MethodHead}, "/hello", handleHello)
	e.Match([]string{http.MethodGet, http.MethodHead}, "/healthz", handleHealthz)
	e.Match([]string{http.MethodGet, http.MethodHead}, "/readyz", s.handleReadyz)
	e.GET("/version", s.handleVersion)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slogPrintln{s.log},
	})))
}

// quietPaths are polled by probes and scrapers; logging each poll would
// drown the access log.
func quietPath(route string) bool {
	switch route {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}
