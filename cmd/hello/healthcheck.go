package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
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
	code, status, err := getStatus(ctx, url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", url, status)
	}
	return nil
}

// getStatus sends one HTTP/1.1 GET on its own connection and returns the
// response's status code and line. It dials and writes the request itself rather than use
// http.Client: the client's Transport (with its HTTP/2 half) would add about
// half a megabyte to the binary the image ships, for one request to
// loopback that needs no proxy, no redirects and no kept connection.
func getStatus(ctx context.Context, url string) (int, string, error) {
	hostport, path, _ := strings.Cut(strings.TrimPrefix(url, "http://"), "/")
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		// Without the deadline a stuck server would hang the probe itself.
		if err := conn.SetDeadline(deadline); err != nil {
			return 0, "", fmt.Errorf("GET %s: %w", url, err)
		}
	}
	req := "GET /" + path + " HTTP/1.1\r\nHost: " + hostport + "\r\nUser-Agent: hello-healthcheck\r\nConnection: close\r\n\r\n"
	_, err = io.WriteString(conn, req)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) { // the connection carries ctx's deadline
			err = context.DeadlineExceeded
		}
		return 0, "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, resp.Status, nil
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
