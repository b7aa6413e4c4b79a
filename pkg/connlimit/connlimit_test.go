package connlimit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// serve starts an http.Server capped at limit connections; /slow holds its
// request until release is closed.
func serve(t *testing.T, limit int, release chan struct{}) (string, *Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-release })
	srv := &http.Server{Handler: mux}
	l := New(srv, ln, limit)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), l
}

// send writes GET /fast on a new connection and returns it with the
// response, or the error.
func send(t *testing.T, addr string) (net.Conn, *http.Response, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	return c, resp, err
}

func TestAtTheCapTheLongestIdleConnectionMakesRoom(t *testing.T) {
	addr, l := serve(t, 2, nil)
	oldest, _, err := send(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, _, err := send(t, addr); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := send(t, addr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("third connection at a cap of 2: %v", err)
	}
	oldest.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := oldest.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("the longest-idle connection was not closed: read %v", err)
	}
	if l.ClosedToMakeRoom() != 1 || l.Refused() != 0 || l.Open() != 2 {
		t.Errorf("closed %d, refused %d, open %d; want 1, 0, 2", l.ClosedToMakeRoom(), l.Refused(), l.Open())
	}
}

func TestAtTheCapWithEveryConnectionBusyTheNewOneIsRefused(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr, l := serve(t, 2, release)
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		busy := 0
		l.conns.Range(func(_, v any) bool {
			if v.(*waiting).since.Load() == 0 {
				busy++
			}
			return true
		})
		if busy == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two slow requests never started")
		}
	}
	if _, _, err := send(t, addr); err == nil {
		t.Error("a third connection was served with two busy at a cap of 2")
	}
	if l.Refused() != 1 || l.ClosedToMakeRoom() != 0 {
		t.Errorf("refused %d, closed %d; want 1, 0", l.Refused(), l.ClosedToMakeRoom())
	}
}
