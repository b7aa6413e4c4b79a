package server

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kobuilt/hello/pkg/version"
)

func newTestServer(t testing.TB, opts ...Option) (*Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	s := New(append([]Option{WithLogger(slog.New(slog.NewJSONHandler(&logs, nil)))}, opts...)...)
	s.SetReady(true)
	return s, &logs
}

func TestRoutes(t *testing.T) {
	s, _ := newTestServer(t, WithVersion(version.Info{Version: "v1.2.3", Commit: "abc", GoVersion: "go1.26"}))
	tests := []struct {
		method, path string
		body         string
		wantStatus   int
		wantType     string
		wantBody     string // exact when set
		wantContains string
	}{
		{"GET", "/hello", "", 200, "text/plain; charset=UTF-8", "Hello!", ""},
		{"HEAD", "/hello", "", 200, "text/plain; charset=UTF-8", "", ""},
		{"HEAD", "/healthz", "", 200, "application/json", "", ""},
		{"HEAD", "/version", "", 200, "application/json", "", ""},
		{"GET", "/healthz", "", 200, "application/json", `{"status":"ok"}` + "\n", ""},
		{"GET", "/readyz", "", 200, "application/json", `{"status":"ready"}` + "\n", ""},
		{"GET", "/version", "", 200, "application/json", "", `"version":"v1.2.3","commit":"abc"`},
		{"GET", "/metrics", "", 200, "text/plain; version=0.0.4; charset=utf-8; escaping=underscores", "", "go_goroutines"},
		{"GET", "/nope", "", 404, "application/json", `{"message":"Not Found"}` + "\n", ""},
		{"GET", "/hello/", "", 404, "application/json", `{"message":"Not Found"}` + "\n", ""},
		{"POST", "/hello", "x", 405, "application/json", `{"message":"Method Not Allowed"}` + "\n", ""},
		{"DELETE", "/healthz", "", 405, "application/json", `{"message":"Method Not Allowed"}` + "\n", ""},
		{"BREW", "/hello", "", 405, "application/json", `{"message":"Method Not Allowed"}` + "\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if tt.method == "HEAD" {
				// The recorder keeps what the handler writes; net/http
				// drops it for HEAD. What counts is what goes on the wire.
				if got := headBody(t, s, tt.path); got != "" {
					t.Errorf("HEAD sent a body: %q", got)
				}
			} else if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body.String(), tt.wantBody)
			}
			if tt.wantContains != "" && !strings.Contains(rec.Body.String(), tt.wantContains) {
				t.Errorf("body does not contain %q:\n%s", tt.wantContains, rec.Body.String())
			}
			for k, v := range securityHeaders {
				if got := rec.Header().Get(k); got != v[0] {
					t.Errorf("%s = %q, want %q", k, got, v[0])
				}
			}
			if rec.Header().Get(echo.HeaderXRequestID) == "" {
				t.Error("no X-Request-ID on the response")
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	s, _ := newTestServer(t)
	for _, ready := range []bool{false, true, false} {
		s.SetReady(ready)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		want := http.StatusServiceUnavailable
		if ready {
			want = http.StatusOK
		}
		if rec.Code != want {
			t.Errorf("ready=%v: /readyz = %d, want %d", ready, rec.Code, want)
		}
	}
}

