package main

import (
	"errors"
	"io"
	"net/http"
	"testing"
)

// Bytes after the framing net/http used must never be served as a request
// of their own: a proxy in front that frames the request otherwise would
// have passed them on unseen (request smuggling). Each raw request below
// carries a second request, GET /version, where net/http stops reading;
// the service answers the first and closes the connection.
func TestFramingEdgeCasesCloseTheConnection(t *testing.T) {
	in := start(t, nil)
	const smuggled = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name, raw string
		status    int
	}{
		{"Content-Length and Transfer-Encoding both (RFC 9112 section 6.1)",
			"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 405},
		{"HTTP/1.0 keep-alive with Transfer-Encoding, which net/http ignores there",
			"GET /hello HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggled, 200},
		{"chunked alone",
			"POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := sendRaw(t, in.addr, tt.raw)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tt.status || !resp.Close {
				t.Errorf("got %d, Connection: close %v; want %d and the connection closed", resp.StatusCode, resp.Close, tt.status)
			}
			if second, err := http.ReadResponse(br, nil); err == nil {
				t.Errorf("the bytes after the body were served as a request: %s", second.Status)
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("after the response: %v, want the connection closed", err)
			}
		})
	}

	// Keep-alive stays where the framing is plain: no body, or a
	// Content-Length alone, which every proxy reads the same way.
	br := sendRaw(t, in.addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nPOST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, want := range []int{200, 405, 200} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != want || resp.Close {
			t.Fatalf("keep-alive request %d: %v %v, want %d and the connection kept", i+1, resp, err, want)
		}
		io.Copy(io.Discard, resp.Body)
	}
}

// OPTIONS * goes through the service like any request: security headers,
// a request ID and an access log line, not a silent answer from net/http.
func TestOptionsStarIsLoggedLikeAnyRequest(t *testing.T) {
	in := start(t, nil)
	resp, err := http.ReadResponse(sendRaw(t, in.addr, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Request-Id")
	if id == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("OPTIONS * = %s without the service's headers: %v", resp.Status, resp.Header)
	}
	waitForLog(t, in.stdout, `"request_id":"`+id+`"`)
	waitForLog(t, in.stdout, `"method":"OPTIONS","path":"*","status":404`)
}
