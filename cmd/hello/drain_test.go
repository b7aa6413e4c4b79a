package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Clients that come straight to the port (docker run, no load balancer in
// front) lose nothing across SIGTERM: each reconnects whenever a response
// says Connection: close, as the drain asks, and stops once a connection
// is refused. Every request written on a connection the server accepted
// must get a whole response. Raw clients send GET and never retry;
// http.Client sends POST, which it never retries either.
func TestSIGTERMReconnectingClientsLoseNothing(t *testing.T) {
	for run := range 3 {
		p := startBinary(t, "DRAIN_DELAY=1s", "SHUTDOWN_TIMEOUT=5s")
		var sent, answered, refused atomic.Int64
		var mu sync.Mutex
		var lost []string
		lose := func(format string, a ...any) {
			mu.Lock()
			lost = append(lost, fmt.Sprintf(format, a...))
			mu.Unlock()
		}
		var wg sync.WaitGroup
		for c := range 16 {
			wg.Go(func() {
				for {
					conn, err := net.Dial("tcp", p.addr)
					if err != nil {
						refused.Add(1) // never sent: a client would go elsewhere
						return
					}
					if !rawRequests(conn, c, &sent, &answered, lose) {
						return
					}
				}
			})
		}
		for c := range 8 {
			wg.Go(func() {
				client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
				defer client.CloseIdleConnections()
				for {
					sent.Add(1)
					resp, err := client.Post("http://"+p.addr+"/hello", "text/plain", strings.NewReader("hi"))
					var opErr *net.OpError
					if errors.As(err, &opErr) && opErr.Op == "dial" {
						sent.Add(-1)
						refused.Add(1)
						return
					}
					if err != nil {
						lose("POST client %d: %v", c, err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusMethodNotAllowed {
						lose("POST client %d: status %d", c, resp.StatusCode)
						return
					}
					answered.Add(1)
				}
			})
		}
		waitFor(t, "load running", func() bool { return answered.Load() > 2000 })
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code := p.waitExit(t, 15*time.Second)
		wg.Wait()
		t.Logf("run %d: %d requests sent, %d answered, %d lost; %d clients stopped by a refused connection",
			run+1, sent.Load(), answered.Load(), len(lost), refused.Load())
		for _, l := range lost {
			t.Errorf("run %d: lost: %s", run+1, l)
		}
		if len(lost) > 0 {
			t.Logf("stdout: %s", p.stdout)
		}
		if code != 0 {
			t.Errorf("run %d: exit code %d, stderr: %s", run+1, code, p.stderr)
		}
	}
}

// rawRequests sends GET /hello on conn until a response says
// Connection: close, and reports whether the client should reconnect. A
// request written without a whole response back is lost.
func rawRequests(conn net.Conn, client int, sent, answered *atomic.Int64, lose func(string, ...any)) bool {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		sent.Add(1)
		if _, err := io.WriteString(conn, "GET /hello HTTP/1.1\r\nHost: hello\r\n\r\n"); err != nil {
			lose("raw client %d: write: %v", client, err)
			return false
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			lose("raw client %d: %v", client, err)
			return false
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || string(body) != "Hello!" {
			lose("raw client %d: %d %q %v", client, resp.StatusCode, body, err)
			return false
		}
		answered.Add(1)
		if resp.Close {
			return true
		}
	}
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}
