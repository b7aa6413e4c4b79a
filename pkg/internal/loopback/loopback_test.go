package loopback

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want 4 distinct positive ports", ports)
		}
		seen[p] = true
	}
}

func TestWaitHTTP(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := WaitHTTP(ctx, srv.URL, WithBearer("s3cret")); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("answered after %d authorised calls, want 3", n)
	}

	// Give up after three answers, however slow the machine.
	var tries atomic.Int32
	giveUp := errors.New("gave up")
	err := WaitHTTP(ctx, srv.URL, WithAbort(func() error {
		if tries.Add(1) > 3 {
			return giveUp
		}
		return nil
	}))
	if !errors.Is(err, giveUp) || !strings.Contains(err.Error(), "401 Unauthorized: who are you") {
		t.Errorf("without the token: %v, want the last 401 and its body", err)
	}

	exited := errors.New("exit status 2")
	err = WaitHTTP(ctx, srv.URL, WithAbort(func() error { return exited }))
	if !errors.Is(err, exited) {
		t.Errorf("with a failing abort check: %v, want it wrapped", err)
	}
}
