package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func handleHello(c echo.Context) error {
	return c.String(http.StatusOK, "Hello!")
}

func handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, echo.Map{"status": "ok"})
}

func (s *Server) handleReadyz(c echo.Context) error {
	if !s.ready.Load() {
		return c.JSON(http.StatusServiceUnavailable, echo.Map{"status": "not ready"})
	}
	return c.JSON(http.StatusOK, echo.Map{"status": "ready"})
}

func (s *Server) handleVersion(c echo.Context) error {
	return c.JSON(http.StatusOK, s.version)
}
