// Command bareecho is hellobench's second floor: the same answer from echo
// alone, with no middleware, logging or metrics, so that what echo costs and
// what hello adds on top of it show apart.
package main

import (
	"log"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"
)

func main() {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/hello", func(c echo.Context) error {
		return c.String(http.StatusOK, "Hello!")
	})
	log.Fatal(e.Start(":" + os.Getenv("PORT"))) // every interface, like hello and bare
}
