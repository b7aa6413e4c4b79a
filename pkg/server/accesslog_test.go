package server

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A hostile method or path must not make a log line of its size.
func TestAccessLogBoundsFieldLengths(t *testing.T) {
	s, logs := newTestServer(t)
	method := strings.Repeat("M", 5000)
	path := "/" + strings.Repeat("p", 30<<10)
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))

	line := logs.String()
	if len(line) > 2048 {
		t.Errorf("a %d-byte method and %d-byte path made a %d-byte log line", len(method), len(path), len(line))
	}
	var got struct{ Method, Path string }
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("not one JSON line: %v\n%.300s", err, line)
	}
	if !strings.HasPrefix(got.Method, "MMMM") || !strings.HasSuffix(got.Method, "(5000 bytes)") {
		t.Errorf("method = %q, want its start and its length", got.Method)
	}
	if !strings.HasPrefix(got.Path, "/ppp") || !strings.HasSuffix(got.Path, "(30721 bytes)") {
		t.Errorf("path = %.40q…, want its start and its length", got.Path)
	}
}

func TestBoundedCutsAtARuneBoundary(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"GET", 32, "GET"},
		{"abcdef", 4, "abcd…(6 bytes)"},
		{"aé", 2, "a…(3 bytes)"}, // é is 2 bytes: never half of it
		{"ééé", 4, "éé…(6 bytes)"},
	} {
		if got := bounded(tt.in, tt.n); got != tt.want {
			t.Errorf("bounded(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// net/http sends no body for HEAD but tells the handler it wrote it all;
// the access log must log what went out.
func TestAccessLogHEADLogsNoBodyBytes(t *testing.T) {
	s, logs := newTestServer(t)
	ts := httptest.NewServer(s)
	defer ts.Close()
	for _, tt := range []struct {
		method string
		bytes  int
	}{{"HEAD", 0}, {"GET", 6}} {
		logs.Reset()
		req, _ := http.NewRequest(tt.method, ts.URL+"/hello", nil)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var line struct{ Bytes *int }
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Bytes == nil {
			t.Fatalf("%s: no access log line with bytes: %v\n%s", tt.method, err, logs)
		}
		if *line.Bytes != tt.bytes || len(body) != tt.bytes {
			t.Errorf("%s /hello: logged bytes %d, client got %d, want %d", tt.method, *line.Bytes, len(body), tt.bytes)
		}
	}
}

// What net/http turns away before routing leaves no access log line; it
// must at least be counted.
func TestRequestsRejectedBeforeRoutingAreCounted(t *testing.T) {
	s, logs := newTestServer(t)
	hs := &http.Server{
		Handler:           s,
		ConnContext:       s.ConnContext,
		ConnState:         s.ConnState,
		MaxHeaderBytes:    1024,
		ReadHeaderTimeout: 300 * time.Millisecond,
		ErrorLog:          nil,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
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
	// A good request on a kept-alive connection is not counted.
	resp, err := http.Get("http://" + addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	want := []string{
		"http_requests_rejected_before_routing_total 5",
		"http_connections_closed_without_request_total 1",
	}
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body = rec.Body.String()
		if strings.Contains(body, want[0]) && strings.Contains(body, want[1]) {
			break
		}
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			i := strings.Index(body, w[:strings.LastIndexByte(w, ' ')])
			t.Errorf("/metrics lacks %q; has %.80q", w, body[max(i, 0):])
		}
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("want one access log line (the good request), got %d:\n%s", n, logs)
	}
}
