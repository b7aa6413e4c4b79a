package logbuffer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder keeps what reaches it; while blocked is open, every write waits
// for it to close, as a write to a pipe nobody reads does.
type recorder struct {
	mu      sync.Mutex
	buf     bytes.Buffer
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
	return r.buf.Write(p)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

func TestCloseWritesEveryLineAndRefusesMore(t *testing.T) {
	var r recorder
	w := New(&r, nil)
	var want strings.Builder
	for i := range queued {
		fmt.Fprintf(w, "line %d\n", i)
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r.String(); got != want.String() {
		t.Errorf("after Close: %d bytes, want the %d lines written before it in order (%d bytes)", len(got), queued, want.Len())
	}
	if _, err := io.WriteString(w, "late\n"); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A sink that takes nothing (stdout a pipe nobody reads) never holds up a
// Write: lines beyond the queue are dropped and counted, and one report
// says how many once the sink drains. In a synctest bubble a Write that
// blocked would be reported as a deadlock.
func TestStalledSinkNeverBlocksWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := recorder{blocked: make(chan struct{})}
		var reports []uint64
		w := New(&r, func(n uint64) { reports = append(reports, n) })
		const lines = 3 * queued
		io.WriteString(w, "line 0\n")
		synctest.Wait() // the writing goroutine is stuck in the sink with it
		for i := 1; i < lines; i++ {
			if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		// Kept: the line stuck in the sink and a full queue.
		if kept := lines - w.Dropped(); kept != queued+1 {
			t.Errorf("%d of %d lines kept with the sink stalled, want %d", kept, lines, queued+1)
		}
		if len(reports) != 0 {
			t.Errorf("reported %v before the sink drained", reports)
		}

		close(r.blocked) // the sink drains
		synctest.Wait()
		if len(reports) != 1 || reports[0] != w.Dropped() {
			t.Errorf("reports %v, want one with all %d dropped lines", reports, w.Dropped())
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if n := uint64(strings.Count(r.String(), "\n")); n+w.Dropped() != lines {
			t.Errorf("%d written + %d dropped != %d lines", n, w.Dropped(), lines)
		}
	})
}

func TestCloseGivesUpOnAStalledSink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := recorder{blocked: make(chan struct{})}
		defer close(r.blocked)
		w := New(&r, nil)
		io.WriteString(w, "a\n")
		io.WriteString(w, "b\n")
		t0 := time.Now()
		if err := w.Close(); err == nil {
			t.Error("Close = nil with the last lines never written")
		}
		if d := time.Since(t0); d != closeWait {
			t.Errorf("Close gave up after %s, want %s", d, closeWait)
		}
	})
}

func TestFailedWritesAreCountedAsDropped(t *testing.T) {
	r := recorder{err: errors.New("disk full")}
	w := New(&r, nil)
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
	w := New(&r, nil)
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
	lines := strings.Split(strings.TrimSuffix(r.String(), "\n"), "\n")
	if uint64(len(lines))+w.Dropped() != 4000 {
		t.Fatalf("%d lines written and %d dropped, want 4000 in all", len(lines), w.Dropped())
	}
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l, "goroutine %d line %d", &g, &i); err != nil {
			t.Fatalf("torn line %q", l)
		}
	}
}
