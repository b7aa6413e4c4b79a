package connlimit

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve starts an http.Server capped at limit connections; /slow holds its
// request until release is closed.
func serve(t *testing.T, limit int, release chan struct{}) (string, *Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-release })
	l := New(ln, limit)
	srv := &http.Server{Handler: mux, ConnState: l.ConnState}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), l
}

// send writes GET /fast on a new connection and returns it with the
// response, or the error.
func send(t *testing.T, addr string) (net.Conn, *http.Response, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	return c, resp, err
}

func TestAtTheCapTheLongestIdleConnectionMakesRoom(t *testing.T) {
	addr, l := serve(t, 2, nil)
	oldest, _, err := send(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	// net/http marks it idle after writing the response the client read.
	waitFor(t, "the first connection idle", func() bool { return l.Stats().Waiting == 1 })
	if _, _, err := send(t, addr); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := send(t, addr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("third connection at a cap of 2: %v", err)
	}
	oldest.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := oldest.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("the longest-idle connection was not closed: read %v", err)
	}
	if s := l.Stats(); s.Evicted != 1 || s.Refused != 0 || s.Open != 2 {
		t.Errorf("evicted %d, refused %d, open %d; want 1, 0, 2", s.Evicted, s.Refused, s.Open)
	}
}

func TestAtTheCapWithEveryConnectionBusyTheNewOneIsRefused(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr, l := serve(t, 2, release)
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	waitFor(t, "the two slow requests started", func() bool { s := l.Stats(); return s.Open == 2 && s.Waiting == 0 })
	if _, _, err := send(t, addr); err == nil {
		t.Error("a third connection was served with two busy at a cap of 2")
	}
	if s := l.Stats(); s.Refused != 1 || s.Evicted != 0 {
		t.Errorf("refused %d, evicted %d; want 1, 0", s.Refused, s.Evicted)
	}
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// What net/http turns away before routing leaves no access log line; it
// must at least be counted.
func TestRequestsRejectedBeforeRoutingAreCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, 100)
	var handled atomic.Int64
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			Served(r.Context())
			handled.Add(1)
			if r.Method == http.MethodPost {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
			io.WriteString(w, "Hello!")
		}),
		ConnContext:       l.ConnContext,
		ConnState:         l.ConnState,
		MaxHeaderBytes:    1024,
		ReadHeaderTimeout: 300 * time.Millisecond,
	}
	go hs.Serve(l)
	defer hs.Close()
	addr := ln.Addr().String()

	// TLS on the plain port: a real ClientHello, which crypto/tls writes
	// in one piece.
	client, capture := net.Pipe()
	go tls.Client(client, &tls.Config{ServerName: "x"}).Handshake()
	capture.SetReadDeadline(time.Now().Add(5 * time.Second))
	clientHello := make([]byte, 16<<10)
	n, err := capture.Read(clientHello)
	if err != nil {
		t.Fatalf("capturing a ClientHello: %v", err)
	}
	client.Close()
	capture.Close()

	rejected := []struct {
		name, raw string
		status    int // 0: no response, the connection is just closed
	}{
		{"malformed request line", "HELLO\r\n\r\n", 400},
		{"unsupported version", "GET /hello HTTP/9.9\r\nHost: x\r\n\r\n", 505},
		{"oversized headers", "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", 431},
		{"TLS handshake on the plain port", string(clientHello[:n]), 400},
		{"headers cut by the header timeout", "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: a", 0},
	}
	for _, tt := range rejected {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, tt.raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		switch {
		case tt.status == 0 && err == nil:
			t.Errorf("%s: got %s, want the connection closed", tt.name, resp.Status)
		case tt.status != 0 && (err != nil || resp.StatusCode != tt.status):
			t.Errorf("%s: got %v %v, want %d", tt.name, resp, err, tt.status)
		}
		c.Close()
	}
	// Connected, sent nothing, hung up: counted apart, port scans and TCP
	// health checks do this.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Good requests are not counted, whether their connection is closed
	// after the response (Connection: close: active, then closed, as a
	// rejected one) or kept alive and closed later.
	for _, close := range []bool{true, false} {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: close}}
		resp, err := client.Get("http://" + addr + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		client.CloseIdleConnections()
	}
	// ...and neither is a request the handler answers with an error.
	resp, err := http.Post("http://"+addr+"/hello", "text/plain", strings.NewReader(strings.Repeat("x", 2048)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()

	// Every connection closed: the counts are final.
	waitFor(t, "every connection closed", func() bool { return l.Stats().Open == 0 })
	if s := l.Stats(); s.Rejected != 5 || s.WithoutRequest != 1 {
		t.Errorf("rejected %d, closed without a request %d; want 5 and 1", s.Rejected, s.WithoutRequest)
	}
	if n := handled.Load(); n != 3 {
		t.Errorf("%d requests handled, want 3", n)
	}
}
