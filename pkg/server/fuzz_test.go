package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequest feeds arbitrary paths, methods and header values through the
// whole handler: it must never panic out, never answer with a status the
// service does not use, and never leak a stack trace.
func FuzzRequest(f *testing.F) {
	for _, seed := range []struct{ method, path, header string }{
		{"GET", "/hello", ""},
		{"HEAD", "/hello", "req-1"},
		{"GET", "/healthz", ""},
		{"GET", "/metrics", "x"},
		{"POST", "/hello", ""},
		{"GET", "/%2e%2e/etc/passwd", ""},
		{"GET", "/hello/../hello", "\x00\r\n"},
		{"OPTIONS", "*", ""},
		{"GET", "/" + strings.Repeat("a/", 200), strings.Repeat("z", 300)},
	} {
		f.Add(seed.method, seed.path, seed.header)
	}
	s, _ := newTestServer(f)
	f.Fuzz(func(t *testing.T, method, path, header string) {
		u, err := url.ParseRequestURI(path)
		if err != nil || !validMethod(method) {
			return // net/http rejects these before any handler runs
		}
		req := &http.Request{Method: method, URL: u, RequestURI: path, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "example.test"}
		req.Header.Set("X-Request-ID", header)
		req.Header.Set("User-Agent", header)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)

		switch rec.Code {
		case 200, 404, 405, 503:
		default:
			t.Fatalf("%s %q: unexpected status %d", method, path, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "goroutine ") {
			t.Fatalf("%s %q: response leaks a stack trace", method, path)
		}
		if method == "GET" && u.Path == "/hello" && (rec.Code != 200 || rec.Body.String() != "Hello!") {
			t.Fatalf("GET /hello = %d %q", rec.Code, rec.Body.String())
		}
		if id := rec.Header().Get("X-Request-ID"); len(id) != 26 || id == header {
			t.Fatalf("response X-Request-ID %q is not the service's own", id)
		}
	})
}

// validMethod is net/http's rule: a method is a non-empty token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c > 0x7e || c <= 0x20 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}
