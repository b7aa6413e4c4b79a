// Package logbuffer carries log lines to stdout without ever making the
// request path wait for it.
//
// Write only appends a line to a buffer; one goroutine writes the buffer
// out. While traffic is light a line goes out at once; under load, lines
// are batched for up to one interval, one write system call for many
// lines, where writing straight through would cost one per request. When
// the sink is slower than the lines arrive (a stalled log driver, a full
// disk, a pipe nobody reads), the buffer fills up to its limit and further
// lines are dropped and counted, so serving goes on; once the sink has
// caught up, the drop report hears how many lines were lost.
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
	// flushAt is a batch worth writing before its interval is over.
	flushAt = 64 << 10
	// limit bounds the memory a stalled sink can take (twice this: the
	// batch stuck in the sink and a full buffer): lines beyond it are
	// dropped.
	limit = 256 << 10
	// closeWait bounds how long Close waits for a sink that does not
	// drain, so that a stalled stdout cannot keep the process from exiting.
	closeWait = 500 * time.Millisecond
)

// Writer batches writes to an underlying writer. It is safe for
// concurrent use. Each Write should be one whole log line, as slog's
// handlers write them.
type Writer struct {
	out      io.Writer
	interval time.Duration
	report   func(dropped uint64)

	mu     sync.Mutex
	buf    []byte
	closed bool

	dropped atomic.Uint64
	first   chan struct{} // a line arrived in an empty buffer
	full    chan struct{} // the batch reached flushAt, or Close
	done    chan struct{} // the writing goroutine has returned
}

// Option configures a Writer.
type Option func(*Writer)

// WithInterval sets how long a line may wait in the buffer (default 100ms).
func WithInterval(d time.Duration) Option { return func(w *Writer) { w.interval = d } }

// WithDropReport sets a function called with the number of lines dropped,
// once the sink has caught up after dropping some. It runs on the writing
// goroutine and may log through the Writer.
func WithDropReport(f func(dropped uint64)) Option { return func(w *Writer) { w.report = f } }

// New returns a Writer that writes to out. Call Close before exit so the
// last lines are not lost.
func New(out io.Writer, opts ...Option) *Writer {
	w := &Writer{
		out: out, interval: 100 * time.Millisecond,
		first: make(chan struct{}, 1), full: make(chan struct{}, 1), done: make(chan struct{}),
	}
	for _, o := range opts {
		o(w)
	}
	go w.loop()
	return w
}

// Write takes one line and never waits for the sink: when the buffer is
// full the line is dropped and counted. It fails only after Close.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	if len(w.buf)+len(p) > limit {
		w.mu.Unlock()
		w.dropped.Add(1)
		return len(p), nil
	}
	wasEmpty := len(w.buf) == 0
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= flushAt
	w.mu.Unlock()
	if wasEmpty {
		signal(w.first)
	}
	if full {
		signal(w.full)
	}
	return len(p), nil
}

// Dropped is the number of lines dropped so far because the sink was
// slower than the lines arrived or failed.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (w *Writer) loop() {
	defer close(w.done)
	var last time.Time
	var spare []byte
	var reported uint64 // w.dropped as of the last report
	for {
		w.mu.Lock()
		idle := len(w.buf) == 0 && !w.closed
		w.mu.Unlock()
		if idle {
			select {
			case <-w.first:
			case <-w.full:
			}
		}
		// Lines that come within an interval of the last write wait for
		// the rest of it, so that a busy server writes many per call.
		if d := w.interval - time.Since(last); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-w.full:
			}
			t.Stop()
		}
		select {
		case <-w.first: // this batch's, stale now
		default:
		}

		w.mu.Lock()
		batch := w.buf
		w.buf = spare[:0]
		closed := w.closed
		w.mu.Unlock()
		if len(batch) > 0 {
			if _, err := w.out.Write(batch); err != nil {
				w.dropped.Add(uint64(bytes.Count(batch, []byte("\n"))))
			}
			last = time.Now()
		}
		spare = batch

		w.mu.Lock()
		// Caught up: what is left is less than half the limit.
		caughtUp := len(w.buf) < limit/2
		empty := len(w.buf) == 0
		w.mu.Unlock()
		var n uint64
		if caughtUp {
			d := w.dropped.Load()
			n, reported = d-reported, d
		}
		if n > 0 && w.report != nil && !closed {
			w.report(n)
		}
		if closed && empty {
			return
		}
	}
}

// Close writes out what is buffered and makes later writes fail. It waits
// at most half a second for a sink that does not drain; the lines still
// buffered then are lost, and Close says so.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	signal(w.full)
	select {
	case <-w.done:
		return nil
	case <-time.After(closeWait):
		return errors.New("log sink did not take the last lines within " + closeWait.String())
	}
}