// The request ID is always the service's own, random and unique; an
// incoming X-Request-ID that is an ID at all is logged beside it, as
// client_request_id, and nothing else a client sends reaches the log.
func TestRequestID(t *testing.T) {
	s, logs := newTestServer(t)
	lookalike := rand.Text()
	tests := []struct {
		name, incoming, logged string
	}{
		{"absent", "", ""},
		{"a UUID is logged as the client's", "3f2b8c1e-9d4a-4e7b-8a6c-1f0e2d3c4b5a", "3f2b8c1e-9d4a-4e7b-8a6c-1f0e2d3c4b5a"},
		{"a lookalike of the service's own is the client's too", lookalike, lookalike},
		{"too long", strings.Repeat("a", 65), ""},
		{"a space", "a b", ""},
		{"a quote that would end the field", `a"b`, ""},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			req := httptest.NewRequest("GET", "/hello", nil)
			if tt.incoming != "" {
				req.Header.Set(echo.HeaderXRequestID, tt.incoming)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			got := rec.Header().Get(echo.HeaderXRequestID)
			if len(got) != 26 || strings.Trim(got, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" || got == tt.incoming || seen[got] {
				t.Errorf("X-Request-ID = %q, want a fresh 26-character ID of the service's own", got)
			}
			seen[got] = true
			var line struct {
				RequestID       string  `json:"request_id"`
				ClientRequestID *string `json:"client_request_id"`
			}
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			if line.RequestID != got {
				t.Errorf("logged request_id %q, want the response's %q", line.RequestID, got)
			}
			switch {
			case tt.logged == "" && line.ClientRequestID != nil:
				t.Errorf("logged client_request_id %q, want none", *line.ClientRequestID)
			case tt.logged != "" && (line.ClientRequestID == nil || *line.ClientRequestID != tt.logged):
				t.Errorf("logged client_request_id %v, want %q", line.ClientRequestID, tt.logged)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	s, logs := newTestServer(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	if logs.Len() != 0 {
		t.Errorf("probe and metrics requests were logged:\n%s", logs)
	}

	// Each field, as a person and a log query read it: the peer from the
	// connection, never from X-Forwarded-For; the latency in milliseconds;
	// the User-Agent cut to 256 bytes with its length.
	req := httptest.NewRequest("GET", "/hello?x=1", nil)
	req.RemoteAddr = "198.51.100.7:50123"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("User-Agent", "curl/8.5.0 "+strings.Repeat("x", 300))
	s.ServeHTTP(httptest.NewRecorder(), req)
	var line struct {
		Time       time.Time `json:"time"`
		Level      string    `json:"level"`
		Msg        string    `json:"msg"`
		RequestID  string    `json:"request_id"`
		RemoteAddr string    `json:"remote_addr"`
		Method     string    `json:"method"`
		Path       string    `json:"path"`
		Status     int       `json:"status"`
		LatencyMS  *float64  `json:"latency_ms"`
		Bytes      *int64    `json:"bytes"`
		UserAgent  string    `json:"user_agent"`
	}
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("access log is not one JSON line: %v\n%s", err, logs)
	}
	for _, c := range []struct {
		field string
		ok    bool
	}{
		{"time", !line.Time.IsZero()},
		{"level", line.Level == "INFO"},
		{"msg", line.Msg == "request"},
		{"request_id", len(line.RequestID) == 26},
		{"remote_addr", line.RemoteAddr == "198.51.100.7:50123"},
		{"method", line.Method == "GET"},
		{"path", line.Path == "/hello"},
		{"status", line.Status == 200},
		// A request through the whole stack takes microseconds: more than
		// nothing, far less than a second.
		{"latency_ms", line.LatencyMS != nil && *line.LatencyMS > 0 && *line.LatencyMS < 1000},
		{"bytes", line.Bytes != nil && *line.Bytes == 6},
		{"user_agent", line.UserAgent == "curl/8.5.0 "+strings.Repeat("x", 245)+"…(311 bytes)"},
	} {
		if !c.ok {
			t.Errorf("access log field %s is wrong or missing: %s", c.field, logs)
		}
	}
}

func TestPanicIsA500AndTheNextRequestIsServed(t *testing.T) {
	s, logs := newTestServer(t)
	s.echo.GET("/boom", func(echo.Context) error { panic("secret internal detail") })

	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if body := rec.Body.String(); body != `{"message":"Internal Server Error"}`+"\n" {
		t.Errorf("body = %q: a panic must not leak to the client", body)
	}
	if !strings.Contains(logs.String(), "panic recovered") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("the panic and its stack were not logged:\n%s", logs)
	}

	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/hello", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "Hello!" {
		t.Errorf("after a panic: %d %q", rec.Code, rec.Body.String())
	}
}

// TestAbortHandlerPanicReachesNetHTTP: panic(http.ErrAbortHandler) is how
// a handler tells net/http to drop the response; recovering it would send
// a 500 instead.
func TestAbortHandlerPanicReachesNetHTTP(t *testing.T) {
	s, logs := newTestServer(t)
	s.echo.GET("/abort", func(echo.Context) error { panic(http.ErrAbortHandler) })
	defer func() {
		if err, _ := recover().(error); !errors.Is(err, http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler", err)
		}
		if strings.Contains(logs.String(), "panic recovered") {
			t.Errorf("an aborted response was logged as a panic:\n%s", logs)
		}
	}()
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/abort", nil))
}

func TestBodyLimit(t *testing.T) {
	s, _ := newTestServer(t, WithBodyLimit(1024))
	for _, tt := range []struct {
		size int
		want int
	}{{1024, http.StatusMethodNotAllowed}, {1025, http.StatusRequestEntityTooLarge}, {2 << 20, http.StatusRequestEntityTooLarge}} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/hello", bytes.NewReader(make([]byte, tt.size))))
		if rec.Code != tt.want {
			t.Errorf("%d-byte body: status = %d, want %d", tt.size, rec.Code, tt.want)
		}
	}
}

