// Package jsonlog is a slog.Handler that writes exactly the lines
// slog.JSONHandler writes, for less CPU on the lines a service writes most.
//
// A busy service writes one access log line per request, and
// slog.JSONHandler spends a microsecond or two on each: a pooled handle
// state, ReplaceAttr and group checks for every attribute, and a second
// lock around the write. Handler encodes a record whose attributes are all
// strings, integers, booleans, durations or times straight into a pooled
// buffer and writes it under one lock; anything else (groups, WithAttrs,
// WithGroup, ReplaceAttr, AddSource, floats, arbitrary values) goes to a
// slog.JSONHandler that shares the writer and the lock, so the output is
// the same byte for byte either way.
package jsonlog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Handler is a slog.Handler writing JSON lines. It is safe for concurrent
// use.
type Handler struct {
	w     *lockedWriter
	level slog.Leveler
	slow  *slog.JSONHandler // same writer, same lock
	fast  bool              // no options that only slow handles
}

// New returns a Handler that writes to w with the given options, as
// slog.NewJSONHandler(w, opts) would.
func New(w io.Writer, opts *slog.HandlerOptions) *Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	lw := &lockedWriter{w: w}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{
		w:     lw,
		level: level,
		slow:  slog.NewJSONHandler(lw, opts),
		fast:  opts.ReplaceAttr == nil && !opts.AddSource,
	}
}

// Enabled reports whether records at level are written.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// WithAttrs returns slog.JSONHandler's handler: records with fixed
// attributes take its path.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.slow.WithAttrs(attrs) }

// WithGroup returns slog.JSONHandler's handler, as WithAttrs does.
func (h *Handler) WithGroup(name string) slog.Handler { return h.slow.WithGroup(name) }

// Handle writes r as one JSON line.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.fast {
		return h.slow.Handle(ctx, r)
	}
	bp := buffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooled {
			buffers.Put(bp)
		}
	}()
	b, ok := appendRecord((*bp)[:0], r)
	*bp = b
	if !ok {
		return h.slow.Handle(ctx, r)
	}
	_, err := h.w.Write(b)
	return err
}

// maxPooled keeps a rare huge line from pinning its buffer in the pool.
const maxPooled = 16 << 10

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendRecord appends r as slog.JSONHandler writes it, or reports false
// if r holds something only slog.JSONHandler writes right: a time it
// cannot format, an attribute with an empty key (dropped, or a group
// inlined), or a value other than a string, integer, bool, duration or time.
func appendRecord(b []byte, r slog.Record) ([]byte, bool) {
	b = append(b, '{')
	if !r.Time.IsZero() {
		var ok bool
		b = append(b, `"time":`...)
		if b, ok = appendTime(b, r.Time); !ok {
			return b, false
		}
		b = append(b, ',')
	}
	b = append(b, `"level":`...)
	b = appendString(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b = appendString(b, r.Message)
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "" {
			ok = false
			return false
		}
		b = append(b, ',')
		b = appendString(b, a.Key)
		b = append(b, ':')
		b, ok = appendValue(b, a.Value)
		return ok
	})
	return append(b, "}\n"...), ok
}

func appendValue(b []byte, v slog.Value) ([]byte, bool) {
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10), true
	case slog.KindTime:
		return appendTime(b, v.Time())
	}
	return b, false
}

// appendTime appends t as RFC 3339 with nanoseconds, in its own zone, or
// reports false for a year that has no four-digit form (slog writes an
// error there).
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y >= 10000 {
		return b, false
	}
	b = append(b, '"')
	b = t.Round(0).AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// appendString appends s as a JSON string, escaped as slog.JSONHandler
// escapes it: quotes, backslashes and control characters, U+2028 and
// U+2029, and each byte of invalid UTF-8 as invalidUTF8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, invalidUTF8...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hex = "0123456789abcdef"

// lockedWriter serialises the writes of both paths, since the writer
// need not be safe for concurrent use.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
