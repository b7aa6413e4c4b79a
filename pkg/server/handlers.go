package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func handleHello(c echo.Context) error {
	return c.String(http.StatusOK, "Hello!")
}

type status struct {
	Status string `json:"status"`
}

func handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, status{"ok"})
}

func (s *Server) handleReadyz(c echo.Context) error {
	if !s.ready.Load() {
		return c.JSON(http.StatusServiceUnavailable, status{"not ready"})
	}
	return c.JSON(http.StatusOK, status{"ready"})
}

func (s *Server) handleVersion(c echo.Context) error {
	return c.JSON(http.StatusOK, s.version)
}
