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
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
		defer cancel()
		err = getHealthz(ctx, loopback(cfg.Addr))
	}
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	return nil
}

// getHealthz sends GET /healthz on a connection of its own and wants 200.
// It dials and writes the request itself rather than use http.Client: the
// client's Transport (with its HTTP/2 half) adds 491 KB to the binary the
// image ships, for one request to loopback that needs no proxy, no
// redirects and no kept connection.
func getHealthz(ctx context.Context, hostport string) error {
	url := "http://" + hostport + "/healthz"
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Without the deadline a stuck server would hang the probe itself.
	deadline, _ := ctx.Deadline()
	err = conn.SetDeadline(deadline)
	if err == nil {
		_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+hostport+"\r\nUser-Agent: hello-healthcheck\r\nConnection: close\r\n\r\n")
	}
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) { // the connection carries ctx's deadline
		err = context.DeadlineExceeded
	}
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
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
