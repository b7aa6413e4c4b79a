package logbuffer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder counts the writes that reach it; while blocked is open, every
// write waits for it to close, as a write to a pipe nobody reads does.
type recorder struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	err     error
	blocked chan struct{}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.blocked != nil {
		<-r.blocked
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.writes++
	return r.buf.Write(p)
}

func (r *recorder) state() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String(), r.writes
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

func TestLightTrafficWritesThrough(t *testing.T) {
	const interval = time.Second
	var r recorder
	w := New(&r, WithInterval(interval))
	defer w.Close()
	for i := range 2 {
		fmt.Fprintf(w, "line %d\n", i)
		t0 := time.Now()
		waitFor(t, "line written", func() bool { got, _ := r.state(); return strings.Contains(got, fmt.Sprintf("line %d\n", i)) })
		if d := time.Since(t0); d > interval/2 {
			t.Errorf("line %d held back %s on an idle writer", i, d)
		}
		time.Sleep(interval + 100*time.Millisecond)
	}
}

func TestHeavyTrafficIsBatched(t *testing.T) {
	var r recorder
	w := New(&r, WithInterval(500*time.Millisecond))
	defer w.Close()
	io.WriteString(w, "first\n")
	waitFor(t, "first line written", func() bool { _, n := r.state(); return n == 1 })
	for i := range 1000 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	waitFor(t, "1000 lines written", func() bool { got, _ := r.state(); return strings.Count(got, "\n") == 1001 })
	if _, writes := r.state(); writes != 2 {
		t.Errorf("1000 lines after the first took %d writes, want 1", writes-1)
	}
}

func TestFullBatchGoesBeforeTheInterval(t *testing.T) {
	var r recorder
	w := New(&r, WithInterval(time.Hour))
	defer w.Close()
	io.WriteString(w, "first\n")
	waitFor(t, "first line written", func() bool { _, n := r.state(); return n == 1 })
	line := strings.Repeat("x", 1023) + "\n"
	for range flushAt / len(line) {
		io.WriteString(w, line)
	}
	waitFor(t, "a full batch written within the hour", func() bool { _, n := r.state(); return n == 2 })
}

func TestCloseFlushesAndRefusesMore(t *testing.T) {
	var r recorder
	w := New(&r, WithInterval(time.Hour))
	io.WriteString(w, "a\n")
	io.WriteString(w, "b\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.state(); got != "a\nb\n" {
		t.Errorf("after Close: %q", got)
	}
	if _, err := io.WriteString(w, "c\n"); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// A sink that takes nothing (stdout a pipe nobody reads) never holds up a
// Write: lines beyond the buffer are dropped and counted, one report says
// how many once the sink drains, and Close gives up in bounded time.
func TestStalledSinkNeverBlocksWrites(t *testing.T) {
	r := recorder{blocked: make(chan struct{})}
	var reports []uint64
	var mu sync.Mutex
	w := New(&r, WithInterval(time.Millisecond), WithDropReport(func(n uint64) {
		mu.Lock()
		reports = append(reports, n)
		mu.Unlock()
	}))
	line := strings.Repeat("x", 199) + "\n"
	const lines = 3 * limit / 200
	t0 := time.Now()
	for range lines {
		if _, err := io.WriteString(w, line); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d lines of 200 bytes into a stalled sink in %s, %d dropped", lines, time.Since(t0), w.Dropped())
	// What is kept is the batch stuck in the sink plus a full buffer.
	if kept := lines - w.Dropped(); kept > 2*limit/200 {
		t.Errorf("%d of %d lines kept: more than two buffers of %d bytes", kept, lines, limit)
	}

	close(r.blocked) // the sink drains
	waitFor(t, "drop report", func() bool { mu.Lock(); defer mu.Unlock(); return len(reports) > 0 })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	if len(reports) != 1 || reports[0] != w.Dropped() {
		t.Errorf("reports %v, want one with all %d dropped lines", reports, w.Dropped())
	}
	mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := r.state()
	if n := uint64(strings.Count(got, "\n")); n+w.Dropped() != lines {
		t.Errorf("%d written + %d dropped != %d lines", n, w.Dropped(), lines)
	}
}

func TestCloseGivesUpOnAStalledSink(t *testing.T) {
	r := recorder{blocked: make(chan struct{})}
	defer close(r.blocked)
	w := New(&r)
	io.WriteString(w, "a\n")
	io.WriteString(w, "b\n")
	t0 := time.Now()
	if err := w.Close(); err == nil {
		t.Error("Close = nil with the last lines never written")
	}
	if d := time.Since(t0); d > 2*closeWait {
		t.Errorf("Close took %s", d)
	}
}

func TestFailedWritesAreCountedAsDropped(t *testing.T) {
	r := recorder{err: errors.New("disk full")}
	w := New(&r, WithInterval(time.Hour))
	io.WriteString(w, "a\n")
	io.WriteString(w, "b\n")
	w.Close()
	if w.Dropped() != 2 {
		t.Errorf("Dropped = %d after 2 failed lines", w.Dropped())
	}
}

// Run with -race.
func TestConcurrentLinesStayWhole(t *testing.T) {
	var r recorder
	w := New(&r, WithInterval(time.Millisecond))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(w, "goroutine %d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	w.Close()
	got, _ := r.state()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 4000 {
		t.Fatalf("%d lines, want 4000", len(lines))
	}
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l, "goroutine %d line %d", &g, &i); err != nil {
			t.Fatalf("torn line %q", l)
		}
	}
}
