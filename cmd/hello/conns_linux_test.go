package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/config"
)

// rss is the resident set size of a process, from /proc.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// idleConn opens a keep-alive connection, has one request served on it and
// leaves it idle, as a client pool does.
func idleConn(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: hello\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c, nil
}

// The default connection cap plus 3,000 more idle keep-alive connections
// keep the process under the Pod's 64 MiB memory limit, and /healthz on a
// new connection still answers: at the cap, the longest-idle connection is
// closed to make room for each new one.
func TestConnectionCapBoundsMemoryAndKeepsProbesAnswering(t *testing.T) {
	const podLimit = 64 << 20
	maxConns := config.Default().MaxConnections
	p := startBinary(t, "GOMEMLIMIT=64MiB")
	pid := p.cmd.Process.Pid
	before := rss(t, pid)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// open opens n idle connections one after the other. At the cap each
	// one closes the longest-idle, which is never the one just opened, so
	// every one of them is served.
	open := func(n int) {
		t.Helper()
		for i := range n {
			c, err := idleConn(p.addr, 10*time.Second)
			if err != nil {
				t.Fatalf("connection %d of %d: %v", i+1, n, err)
			}
			conns = append(conns, c)
		}
	}
	open(maxConns)
	atCap := rss(t, pid)
	const more = 3000
	open(more)
	after := rss(t, pid)
	t.Logf("RSS %.1f MB idle, %.1f MB with %d idle connections (%d bytes each), %.1f MB after %d more; Pod limit %d MiB",
		float64(before)/1e6, float64(atCap)/1e6, maxConns, (atCap-before)/int64(maxConns), float64(after)/1e6, more, podLimit>>20)
	if after >= podLimit {
		t.Errorf("RSS %d bytes with %d connections attempted, over the Pod's %d MiB limit", after, maxConns+more, podLimit>>20)
	}

	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for range 5 {
		resp, err := probe.Get("http://" + p.addr + "/healthz")
		if err != nil {
			t.Fatalf("/healthz with the cap reached: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/healthz with the cap reached: %d", resp.StatusCode)
		}
	}
	resp, err := probe.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Each of the 3,000 past the cap evicted an idle one (so did the first
	// probe; the later ones and the scrape found the room a closed probe
	// left). None was refused: some connection was always idle.
	metrics := string(b)
	for _, want := range []struct {
		name      string
		low, high int
	}{
		{"http_connections_evicted_total", more + 1, more + 6},
		{"http_connections_refused_total", 0, 0},
		{"http_connections_open", 1, maxConns},
	} {
		got := -1
		for _, l := range strings.Split(metrics, "\n") {
			fmt.Sscanf(l, want.name+" %d", &got)
		}
		t.Logf("%s %d", want.name, got)
		if got < want.low || got > want.high {
			t.Errorf("%s = %d, want %d to %d", want.name, got, want.low, want.high)
		}
	}
}

// Under a low open-file limit (docker run --ulimit nofile=128) the cap is
// lowered to fit it, so 300 idle connections cannot make Accept fail for
// want of a descriptor and /healthz keeps answering.
func TestConnectionCapFitsTheOpenFileLimit(t *testing.T) {
	cmd := exec.Command("sh", "-c", `ulimit -n 128 && exec "$0"`, binary(t))
	p := startCommand(t, cmd, nil)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 300 {
		wg.Go(func() {
			if c, err := idleConn(p.addr, 2*time.Second); err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// 96 fit under the lowered cap; the rest each evicted an idle one.
	t.Logf("%d of 300 connections served", len(conns))
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	for i := range 5 {
		resp, err := probe.Get("http://" + p.addr + "/healthz")
		if err != nil {
			t.Fatalf("/healthz %d with 300 connections and 128 files: %v", i, err)
		}
		resp.Body.Close()
	}
	waitForLog(t, p.stdout, `"msg":"max connections lowered to fit the open-file limit","max_connections":96,"open_file_limit":128`)
}
