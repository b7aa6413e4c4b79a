package server

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape serves /metrics after one GET /hello and a metric of the
// program's own, and returns the page.
func scrape(t *testing.T) string {
	t.Helper()
	s, _ := newTestServer(t)
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/hello", nil))
	widgets := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "widgets_total", Help: "Widgets made."}, []string{"kind"})
	s.Metrics().MustRegister(widgets)
	widgets.WithLabelValues("blue").Add(3)

	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, "text/plain; version=0.0.4; charset=utf-8") {
		t.Errorf("Content-Type = %q, want the Prometheus text format 0.0.4", got)
	}
	return rec.Body.String()
}

// TestMetricsExposition parses /metrics with Prometheus's own text parser,
// the least forgiving reader of the format: every family must parse, the
// request histogram must be a histogram with the standard buckets, and the
// Go runtime and process families dashboards use must be there.
func TestMetricsExposition(t *testing.T) {
	body := scrape(t)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("Prometheus cannot parse /metrics: %v\n%s", err, body)
	}
	for name, typ := range map[string]dto.MetricType{
		"http_requests_total":           dto.MetricType_COUNTER,
		"http_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"widgets_total":                 dto.MetricType_COUNTER,
		"go_goroutines":                 dto.MetricType_GAUGE,
		"go_memstats_heap_alloc_bytes":  dto.MetricType_GAUGE,
		"go_gc_duration_seconds":        dto.MetricType_SUMMARY,
		"go_info":                       dto.MetricType_GAUGE,
		"go_sched_gomaxprocs_threads":   dto.MetricType_GAUGE,
		"go_gc_gogc_percent":            dto.MetricType_GAUGE,
		"go_gc_gomemlimit_bytes":        dto.MetricType_GAUGE,
		"process_cpu_seconds_total":     dto.MetricType_COUNTER,
		"process_resident_memory_bytes": dto.MetricType_GAUGE,
		"process_start_time_seconds":    dto.MetricType_GAUGE,
		"process_open_fds":              dto.MetricType_GAUGE,
		"process_max_fds":               dto.MetricType_GAUGE,
		"process_virtual_memory_bytes":  dto.MetricType_GAUGE,
	} {
		f, ok := families[name]
		if !ok {
			t.Errorf("/metrics has no %s", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
		}
	}

	h := families["http_request_duration_seconds"]
	if h == nil || len(h.Metric) != 1 {
		t.Fatalf("want one http_request_duration_seconds series, got %v", h)
	}
	m := h.Metric[0]
	labels := map[string]string{}
	for _, l := range m.Label {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["route"] != "/hello" || labels["method"] != "GET" || labels["code"] != "200" || len(labels) != 3 {
		t.Errorf("labels = %v, want route, method and code only", labels)
	}
	var bounds []float64
	for _, b := range m.Histogram.Bucket {
		bounds = append(bounds, b.GetUpperBound())
	}
	// The latency SLI in config/monitoring/prometheus/rules.yml reads the
	// le="0.1" bucket.
	if !slices.Contains(bounds, 0.1) {
		t.Errorf("buckets %v, want one at 0.1 for the latency SLI", bounds)
	}
	if m.Histogram.GetSampleCount() != 1 {
		t.Errorf("histogram count = %d, want 1", m.Histogram.GetSampleCount())
	}
	if v := families["widgets_total"].Metric[0].Counter.GetValue(); v != 3 {
		t.Errorf("widgets_total = %v, want 3 (a metric registered through Metrics())", v)
	}
}

// TestMetricsPassPromlint runs the rules of `promtool check metrics`
// (promlint): a HELP text on every family, units and suffixes as the
// naming conventions ask.
func TestMetricsPassPromlint(t *testing.T) {
	problems, err := promlint.New(strings.NewReader(scrape(t))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