// TestBodyLimitStopsReadingABodyOfUnknownLength: a chunked body declares no
// length, so only reading it can find it too large.
func TestBodyLimitStopsReadingABodyOfUnknownLength(t *testing.T) {
	s, _ := newTestServer(t, WithBodyLimit(1024))
	var read int
	s.echo.POST("/echo", func(c echo.Context) error {
		b, err := io.ReadAll(c.Request().Body)
		read = len(b)
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, "ok")
	})
	for _, tt := range []struct {
		size, want int
	}{{1024, http.StatusOK}, {1025, http.StatusRequestEntityTooLarge}, {1 << 20, http.StatusRequestEntityTooLarge}} {
		req := httptest.NewRequest("POST", "/echo", io.MultiReader(bytes.NewReader(make([]byte, tt.size))))
		req.ContentLength = -1 // unknown, as with Transfer-Encoding: chunked
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != tt.want || read > 1024 {
			t.Errorf("%d-byte body of unknown length: status = %d, want %d; handler read %d bytes", tt.size, rec.Code, tt.want, read)
		}
	}
}

// A handler waiting on its request's context is released by the request
// timeout with a 503; in a synctest bubble a context without a deadline
// would be reported as a deadlock.
func TestRequestTimeoutBoundsTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newTestServer(t, WithRequestTimeout(50*time.Millisecond))
		s.echo.GET("/slow", func(c echo.Context) error {
			<-c.Request().Context().Done()
			return c.Request().Context().Err()
		})
		start := time.Now()
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("status = %d, want 503 when the request context times out", rec.Code)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Errorf("the handler was released after %s, want the 50ms timeout", d)
		}
	})
}

func TestMetricsCountByRouteAndStatus(t *testing.T) {
	s, _ := newTestServer(t)
	for _, p := range []string{"/hello", "/hello", "/nope-1", "/nope-2"} {
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("PURGE", "/hello", nil))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`http_requests_total{code="200",method="GET",route="/hello"} 2`,
		`http_requests_total{code="404",method="GET",route="unmatched"} 2`,
		`http_requests_total{code="405",method="OTHER",route="/hello"} 1`,
		`http_request_duration_seconds_bucket{code="200",method="GET",route="/hello",le="+Inf"} 2`,
		`http_request_duration_seconds_count{code="404",method="GET",route="unmatched"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestSeparateMetricsMovesMetricsAndVersionOffTheMainHandler(t *testing.T) {
	for _, separate := range []bool{false, true} {
		s, _ := newTestServer(t, WithSeparateMetrics(separate))
		onMain := http.StatusOK
		if separate {
			onMain = http.StatusNotFound
		}
		for _, tt := range []struct {
			h    http.Handler
			name string
			path string
			want int
		}{
			{s, "main", "/hello", 200},
			{s, "main", "/metrics", onMain},
			{s, "main", "/version", onMain},
			{s.MetricsHandler(), "metrics", "/metrics", 200},
			{s.MetricsHandler(), "metrics", "/version", 200},
			{s.MetricsHandler(), "metrics", "/hello", 404},
		} {
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.want {
				t.Errorf("separate=%v: %s handler %s = %d, want %d", separate, tt.name, tt.path, rec.Code, tt.want)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("separate=%v: %s handler %s has no security headers", separate, tt.name, tt.path)
			}
		}
	}
}

// headBody sends HEAD path and then GET /healthz on one connection to a
// real server, and returns whatever came between the HEAD response's
// headers and the GET's status line: a body sent for HEAD would be there.
func headBody(t *testing.T, s *Server, path string) string {
	t.Helper()
	ts := httptest.NewServer(s)
	defer ts.Close()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "HEAD "+path+" HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	if _, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead}); err != nil {
		t.Fatalf("HEAD %s: %v", path, err)
	}
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("after HEAD %s: %v", path, err)
	}
	return strings.TrimSuffix(line, "HTTP/1.1 200 OK\r\n")
}
