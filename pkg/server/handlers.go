package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

var (
	helloBody = []byte("Hello!")
	// Shared, never-modified header values: assigning them directly saves
	// the allocation Header().Set makes on every request.
	textPlain = []string{echo.MIMETextPlainCharsetUTF8}
)

func handleHello(c echo.Context) error {
	r := c.Response()
	r.Header()[echo.HeaderContentType] = textPlain
	r.WriteHeader(http.StatusOK)
	_, err := r.Write(helloBody)
	return err
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
