package server

import (
	"net/http"
	runtimemetrics "runtime/metrics"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics are github.com/VictoriaMetrics/metrics rather than
// github.com/prometheus/client_golang: the same Prometheus text exposition
// (histograms with _bucket{le="..."}, Go runtime and process metrics) for
// about 3 MB less binary and no protobuf. docs/performance.md has the
// measurements and what a user gives up.
//
// To add a metric of your own, create it in the server's set:
//
//	jobs := srv.Metrics().NewCounter(`jobs_total{queue="mail"}`)
//	jobs.Inc()
//
// A name ending in _total is exposed as a counter.

func init() {
	// # TYPE lines, so Prometheus records each family's type (the # HELP
	// lines this library writes carry only the name).
	metrics.ExposeMetadata(true)
}

// durationBuckets are the upper bounds of http_request_duration_seconds.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// observe counts a request and its duration by route, method and status.
func (s *Server) observe(route, method string, code int, elapsed time.Duration) {
	// Labels sorted, as client_golang wrote them, so recording rules that
	// match on the raw series text keep working.
	labels := `{code="` + strconv.Itoa(code) + `",method="` + normalMethod(method) + `",route=` + strconv.Quote(route) + `}`
	s.metricsSet.GetOrCreateCounter("http_requests_total" + labels).Inc()
	s.metricsSet.GetOrCreatePrometheusHistogramExt("http_request_duration_seconds"+labels, durationBuckets).Update(elapsed.Seconds())
}

// normalMethod keeps made-up methods from creating series.
func normalMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// metricsContentType is the Prometheus text exposition format, version
// 0.0.4, which every Prometheus-compatible scraper reads.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// metricsHandler writes the set, then the Go runtime and process metrics.
func metricsHandler(set *metrics.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", metricsContentType)
		set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
		metrics.WriteFDMetrics(w)
		writeGoCollectorCompat(w)
	})
}

// goCollectorCompat are the Go runtime series client_golang's Go collector
// exposes under names the library does not use (it has go_gomaxprocs and
// go_memlimit_bytes), kept so dashboards built on them keep working.
var goCollectorCompat = []struct{ runtime, name string }{
	{"/sched/gomaxprocs:threads", "go_sched_gomaxprocs_threads"},
	{"/gc/gogc:percent", "go_gc_gogc_percent"},
	{"/gc/gomemlimit:bytes", "go_gc_gomemlimit_bytes"},
}

func writeGoCollectorCompat(w http.ResponseWriter) {
	samples := make([]runtimemetrics.Sample, len(goCollectorCompat))
	for i, m := range goCollectorCompat {
		samples[i].Name = m.runtime
	}
	runtimemetrics.Read(samples)
	for i, m := range goCollectorCompat {
		if samples[i].Value.Kind() == runtimemetrics.KindUint64 {
			metrics.WriteGaugeUint64(w, m.name, samples[i].Value.Uint64())
		}
	}
}
