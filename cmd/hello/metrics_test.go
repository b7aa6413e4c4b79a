package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// With METRICS_ADDR set, /metrics and /version leave the service port, so
// whoever reaches the Service cannot read them.
func TestMetricsAddrTakesMetricsAndVersionOffTheServicePort(t *testing.T) {
	metricsAddr := freeAddr(t)
	in := start(t, map[string]string{"METRICS_ADDR": metricsAddr})
	get(t, "http://"+in.addr+"/hello")
	for _, tt := range []struct {
		addr, path string
		status     int
		want       string
	}{
		{in.addr, "/metrics", 404, ""},
		{in.addr, "/version", 404, ""},
		{in.addr, "/hello", 200, "Hello!"},
		{metricsAddr, "/metrics", 200, `http_requests_total{code="200",method="GET",route="/hello"} 2`},
		{metricsAddr, "/version", 200, `"goVersion":"go1.`},
		{metricsAddr, "/hello", 404, ""},
	} {
		resp, body := get(t, "http://"+tt.addr+tt.path)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s%s = %d %.80q, want %d with %q", tt.addr, tt.path, resp.StatusCode, body, tt.status, tt.want)
		}
	}
}

func TestMetricsAddrMustDifferFromTheServiceAddress(t *testing.T) {
	addr := freeAddr(t)
	err := run(context.Background(), []string{"hello", "--addr", addr, "--metrics-addr", addr}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "must differ") {
		t.Fatalf("run = %v, want an error saying the addresses must differ", err)
	}
}

// Requests net/http answers by itself never reach the access log; they
// must show in /metrics.
func TestRequestsRejectedBeforeRoutingShowInMetrics(t *testing.T) {
	in := start(t, nil)
	for _, raw := range []string{"HELLO\r\n\r\n", "GET /hello HTTP/9.9\r\nHost: x\r\n\r\n"} {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, raw)
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode < 400 {
			t.Fatalf("%q: %v %v, want net/http to reject it", raw, resp, err)
		}
		c.Close()
	}
	const want = "http_requests_rejected_before_routing_total 2"
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, body = get(t, "http://"+in.addr+"/metrics"); strings.Contains(body, want) {
			return
		}
	}
	t.Errorf("/metrics lacks %q", want)
}
