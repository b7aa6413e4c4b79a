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
// environment it finds the server on its own. It GETs /healthz on loopback
// and returns nil for 200 OK, else an error main prints as one line on
// stderr before exiting 1.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Parse(args, getenv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	url, err := healthzURL(cfg.Addr)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No proxy (HTTP_PROXY in the container must not reroute a loopback
	// probe) and no kept connection: the process ends right after.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
	}
	return nil
}

// healthzURL is where the server listening on addr answers /healthz from
// inside its own network namespace: a wildcard or empty host means the
// loopback address of the same family; a specific host is used as given,
// since a server bound to one address answers only there.
func healthzURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
