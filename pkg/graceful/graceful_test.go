package graceful

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/connlimit"
)

type harness struct {
	url       string
	ready     atomic.Bool
	keepAlive atomic.Bool
	signals   chan os.Signal
	cancel    context.CancelFunc
	done      chan error
	started   chan struct{} // a /slow request is in its handler
}

// serve starts Serve with a handler whose /slow route takes slowFor.
func serve(t *testing.T, slowFor time.Duration, o Options) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{url: "http://" + ln.Addr().String(), signals: make(chan os.Signal, 2), done: make(chan error, 1), started: make(chan struct{}, 10)}
	mux := http.NewServeMux()
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		h.started <- struct{}{}
		select {
		case <-time.After(slowFor):
			io.WriteString(w, "slow")
		case <-r.Context().Done(): // cut off by Close
		}
	})
	o.SetReady = h.ready.Store
	o.SetKeepAlive = h.keepAlive.Store
	o.Signals = h.signals
	o.Log = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	conns := connlimit.New(ln, 100)
	srv := &http.Server{Handler: mux, ConnState: conns.ConnState}
	go func() { h.done <- Serve(ctx, srv, conns, o) }()
	t.Cleanup(cancel)
	waitFor(t, "ready", h.ready.Load)
	return h
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

func (h *harness) get(path string) (string, error) {
	resp, err := http.Get(h.url + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), errors.New(resp.Status)
	}
	return string(b), err
}

func (h *harness) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// The order that matters to Kubernetes: not ready at once, still serving
// through the drain, in-flight requests finish, then Serve returns nil.
func TestShutdownOrder(t *testing.T) {
	h := serve(t, 1500*time.Millisecond, Options{DrainDelay: 500 * time.Millisecond, ShutdownTimeout: 10 * time.Second})

	var slowBody string
	var slowErr error
	var wg sync.WaitGroup
	wg.Go(func() { slowBody, slowErr = h.get("/slow") })
	<-h.started

	t0 := time.Now()
	h.signals <- syscall.SIGTERM
	waitFor(t, "not ready after the signal", func() bool { return !h.ready.Load() })
	if h.keepAlive.Load() {
		t.Error("keep-alive still on during the drain")
	}
	if body, err := h.get("/fast"); err != nil || body != "fast" {
		t.Errorf("during the drain: %q %v, want served", body, err)
	}
	if d := time.Since(t0); d >= 500*time.Millisecond {
		t.Fatalf("the checks during the drain took %s, past its end", d)
	}

	// After the drain the listener closes while /slow is still running.
	waitFor(t, "the listener closed after the drain", func() bool {
		_, err := h.get("/fast")
		return err != nil
	})
	if d := time.Since(t0); d < 500*time.Millisecond {
		t.Errorf("listener closed %s after the signal, within the 500ms drain", d)
	}

	if err := h.wait(t); err != nil {
		t.Errorf("Serve = %v after a clean shutdown", err)
	}
	wg.Wait()
	if slowErr != nil || slowBody != "slow" {
		t.Errorf("in-flight request: %q %v, want it to complete", slowBody, slowErr)
	}
	if d := time.Since(t0); d < 1400*time.Millisecond {
		t.Errorf("Serve returned %s after the signal, before the in-flight request ended", d)
	}
}

func TestShutdownTimeoutCutsOff(t *testing.T) {
	h := serve(t, 10*time.Second, Options{ShutdownTimeout: 200 * time.Millisecond})
	go h.get("/slow")
	<-h.started
	h.cancel()
	err := h.wait(t)
	if err == nil || !strings.Contains(err.Error(), "cut off after 200ms") {
		t.Errorf("Serve = %v, want the timeout reported", err)
	}
}

func TestSecondSignal(t *testing.T) {
	for _, phase := range []string{"drain", "shutdown"} {
		t.Run(phase, func(t *testing.T) {
			o := Options{DrainDelay: time.Hour, ShutdownTimeout: time.Hour}
			if phase == "shutdown" {
				o.DrainDelay = 0
			}
			h := serve(t, time.Hour, o)
			go h.get("/slow")
			<-h.started
			h.signals <- syscall.SIGTERM
			waitFor(t, "not ready after the signal", func() bool { return !h.ready.Load() })
			t0 := time.Now()
			h.signals <- syscall.SIGINT
			err := h.wait(t)
			if err == nil || !strings.Contains(err.Error(), "second signal interrupt during "+phase) {
				t.Errorf("Serve = %v, want a forced stop during the %s", err, phase)
			}
			if d := time.Since(t0); d > 2*time.Second {
				t.Errorf("took %s to stop after the second signal", d)
			}
		})
	}
}

func TestServeFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = Serve(context.Background(), &http.Server{}, connlimit.New(ln, 1), Options{SetReady: func(bool) {}, Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.HasPrefix(err.Error(), "serve: ") {
		t.Errorf("Serve on a closed listener = %v", err)
	}
}
