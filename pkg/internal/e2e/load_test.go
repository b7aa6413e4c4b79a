package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// load sends GET /hello to addr from raw TCP clients that never retry, so
// every lost request shows: net/http's client would resend an idempotent
// request whose keep-alive connection the server closed, hiding the loss.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	fresh  tally // a new connection per request
	keep   tally // one connection reused until the server closes it
}

type tally struct {
	sent, ok, failed atomic.Int64
	mu               sync.Mutex
	errs             []string // the first few failures
}

func (t *tally) fail(format string, args ...any) {
	t.failed.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errs) < 5 {
		t.errs = append(t.errs, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
	}
}

func (t *tally) String() string {
	return fmt.Sprintf("sent %d, ok %d, failed %d", t.sent.Load(), t.ok.Load(), t.failed.Load())
}

// startLoad runs workers of each kind, each sending one request every
// interval, until stop.
func startLoad(addr string, workers int, interval time.Duration) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for range workers {
		l.wg.Add(2)
		go func() { defer l.wg.Done(); l.runFresh(ctx, addr, interval) }()
		go func() { defer l.wg.Done(); l.runKeepAlive(ctx, addr, interval) }()
	}
	return l
}

// stop ends the load and waits for the requests in flight.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *load) runFresh(ctx context.Context, addr string, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for ctx.Err() == nil {
		l.fresh.sent.Add(1)
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			l.fresh.fail("dial: %v", err)
		} else {
			_, err := roundTrip(conn, "Connection: close\r\n")
			conn.Close()
			if err != nil {
				l.fresh.fail("%v", err)
			} else {
				l.fresh.ok.Add(1)
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func (l *load) runKeepAlive(ctx context.Context, addr string, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for ctx.Err() == nil {
		l.keep.sent.Add(1)
		if conn == nil {
			var err error
			if conn, err = net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
				l.keep.fail("dial: %v", err)
				conn = nil
			}
		}
		if conn != nil {
			closing, err := roundTrip(conn, "")
			switch {
			case err != nil:
				// Not resent: a lost request stays lost.
				l.keep.fail("reused connection: %v", err)
				conn.Close()
				conn = nil
			case closing:
				// The server said so in the response (draining): the
				// request succeeded, the next one opens a new connection.
				l.keep.ok.Add(1)
				conn.Close()
				conn = nil
			default:
				l.keep.ok.Add(1)
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// roundTrip writes one GET /hello on conn and reads the response, which
// must be 200 "Hello!". closing reports whether the server will close conn.
func roundTrip(conn net.Conn, extraHeaders string) (closing bool, err error) {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /hello HTTP/1.1\r\nHost: hello\r\nUser-Agent: e2e-raw-tcp\r\n"+extraHeaders+"\r\n"); err != nil {
		return false, fmt.Errorf("write: %w", err)
	}
	// A fresh reader per request is safe: the server sends nothing
	// unasked, and the body is read to its end.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return false, fmt.Errorf("read response: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "Hello!" {
		return resp.Close, fmt.Errorf("got %s %q", resp.Status, body)
	}
	return resp.Close, nil
}
