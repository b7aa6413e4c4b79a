package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// addRoutes is the one place that lists every route and the middleware.
//
// Echo v4 wraps the middleware given to Use around the handler again on
// every request, one allocation per layer. So Use gets only the layer that
// must see every request, 404 and 405 included (request ID, security
// headers, access log, metrics); the rest is wrapped around each route
// once, here.
func (s *Server) addRoutes() {
	s.echo.Use(s.edgeMiddleware)
	s.metricsEcho.Use(s.edgeMiddleware)

	s.perRoute = []echo.MiddlewareFunc{
		s.recoverMiddleware,
		bodyLimitMiddleware(s.bodyLimit),
		deadlineMiddleware(s.requestTimeout),
	}
	getOrHead := []string{http.MethodGet, http.MethodHead}

	s.handle(getOrHead, "/hello", handleHello)
	s.handle(getOrHead, "/healthz", handleHealthz)
	s.handle(getOrHead, "/readyz", s.handleReadyz)

	// What only operators need: MetricsHandler always serves it; the main
	// handler too unless WithSeparateMetrics moved it off.
	metrics := echo.WrapHandler(metricsHandler(s.metricsSet))
	s.handleOn(s.metricsEcho, getOrHead, "/version", s.handleVersion)
	s.handleOn(s.metricsEcho, getOrHead, "/metrics", metrics)
	if !s.separateMetrics {
		s.handleOn(s.echo, getOrHead, "/version", s.handleVersion)
		s.handleOn(s.echo, getOrHead, "/metrics", metrics)
	}
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

// handle registers h on the main handler for methods on path, wrapped in
// the per-route middleware.
func (s *Server) handle(methods []string, path string, h echo.HandlerFunc) {
	s.handleOn(s.echo, methods, path, h)
}

func (s *Server) handleOn(e *echo.Echo, methods []string, path string, h echo.HandlerFunc) {
	for i := len(s.perRoute) - 1; i >= 0; i-- {
		h = s.perRoute[i](h)
	}
	e.Match(methods, path, h)
}
