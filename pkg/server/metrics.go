package server

import (
	"bytes"
	"maps"
	"net/http"
	runtimemetrics "runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics are github.com/VictoriaMetrics/metrics rather than
// github.com/prometheus/client_golang: the same Prometheus text exposition
// (histograms with _bucket{le="..."}, Go runtime and process metrics) for
// about 3 MB less binary, no protobuf, and a scrape that costs a fraction of
// the CPU. docs/performance.md has the measurements and what a user gives up.
//
// To add a metric of your own, create it in the server's set:
//
//	dropped := srv.Metrics().NewCounter(`log_lines_dropped_total`)
//	dropped.Inc()
//
// or pass your own set with WithMetrics. Names carry their labels, e.g.
// `jobs_total{queue="mail"}`; a name ending in _total is exposed as a counter.

func init() {
	// # TYPE lines, so Prometheus records each family's type (the # HELP
	// lines this library writes carry only the name).
	metrics.ExposeMetadata(true)
}

// processStart is when the process started, give or take its
// initialisation, for process_start_time_seconds.
var processStart = time.Now()

// durationBuckets are the upper bounds of http_request_duration_seconds.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

type requestMetrics struct {
	set *metrics.Set

	// Building a series name and finding it in the set costs a string and a
	// map lookup under the set's lock; the set of series is small and fixed
	// (routes × methods × codes), so resolve each once. Requests read the
	// map without a lock (a read lock's shared counter costs more than the
	// lookup on two busy cores); a new series copies it.
	mu     sync.Mutex // held to add a series
	series atomic.Pointer[map[seriesKey]seriesMetrics]
}

type seriesKey struct {
	route, method string
	code          int
}

type seriesMetrics struct {
	requests *metrics.Counter
	duration *metrics.PrometheusHistogram
}

func newRequestMetrics(set *metrics.Set) *requestMetrics {
	m := &requestMetrics{set: set}
	m.series.Store(&map[seriesKey]seriesMetrics{})
	return m
}

func (m *requestMetrics) observe(route, method string, code int, elapsed time.Duration) {
	k := seriesKey{route, normalMethod(method), code}
	s, ok := (*m.series.Load())[k]
	if !ok {
		s = m.add(k)
	}
	s.requests.Inc()
	s.duration.Update(elapsed.Seconds())
}

func (m *requestMetrics) add(k seriesKey) seriesMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if s, ok := old[k]; ok {
		return s // another request added it first
	}
	// Labels in the order client_golang wrote them (sorted), so recording
	// rules that match on the raw series text keep working.
	labels := `{code="` + strconv.Itoa(k.code) + `",method="` + k.method + `",route=` + strconv.Quote(k.route) + `}`
	s := seriesMetrics{
		requests: m.set.GetOrCreateCounter("http_requests_total" + labels),
		duration: m.set.GetOrCreatePrometheusHistogramExt("http_request_duration_seconds"+labels, durationBuckets),
	}
	series := maps.Clone(old)
	series[k] = s
	m.series.Store(&series)
	return s
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
// The page is built in memory first so that it goes out in one write with
// a Content-Length, not as a few hundred small chunked writes.
func metricsHandler(set *metrics.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.Grow(16 << 10)
		set.WritePrometheus(&b)
		metrics.WriteGoMetrics(&b)
		writeGoCollectorCompat(&b)
		writeProcessMetrics(&b)
		h := w.Header()
		h.Set("Content-Type", metricsContentType)
		h.Set("Content-Length", strconv.Itoa(b.Len()))
		_, _ = b.WriteTo(w) // the client has gone; nothing to tell it
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

func writeGoCollectorCompat(w *bytes.Buffer) {
	var samples [3]runtimemetrics.Sample
	for i, m := range goCollectorCompat {
		samples[i].Name = m.runtime
	}
	runtimemetrics.Read(samples[:])
	for i, m := range goCollectorCompat {
		if samples[i].Value.Kind() == runtimemetrics.KindUint64 {
			metrics.WriteGaugeUint64(w, m.name, samples[i].Value.Uint64())
		}
	}
}
