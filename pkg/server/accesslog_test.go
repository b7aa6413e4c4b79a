package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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

// The logged path is the one routing used, as it came on the wire:
// /hel%6co was not routed as /hello, and a long run of bytes that are not
// UTF-8 keeps its start and its length.
func TestAccessLogPathIsTheRoutedPath(t *testing.T) {
	s, logs := newTestServer(t)
	invalid := "/" + strings.Repeat("%80", 1100) + "/etc/passwd"
	for _, tt := range []struct {
		target, want string
		status       int
	}{
		{"/hel%6co", "/hel%6co", 404},
		{"/hello%2f", "/hello%2f", 404},
		{"/hello", "/hello", 200},
		{invalid, invalid[:maxLoggedPath] + "…(3312 bytes)", 404},
	} {
		logs.Reset()
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", tt.target, nil))
		var line struct {
			Path   string
			Status int
		}
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
			t.Fatalf("%.40s: %v", tt.target, err)
		}
		if line.Path != tt.want || line.Status != tt.status || rec.Code != tt.status {
			t.Errorf("GET %.40s: logged %.60q with %d (answered %d), want %.60q with %d", tt.target, line.Path, line.Status, rec.Code, tt.want, tt.status)
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
