package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
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
		if resp, err := http.ReadResponse(sendRaw(t, in.addr, raw), nil); err != nil || resp.StatusCode < 400 {
			t.Fatalf("%q: %v %v, want net/http to reject it", raw, resp, err)
		}
	}
	const want = "http_requests_rejected_before_routing_total 2"
	waitFor(t, "/metrics shows "+want, func() bool {
		_, body := get(t, "http://"+in.addr+"/metrics")
		return strings.Contains(body, want)
	})
}

// /metrics passes promtool's lint (promlint) in both layouts, with the
// service's own families (connections, dropped log lines) registered.
func TestMetricsPassPromlintInBothLayouts(t *testing.T) {
	for _, env := range []map[string]string{nil, {"METRICS_ADDR": freeAddr(t)}} {
		in := start(t, env)
		get(t, "http://"+in.addr+"/hello")
		addr := in.addr
		if env != nil {
			addr = env["METRICS_ADDR"]
		}
		_, body := get(t, "http://"+addr+"/metrics")
		for _, family := range []string{"log_lines_dropped_total", "http_connections_open", "http_connections_evicted_total",
			"http_connections_refused_total", "http_requests_rejected_before_routing_total", "http_connections_closed_without_request_total"} {
			if !strings.Contains(body, "\n# HELP "+family+" ") {
				t.Errorf("METRICS_ADDR=%q: /metrics has no %s with its HELP", env["METRICS_ADDR"], family)
			}
		}
		problems, err := promlint.New(strings.NewReader(body)).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("METRICS_ADDR=%q: promlint: %s: %s", env["METRICS_ADDR"], p.Metric, p.Text)
		}
	}
}

// pprof is served on the metrics port when asked for, and never on the
// service port.
func TestPprofOnlyOnTheMetricsPortAndOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		metricsAddr := freeAddr(t)
		env := map[string]string{"METRICS_ADDR": metricsAddr}
		if on {
			env["PPROF"] = "true"
		}
		in := start(t, env)
		for _, tt := range []struct {
			addr   string
			status int
		}{{in.addr, 404}, {metricsAddr, map[bool]int{false: 404, true: 200}[on]}} {
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
				if resp, _ := get(t, "http://"+tt.addr+path); resp.StatusCode != tt.status {
					t.Errorf("PPROF=%v: GET %s%s = %d, want %d", on, tt.addr, path, resp.StatusCode, tt.status)
				}
			}
		}
	}
}
