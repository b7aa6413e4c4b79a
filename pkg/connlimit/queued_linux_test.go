package connlimit

import (
	"net"
	"testing"
)

// Connections the kernel completed but nobody accepted yet are counted,
// and leave the count once accepted.
func TestQueuedCountsTheAcceptQueue(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, 10)
	defer l.Close()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor(t, "3 connections queued", func() bool { return l.Stats().Queued == 3 })
	for range 3 {
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if s := l.Stats(); s.Queued != 0 || s.Open != 3 || s.Waiting != 3 {
		t.Errorf("after Accept: queued %d, open %d, waiting %d; want 0, 3, 3", s.Queued, s.Open, s.Waiting)
	}
}
