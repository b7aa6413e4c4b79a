package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/kobuilt/hello/pkg/config"
)

// healthcheckTimeout bounds the whole check. Docker's and Compose's own
// timeout (30s by default) would let a stuck server hold a check open far
// longer; /healthz answers in microseconds when the process runs at all.
const healthcheckTimeout = 2 * time.Second

// healthcheck is `hello healthcheck [flags]`: the container health check for
// an image with no shell and no curl, used in exec form as
// ["CMD", "/ko-app/hello", "healthcheck"]. It reads the same flags and
// environment as the server (PORT, --addr), so with the container's
// environment it finds the server on its own; it wants 200 from /healthz.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Parse(args, getenv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	url := "http://" + loopback(cfg.Addr) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// A transport of its own, which takes no proxy from the environment: an
	// HTTP_PROXY set for the service's outbound calls must not carry a check
	// of the process itself elsewhere.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
	}
	return nil
}

// loopback is where the server listening on addr (as config checked it)
// answers from inside its own network namespace: a wildcard or empty host
// means the loopback address of the same family; a specific host is used
// as given, since a server bound to one address answers only there.
func loopback(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
