package jsonlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"
)

// both logs the same call through slog.JSONHandler and through Handler and
// fails the test if the bytes differ.
func both(t *testing.T, opts *slog.HandlerOptions, log func(slog.Handler)) string {
	t.Helper()
	var want, got bytes.Buffer
	log(slog.NewJSONHandler(&want, opts))
	log(New(&got, opts))
	if got.String() != want.String() {
		t.Fatalf("Handler wrote\n%q\nslog.JSONHandler wrote\n%q", got.String(), want.String())
	}
	return got.String()
}

var when = time.Date(2026, 11, 27, 15, 4, 5, 123456789, time.FixedZone("CET", 3600))

// at logs one record, the same for both handlers.
func at(msg string, level slog.Level, attrs ...slog.Attr) func(slog.Handler) {
	return record(slog.NewRecord(when, level, msg, 0), attrs...)
}

func record(r slog.Record, attrs ...slog.Attr) func(slog.Handler) {
	r.AddAttrs(attrs...)
	return func(h slog.Handler) {
		if h.Enabled(context.Background(), r.Level) {
			_ = h.Handle(context.Background(), r.Clone())
		}
	}
}

func callerPC() uintptr {
	var pcs [1]uintptr
	runtime.Callers(2, pcs[:])
	return pcs[0]
}

func TestSameBytesAsSlogJSONHandler(t *testing.T) {
	tests := []struct {
		name string
		log  func(slog.Handler)
		opts *slog.HandlerOptions
	}{
		{"access log line", at("request", slog.LevelInfo,
			slog.String("request_id", "0123456789abcdef-1f"), slog.String("method", "GET"),
			slog.String("path", "/hello"), slog.Int("status", 200),
			slog.Duration("latency", 51234*time.Nanosecond), slog.Int64("bytes", 6)), nil},
		{"escapes", at("quote \" backslash \\ newline \n tab \t cr \r nul \x00 del \x7f", slog.LevelError,
			slog.String("k\"ey", "line\u2028sep\u2029para"), slog.String("bad utf8", "a\xffb\xc3"),
			slog.String("html", "<a href='x'>&amp;</a>"), slog.String("unicode", "héllo, 世界 🙂")), nil},
		{"kinds", at("kinds", slog.LevelDebug-3,
			slog.Bool("yes", true), slog.Bool("no", false), slog.Uint64("big", 1<<63+5),
			slog.Int64("neg", -42), slog.Duration("d", -time.Hour),
			slog.Time("t", time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC))), &slog.HandlerOptions{Level: slog.LevelDebug - 3}},
		{"zero time is left out", record(slog.NewRecord(time.Time{}, slog.LevelWarn+1, "no time", 0)), nil},
		{"time with a monotonic reading", record(slog.NewRecord(time.Now(), slog.LevelInfo, "now", 0)), nil},
		// What Handler hands to slog.JSONHandler:
		{"float", at("f", slog.LevelInfo, slog.Float64("f", 1e21), slog.Float64("g", 0.000001)), nil},
		{"any and error", at("a", slog.LevelInfo, slog.Any("m", map[string]int{"a": 1}), slog.Any("err", errors.New("boom"))), nil},
		{"group", at("g", slog.LevelInfo, slog.Group("req", slog.String("method", "GET"), slog.Int("n", 1))), nil},
		{"empty key", at("e", slog.LevelInfo, slog.Attr{}, slog.String("", "x"), slog.Group("", slog.Int("inlined", 1))), nil},
		// slog writes an error in place of the value, which is not JSON.
		{"year out of range", at("y", slog.LevelInfo, slog.Time("t", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))), nil},
		{"with attrs and group", func(h slog.Handler) {
			at("msg", slog.LevelInfo, slog.Int("k", 1))(h.WithAttrs([]slog.Attr{slog.String("service", "hello")}).WithGroup("g"))
		}, nil},
		{"replace attr", at("r", slog.LevelInfo, slog.String("secret", "x")), &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == "secret" || a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}},
		{"add source", record(slog.NewRecord(when, slog.LevelInfo, "src", callerPC())), &slog.HandlerOptions{AddSource: true}},
		{"below the level", at("dropped", slog.LevelInfo), &slog.HandlerOptions{Level: slog.LevelWarn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := both(t, tt.opts, tt.log)
			if out != "" && !json.Valid([]byte(out)) && tt.name != "year out of range" {
				t.Errorf("not valid JSON: %q", out)
			}
		})
	}
}

