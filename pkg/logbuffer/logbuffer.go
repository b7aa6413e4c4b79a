// Package logbuffer batches log lines on their way to stdout.
//
// An access log costs one write system call per request when written
// straight through, which on a busy server is a large share of the work
// of answering GET /hello. A Writer writes straight through while traffic
// is light, so a line shows up at once, and batches lines for up to one
// interval while it is heavy.
package logbuffer

import (
	"io"
	"sync"
	"time"
)

// Writer batches writes to an underlying writer. It is safe for
// concurrent use. Each Write should be one whole log line, as slog's
// handlers write them.
type Writer struct {
	out      io.Writer
	interval time.Duration
	limit    int

	mu        sync.Mutex
	buf       []byte
	lastWrite time.Time // of a write to out
	timer     *time.Timer
	err       error // the first error from out, reported by every later call
	closed    bool
}

// Option configures a Writer.
type Option func(*Writer)

// WithInterval sets how long a line may wait in the buffer (default 100ms).
func WithInterval(d time.Duration) Option { return func(w *Writer) { w.interval = d } }

// WithLimit sets how many buffered bytes trigger a write at once (default 64 KiB).
func WithLimit(n int) Option { return func(w *Writer) { w.limit = n } }

// New returns a Writer that writes to out. Call Close before exit so the
// last lines are not lost.
func New(out io.Writer, opts ...Option) *Writer {
	w := &Writer{out: out, interval: 100 * time.Millisecond, limit: 64 << 10}
	for _, o := range opts {
		o(w)
	}
	w.buf = make([]byte, 0, w.limit)
	return w
}

// Write takes one line. It writes through if nothing was written within
// the last interval, and buffers otherwise.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, io.ErrClosedPipe
	}
	now := time.Now()
	if len(w.buf) == 0 && now.Sub(w.lastWrite) >= w.interval {
		w.lastWrite = now
		n, err := w.out.Write(p)
		w.err = err
		return n, err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= w.limit {
		return len(p), w.flushLocked()
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(w.interval, w.timerFlush)
	}
	return len(p), nil
}

func (w *Writer) timerFlush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = nil
	w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	w.lastWrite = time.Now()
	_, w.err = w.out.Write(w.buf)
	w.buf = w.buf[:0]
	return w.err
}

// Flush writes out whatever is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

// Close flushes and makes later writes fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.closed = true
	return w.flushLocked()
}
