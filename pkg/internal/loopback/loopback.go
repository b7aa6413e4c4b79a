// Package loopback finds free ports on 127.0.0.1 and waits for the servers
// the tests start there to answer.
package loopback

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// FreePorts asks the kernel for n distinct free TCP ports on 127.0.0.1. They
// are released before the caller's process binds them, a small race that a
// retry of the whole test covers; a listener cannot be handed across exec.
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("loopback: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreePort is FreePorts(1).
func FreePort() (int, error) {
	p, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

type waitOptions struct {
	client   *http.Client
	bearer   string
	abort    func() error
	interval time.Duration
}

// WaitOption configures WaitHTTP.
type WaitOption func(*waitOptions)

// WithClient sends the requests with c (for example one that trusts a
// test CA) instead of a plain client with a 2-second timeout.
func WithClient(c *http.Client) WaitOption { return func(o *waitOptions) { o.client = c } }

// WithBearer sends "Authorization: Bearer token".
func WithBearer(token string) WaitOption { return func(o *waitOptions) { o.bearer = token } }

// WithAbort stops the wait as soon as abort returns an error, typically
// because the server's process has exited and will never answer.
func WithAbort(abort func() error) WaitOption { return func(o *waitOptions) { o.abort = abort } }

// WaitHTTP polls url with GET until it answers 200 OK, ctx ends or the
// abort check fails. The error says what the last attempt got.
func WaitHTTP(ctx context.Context, url string, opts ...WaitOption) error {
	o := waitOptions{client: &http.Client{Timeout: 2 * time.Second}, interval: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	last := "no attempt"
	for {
		if o.abort != nil {
			if err := o.abort(); err != nil {
				return fmt.Errorf("loopback: gave up waiting for %s (last: %s): %w", url, last, err)
			}
		}
		status, err := get(ctx, o, url)
		if err == nil && status == "" {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = status
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loopback: %s never answered 200 (last: %s): %w", url, last, ctx.Err())
		case <-time.After(o.interval):
		}
	}
}

// get returns "" for 200 OK, else the status and the start of the body.
func get(ctx context.Context, o waitOptions, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if o.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+o.bearer)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		return "", nil
	}
	return fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body)), nil
}
