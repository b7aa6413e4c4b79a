// Package logbuffer carries log lines to stdout without ever making the
// request path wait for it.
//
// Why a service needs this at all: stdout is a pipe to the container
// runtime's log driver, and when that stalls (a full disk, a log shipper
// that fell behind, a node under I/O pressure) every write to it blocks. A
// handler that writes its access log line would block with it, /hello and
// the probes would stop answering, and the kubelet would restart a Pod that
// was healthy but for its logs. Docker's `--log-opt mode=non-blocking` makes
// the same choice inside the runtime: a bounded buffer, and lines dropped
// when it is full. Here the lines dropped are also counted (Dropped, for
// log_lines_dropped_total) and, once stdout has caught up, reported in one
// line of their own.
package logbuffer

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// queued is how many lines wait for a slow sink before more are
	// dropped: about 256 KB of access log lines.
	queued = 1024
	// closeWait bounds how long Close waits for a sink that does not
	// drain, so that a stalled stdout cannot keep the process from exiting.
	closeWait = 500 * time.Millisecond
)

// Writer queues whole lines for one goroutine that writes them out. It is
// safe for concurrent use; each Write should be one log line, as slog's
// handlers write them.
type Writer struct {
	out    io.Writer
	report func(dropped uint64)

	mu     sync.RWMutex // Close holds it to close lines; Write to send on it
	closed bool
	lines  chan []byte

	dropped atomic.Uint64
	done    chan struct{} // the writing goroutine has returned
}

// New returns a Writer that writes to out. report, if not nil, is called
// with the number of lines dropped once the sink has caught up after
// dropping some; it runs on the writing goroutine and may log through the
// Writer. Call Close before exit so the last lines are not lost.
func New(out io.Writer, report func(dropped uint64)) *Writer {
	w := &Writer{out: out, report: report, lines: make(chan []byte, queued), done: make(chan struct{})}
	go w.loop()
	return w
}

// Write queues a copy of p and never waits for the sink: when the queue is
// full the line is dropped and counted. It fails only after Close.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return 0, io.ErrClosedPipe
	}
	select {
	case w.lines <- bytes.Clone(p):
	default:
		w.dropped.Add(1)
	}
	return len(p), nil
}

// Dropped is the number of lines dropped so far because the sink was
// slower than the lines arrived, or failed.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

func (w *Writer) loop() {
	defer close(w.done)
	var reported uint64 // w.dropped as of the last report
	for line := range w.lines {
		if _, err := w.out.Write(line); err != nil {
			w.dropped.Add(1)
		}
		if len(w.lines) > 0 || w.report == nil {
			continue
		}
		// Caught up: say how many were lost since the last report.
		if d := w.dropped.Load(); d > reported {
			w.report(d - reported)
			reported = d
		}
	}
}

// Close writes out every line queued before it and makes later writes
// fail. It waits at most half a second for a sink that does not drain; the
// lines still queued then are lost, and Close says so.
func (w *Writer) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.lines)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-time.After(closeWait):
		return errors.New("log sink did not take the last lines within " + closeWait.String())
	}
}