func TestEnabledFollowsTheLevel(t *testing.T) {
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	h := New(io.Discard, &slog.HandlerOptions{Level: &level})
	if h.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("info enabled at warn")
	}
	level.Set(slog.LevelInfo)
	if !h.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("info not enabled at info")
	}
	if New(io.Discard, nil).Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug enabled by default")
	}
}

// TestSlogHandlerContract runs the standard library's handler test suite.
func TestSlogHandlerContract(t *testing.T) {
	var buf bytes.Buffer
	err := slogtest.TestHandler(New(&buf, nil), func() []map[string]any {
		var ms []map[string]any
		for line := range bytes.Lines(buf.Bytes()) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			ms = append(ms, m)
		}
		return ms
	})
	if err != nil {
		t.Error(err)
	}
}

// lineChecker fails on a write that is not exactly one whole JSON line,
// and on two writes at once, which a writer need not survive.
type lineChecker struct {
	t      *testing.T
	inside sync.Mutex
	lines  int
}

func (w *lineChecker) Write(p []byte) (int, error) {
	if !w.inside.TryLock() {
		w.t.Error("two writes at once")
		return len(p), nil
	}
	defer w.inside.Unlock()
	if bytes.Count(p, []byte("\n")) != 1 || !json.Valid(p) {
		w.t.Errorf("write is not one JSON line: %q", p)
	}
	w.lines++
	return len(p), nil
}

// TestConcurrentWritesOfBothPathsDoNotOverlap logs from many goroutines
// through the fast path and through slog.JSONHandler's (a group), which
// must take turns on the one writer.
func TestConcurrentWritesOfBothPathsDoNotOverlap(t *testing.T) {
	w := &lineChecker{t: t}
	l := slog.New(New(w, nil))
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if (g+i)%2 == 0 {
					l.Info("fast", "i", i, "s", strings.Repeat("x", i))
				} else {
					l.Info("slow", slog.Group("g", "i", i))
				}
			}
		})
	}
	wg.Wait()
	if w.lines != goroutines*each {
		t.Errorf("%d lines written, want %d", w.lines, goroutines*each)
	}
}

// FuzzSameBytesAsSlogJSONHandler feeds arbitrary strings and numbers
// through both handlers.
func FuzzSameBytesAsSlogJSONHandler(f *testing.F) {
	f.Add("request", "path", "/hello", int64(200), uint64(6), int64(51234), true, int64(1795792519123456789))
	f.Add("\x00\"\\\n", "k\u2028", "\xff\xfe\xc3(", int64(-1), uint64(1<<64-1), int64(-1), false, int64(-62135596800))
	f.Fuzz(func(t *testing.T, msg, key, val string, i int64, u uint64, d int64, ok bool, unixNano int64) {
		if key == "" {
			key = "k"
		}
		when := time.Unix(0, unixNano).UTC()
		both(t, nil, at(msg, slog.LevelInfo, slog.String(key, val), slog.Int64("i", i),
			slog.Uint64("u", u), slog.Duration("d", time.Duration(d)), slog.Bool("ok", ok), slog.Time("t", when)))
	})
}

func BenchmarkAccessLine(b *testing.B) {
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{{"jsonlog", New(io.Discard, nil)}, {"slog.JSONHandler", slog.NewJSONHandler(io.Discard, nil)}} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
				r.AddAttrs(slog.String("request_id", "0123456789abcdef-1f"), slog.String("method", "GET"),
					slog.String("path", "/hello"), slog.Int("status", 200),
					slog.Duration("latency", 51234*time.Nanosecond), slog.Int64("bytes", 6))
				_ = h.h.Handle(ctx, r)
			}
		})
	}
}
