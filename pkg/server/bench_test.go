package server

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
)

// discardWriter is the cheapest ResponseWriter there is, so the benchmark
// counts the allocations of the handler stack and not of a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchmarkHandler(b *testing.B, h http.Handler) {
	req, err := http.NewRequest("GET", "/hello", nil)
	if err != nil {
		b.Fatal(err)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkHello is GET /hello through every middleware, with the JSON
// access log written (to io.Discard) as cmd/hello writes it.
func BenchmarkHello(b *testing.B) {
	s := New(WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	s.SetReady(true)
	benchmarkHandler(b, s)
}

// BenchmarkBareHello is the same answer from a bare net/http handler, the
// floor the full stack is compared with.
func BenchmarkBareHello(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		io.WriteString(w, "Hello!")
	})
	benchmarkHandler(b, mux)
}

// BenchmarkMetrics is one /metrics scrape through the whole stack, the
// cost a scraper adds every interval.
func BenchmarkMetrics(b *testing.B) {
	s := New(WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	req, err := http.NewRequest("GET", "/metrics", nil)
	if err != nil {
		b.Fatal(err)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, req)
	}
}
