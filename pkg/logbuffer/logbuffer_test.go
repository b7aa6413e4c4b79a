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

// recorder counts the writes that reach it.
type recorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
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

func TestLightTrafficWritesThrough(t *testing.T) {
	var r recorder
	w := New(&r, WithInterval(20*time.Millisecond))
	for i := range 3 {
		fmt.Fprintf(w, "line %d\n", i)
		if got, _ := r.state(); !strings.Contains(got, fmt.Sprintf("line %d\n", i)) {
			t.Fatalf("line %d was held back on an idle writer", i)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func TestHeavyTrafficIsBatched(t *testing.T) {
	var r recorder
	w := New(&r, WithInterval(50*time.Millisecond))
	for i := range 1000 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if _, writes := r.state(); writes != 1 {
		t.Errorf("%d writes reached the output before the interval, want 1 (the first line)", writes)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, writes := r.state()
		if strings.Count(got, "\n") == 1000 {
			if writes != 2 {
				t.Errorf("1000 lines took %d writes, want 2", writes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 1000 lines written after the interval", strings.Count(got, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLimitForcesAWrite(t *testing.T) {
	var r recorder
	w := New(&r, WithInterval(time.Hour), WithLimit(100))
	line := strings.Repeat("x", 29) + "\n"
	for range 5 { // the first goes through, then 4 x 30 bytes pass the limit
		io.WriteString(w, line)
	}
	if got, writes := r.state(); writes != 2 || len(got) != 150 {
		t.Errorf("writes = %d, bytes = %d; want 2 writes of all 150 bytes", writes, len(got))
	}
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

func TestErrorsAreReported(t *testing.T) {
	broken := errors.New("disk full")
	r := recorder{err: broken}
	w := New(&r, WithInterval(time.Hour))
	if _, err := io.WriteString(w, "a\n"); !errors.Is(err, broken) {
		t.Errorf("Write = %v, want %v", err, broken)
	}
	if _, err := io.WriteString(w, "b\n"); !errors.Is(err, broken) {
		t.Errorf("later Write = %v, want %v", err, broken)
	}
}

// Run with -race.
func TestConcurrentLinesStayWhole(t *testing.T) {
	var r recorder
	w := New(&r, WithInterval(time.Millisecond), WithLimit(512))
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
