package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects what run writes to stdout while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type instance struct {
	addr   string
	stdout *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// start runs the whole program in-process, as main would, and waits until
// /healthz answers.
func start(t *testing.T, env map[string]string, args ...string) *instance {
	t.Helper()
	in := &instance{addr: freeAddr(t), stdout: &syncBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	getenv := func(k string) string { return env[k] }
	// No drain unless a test asks for one: it would only slow the cleanup.
	argv := append([]string{"hello", "--addr", in.addr, "--drain-delay=0s"}, args...)
	go func() { in.done <- run(ctx, argv, getenv, in.stdout, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-in.done:
		case <-time.After(30 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	waitHealthy(t, "http://"+in.addr, in.done)
	return in
}

func waitHealthy(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run returned before serving: %v", err)
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("/healthz never answered 200")
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(body)
}

func TestRunServesEveryEndpoint(t *testing.T) {
	in := start(t, nil, "--drain-delay=0s")
	base := "http://" + in.addr

	tests := []struct {
		path, want string
		status     int
	}{
		{"/hello", "Hello!", 200},
		{"/healthz", `{"status":"ok"}`, 200},
		{"/readyz", `{"status":"ready"}`, 200},
		{"/version", `"goVersion":"go1.`, 200},
		{"/metrics", `http_requests_total{code="200",method="GET",route="/hello"} 1`, 200},
		{"/does-not-exist", `{"message":"Not Found"}`, 404},
	}
	for _, tt := range tests {
		resp, body := get(t, base+tt.path)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s = %d %q, want %d with %q", tt.path, resp.StatusCode, body, tt.status, tt.want)
		}
		for _, h := range []string{"X-Request-Id", "X-Content-Type-Options", "Content-Security-Policy"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("GET %s: no %s header", tt.path, h)
			}
		}
	}
	resp, body := get(t, base+"/hello")
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" || body != "Hello!" {
		t.Errorf("/hello: Content-Type %q body %q", ct, body)
	}
	id := resp.Header.Get("X-Request-Id")
	waitForLog(t, in.stdout, `"request_id":"`+id+`","remote_addr":"127.0.0.1:`)
	waitForLog(t, in.stdout, `"method":"GET","path":"/hello","status":200`)
	if strings.Contains(in.stdout.String(), `"path":"/healthz"`) {
		t.Error("health probes are in the access log")
	}

	in.cancel()
	if err := <-in.done; err != nil {
		t.Fatalf("run returned %v after a clean shutdown", err)
	}
	in.done <- nil // for the cleanup
	assertPhases(t, in.stdout.String())
}

// waitForLog waits for a line: under load, log lines are batched for up
// to 100ms.
func waitForLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(logs.String(), want); {
		if time.Now().After(deadline) {
			t.Errorf("log has no %s in:\n%s", want, logs)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func assertPhases(t *testing.T, logs string) {
	t.Helper()
	last := -1
	for _, phase := range []string{"listening", "readiness now 503", "shutdown: draining", "shutdown: stopping server", "shutdown: complete"} {
		i := strings.Index(logs, phase)
		if i < 0 || i < last {
			t.Errorf("shutdown phase %q missing or out of order in:\n%s", phase, logs)
			return
		}
		last = i
	}
}

// On shutdown /readyz turns 503 at once while /hello is still served for
// the drain delay; then run returns nil having logged every phase.
func TestShutdownDrainsBeforeStopping(t *testing.T) {
	in := start(t, nil, "--drain-delay=1s")
	base := "http://" + in.addr

	cancelled := time.Now()
	in.cancel() // what SIGTERM does
	waitFor(t, "/readyz 503 after the shutdown began", func() bool {
		resp, _ := get(t, base+"/readyz")
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	resp, body := get(t, base+"/hello")
	if d := time.Since(cancelled); d >= time.Second {
		t.Fatalf("the checks took %s, past the 1s drain", d)
	}
	if resp.StatusCode != 200 || body != "Hello!" || !resp.Close {
		t.Errorf("/hello during drain = %d %q, Connection: close %v; want 200 with Connection: close", resp.StatusCode, body, resp.Close)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("run = %v after a graceful shutdown", err)
		}
		in.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the drain")
	}
	assertPhases(t, in.stdout.String())
}

func TestBadRequests(t *testing.T) {
	in := start(t, map[string]string{"BODY_LIMIT": "1024"}, "--max-header-bytes=8192")
	tests := []struct {
		name, raw string
		status    int
	}{
		{"malformed request line", "HELLO\r\n\r\n", 400},
		{"bad protocol", "GET /hello HTTP/9.9\r\nHost: x\r\n\r\n", 505},
		{"oversized headers", "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", 431},
		{"oversized body", "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n" + strings.Repeat("a", 2048), 413},
		{"bad method", "BREW /hello HTTP/1.1\r\nHost: x\r\n\r\n", 405},
		{"unknown path", "GET /wp-admin HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"path traversal", "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"fine", "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.ReadResponse(sendRaw(t, in.addr, tt.raw), nil)
			if err != nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if strings.Contains(string(body), "goroutine") {
				t.Errorf("response leaks a stack trace: %s", body)
			}
		})
	}
	// The server is still fine afterwards.
	if resp, body := get(t, "http://"+in.addr+"/hello"); resp.StatusCode != 200 || body != "Hello!" {
		t.Errorf("after bad requests: %d %q", resp.StatusCode, body)
	}
}

// Slowloris: hundreds of connections dribbling headers must not hold up a
// normal request, and are closed once ReadHeaderTimeout passes.
func TestSlowlorisConnectionsAreCutOff(t *testing.T) {
	const conns = 300
	const headerTimeout = 3 * time.Second
	in := start(t, nil, "--read-header-timeout="+headerTimeout.String())

	var closed atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	begin := time.Now()
	for range conns {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		wg.Go(func() {
			msg := "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < len(msg); i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte{msg[i]}); err != nil {
					closed.Add(1) // the server hung up on us
					return
				}
			}
		})
	}

	// A normal client is served at once meanwhile.
	var worst time.Duration
	for range 20 {
		t0 := time.Now()
		resp, body := get(t, "http://"+in.addr+"/hello")
		if d := time.Since(t0); d > worst {
			worst = d
		}
		if resp.StatusCode != 200 || body != "Hello!" {
			t.Fatalf("/hello under slowloris = %d %q", resp.StatusCode, body)
		}
	}
	t.Logf("slowest /hello among %d slow connections: %s", conns, worst)
	// Held up would mean waiting for the slow connections to be cut.
	if worst > headerTimeout/2 {
		t.Errorf("/hello took %s while slow clients were connected", worst)
	}

	// Every slow connection is gone within the header timeout plus slack.
	for deadline := time.Now().Add(headerTimeout + 5*time.Second); closed.Load() < conns && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d of %d slow connections closed by the server %s after they started", closed.Load(), conns, time.Since(begin))
	if n := closed.Load(); n < conns {
		t.Errorf("%d of %d slow connections still open %s after they started", conns-int(n), conns, time.Since(begin))
	}
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"PORT not a number", map[string]string{"PORT": "abc"}, nil, `invalid value "abc" for PORT`},
		{"PORT out of range", map[string]string{"PORT": "70000"}, nil, `invalid value "70000" for PORT`},
		{"negative duration", nil, []string{"--shutdown-timeout=-1s"}, "must not be negative"},
		{"unknown flag", nil, []string{"--verbose"}, "flag provided but not defined: -verbose"},
		{"bad log level", map[string]string{"LOG_LEVEL": "chatty"}, nil, `invalid value "chatty" for LOG_LEVEL`},
		{"header timeout that would reset every connection", map[string]string{"READ_HEADER_TIMEOUT": "1ns"}, nil, `invalid value "1ns" for READ_HEADER_TIMEOUT: must be at least 1s`},
		{"write timeout that would reset every connection", map[string]string{"WRITE_TIMEOUT": "1ns"}, nil, `invalid value "1ns" for WRITE_TIMEOUT: must be at least 1s`},
		{"port in use", nil, nil, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"hello"}, tt.args...)
			if tt.name == "port in use" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				args = append(args, "--addr", ln.Addr().String())
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, func(k string) string { return tt.env[k] }, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error containing %q", err, tt.want)
			}
			if want := "hello: " + err.Error() + "\n"; stderr.String() != want {
				t.Errorf("stderr = %q, want %q", stderr.String(), want)
			}
		})
	}
}

// The tests below drive the real binary with real signals.

var buildOnce struct {
	sync.Once
	path string
	err  error
}

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hello-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "hello")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

type process struct {
	cmd    *exec.Cmd
	addr   string
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
}

func startBinary(t *testing.T, env ...string) *process {
	t.Helper()
	return startBinaryTo(t, nil, env...)
}

// startBinaryTo starts the binary with stdout going to stdout, or to
// p.stdout when it is nil.
func startBinaryTo(t *testing.T, stdout io.Writer, env ...string) *process {
	t.Helper()
	return startCommand(t, exec.Command(binary(t)), stdout, env...)
}

// startCommand starts cmd, which runs the binary, as startBinaryTo does.
func startCommand(t *testing.T, cmd *exec.Cmd, stdout io.Writer, env ...string) *process {
	t.Helper()
	p := &process{addr: freeAddr(t), stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	_, port, _ := net.SplitHostPort(p.addr)
	p.cmd = cmd
	p.cmd.Env = append(os.Environ(), append([]string{"PORT=" + port}, env...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	done := make(chan error)
	waitHealthy(t, "http://"+p.addr, done)
	return p
}

func (p *process) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("process still running %s after the signal; stdout:\n%s", within, p.stdout)
		return -1
	}
}

// kill -TERM under load: every request that started before the signal
// completes with 200, and the process exits 0 after logging each phase.
func TestSIGTERMUnderLoadLosesNoRequest(t *testing.T) {
	p := startBinary(t, "DRAIN_DELAY=1s", "SHUTDOWN_TIMEOUT=10s")
	url := "http://" + p.addr + "/hello"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 20 * time.Second}

	var signalled atomic.Int64 // unix nanos of the signal, 0 before
	var before, beforeOK, after, afterOK atomic.Int64
	var lost sync.Map
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				sentBeforeSignal := signalled.Load() == 0
				resp, err := client.Get(url)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if sentBeforeSignal {
					before.Add(1)
					if ok {
						beforeOK.Add(1)
					} else {
						lost.Store(fmt.Sprintf("worker %d request %d", w, i), err)
					}
				} else {
					after.Add(1)
					if ok {
						afterOK.Add(1)
					}
				}
				if !ok && !sentBeforeSignal {
					return // the listener is closed: the load is over
				}
				select {
				case <-p.exited:
					return
				default:
				}
			}
		})
	}
	waitFor(t, "load running", func() bool { return beforeOK.Load() > 1000 })
	signalled.Store(time.Now().UnixNano())
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := p.waitExit(t, 15*time.Second)
	wg.Wait()

	t.Logf("before SIGTERM: %d/%d requests answered 200; after: %d/%d (the rest met a closed listener)",
		beforeOK.Load(), before.Load(), afterOK.Load(), after.Load())
	lost.Range(func(k, v any) bool {
		t.Errorf("request started before the signal was lost: %s: %v", k, v)
		return true
	})
	if before.Load() == 0 || afterOK.Load() == 0 {
		t.Errorf("the load did not span the signal and the drain")
	}
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0; stderr: %s", code, p.stderr)
	}
	assertPhases(t, p.stdout.String())
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	p := startBinary(t, "DRAIN_DELAY=60s")
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitForLog(t, p.stdout, "shutdown: draining")
	t0 := time.Now()
	p.cmd.Process.Signal(syscall.SIGINT)
	code := p.waitExit(t, 5*time.Second)
	t.Logf("exited %s after the second signal", time.Since(t0))
	if code == 0 {
		t.Error("exit code 0 after a forced stop, want non-zero")
	}
	if !strings.Contains(p.stderr.String(), "second signal") {
		t.Errorf("stderr does not say why: %q", p.stderr)
	}
}

func TestBadConfigurationExitsWithOneLine(t *testing.T) {
	cmd := exec.Command(binary(t))
	cmd.Env = append(os.Environ(), "PORT=abc")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("PORT=abc: %v, want a non-zero exit", err)
	}
	if got := stderr.String(); got != "hello: invalid value \"abc\" for PORT: must be a port number from 1 to 65535\n" {
		t.Errorf("stderr = %q, want one clear line", got)
	}
}

// errRemoved is what a client's dial returns once the test's load
// balancer has taken the endpoint out: the client moves elsewhere.
var errRemoved = errors.New("endpoint removed from the load balancer")

// Keep-alive clients that never retry lose nothing across SIGTERM. Raw TCP
// clients send GET /hello in a loop on their own connection, and
// http.Client sends POSTs (which it never retries); as a load balancer
// would, they open no new connection once the endpoint is removed, halfway
// through the drain, but keep using the ones they have. Every request
// written must get a whole response.
func TestSIGTERMKeepAliveClientsLoseNothing(t *testing.T) {
	const drain = time.Second
	for run := range 5 {
		p := startBinary(t, "DRAIN_DELAY="+drain.String(), "SHUTDOWN_TIMEOUT=5s")
		var removedAt atomic.Int64 // unix nanos, 0 while in rotation
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			if at := removedAt.Load(); at != 0 && time.Now().UnixNano() >= at {
				return nil, errRemoved
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		var sent, lost, closes atomic.Int64
		var mu sync.Mutex
		var failures []string
		fail := func(format string, a ...any) {
			lost.Add(1)
			mu.Lock()
			failures = append(failures, fmt.Sprintf(format, a...))
			mu.Unlock()
		}
		var wg sync.WaitGroup
		for c := range 16 {
			wg.Go(func() {
				var conn net.Conn
				var br *bufio.Reader
				defer func() {
					if conn != nil {
						conn.Close()
					}
				}()
				for {
					if conn == nil {
						var err error
						if conn, err = dial(context.Background(), "tcp", p.addr); err != nil {
							return
						}
						br = bufio.NewReader(conn)
					}
					conn.SetDeadline(time.Now().Add(10 * time.Second))
					sent.Add(1)
					if _, err := io.WriteString(conn, "GET /hello HTTP/1.1\r\nHost: hello\r\n\r\n"); err != nil {
						fail("raw client %d: write: %v", c, err)
						return
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						fail("raw client %d: %v", c, err)
						return
					}
					body, err := io.ReadAll(resp.Body)
					if err != nil || resp.StatusCode != 200 || string(body) != "Hello!" {
						fail("raw client %d: %d %q %v", c, resp.StatusCode, body, err)
						return
					}
					if resp.Close {
						closes.Add(1)
						conn.Close()
						conn = nil
					}
				}
			})
		}
		client := &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()
		for c := range 4 {
			wg.Go(func() {
				for {
					sent.Add(1)
					resp, err := client.Post("http://"+p.addr+"/hello", "text/plain", strings.NewReader("hi"))
					if errors.Is(err, errRemoved) {
						sent.Add(-1) // never sent: it would go to another endpoint
						return
					}
					if err != nil {
						fail("POST client %d: %v", c, err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusMethodNotAllowed {
						fail("POST client %d: status %d", c, resp.StatusCode)
						return
					}
				}
			})
		}
		waitFor(t, "load running", func() bool { return sent.Load() > 2000 })
		removedAt.Store(time.Now().Add(drain / 2).UnixNano())
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code := p.waitExit(t, 10*time.Second)
		wg.Wait()
		t.Logf("run %d: %d requests sent, %d lost, %d responses said Connection: close", run+1, sent.Load(), lost.Load(), closes.Load())
		for _, f := range failures {
			t.Errorf("run %d: lost: %s", run+1, f)
		}
		if code != 0 {
			t.Errorf("run %d: exit code %d, stderr: %s", run+1, code, p.stderr)
		}
	}
}

// With stdout a pipe nobody reads (a stalled log driver), every request is
// still answered; lines that cannot go out are dropped and counted; and
// SIGTERM turns /readyz to 503 and ends the process in bounded time.
func TestStalledStdoutNeverStopsServing(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() // never read
	p := startBinaryTo(t, w, "DRAIN_DELAY=1s", "SHUTDOWN_TIMEOUT=2s")
	w.Close()
	base := "http://" + p.addr
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	const requests = 3000
	var failed atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				resp, err := client.Get(base + "/hello")
				if err != nil {
					if failed.Add(1) <= 3 {
						t.Errorf("request %d: %v", i, err)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		})
	}
	t0 := time.Now()
	for i := range requests {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("%d requests with stdout unread: %d failed, %s", requests, failed.Load(), time.Since(t0))
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed with stdout stalled", failed.Load(), requests)
	}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var dropped int
	for _, l := range strings.Split(string(metrics), "\n") {
		fmt.Sscanf(l, "log_lines_dropped_total %d", &dropped)
	}
	t.Logf("log_lines_dropped_total %d", dropped)
	if dropped == 0 {
		t.Error("log_lines_dropped_total is 0 with stdout stalled")
	}

	const drain, timeout = time.Second, 2 * time.Second
	signalled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz after SIGTERM: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			t.Logf("/readyz 503 %s after SIGTERM", time.Since(signalled))
			break
		}
		if time.Since(signalled) > drain+timeout+time.Second { // the process should be gone by now
			t.Fatalf("/readyz still %d %s after SIGTERM", resp.StatusCode, time.Since(signalled))
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.waitExit(t, drain+timeout+time.Second)
	t.Logf("exited %s after SIGTERM (bound: drain %s + shutdown timeout %s + 1s)", time.Since(signalled), drain, timeout)
}

// MAX_HEADER_BYTES is the largest request line plus header block, through
// the blank line that ends it, that is served: one byte more is a 431.
// Set through the environment, as a Deployment sets it.
func TestMaxHeaderBytesIsExact(t *testing.T) {
	const limit = 8192
	in := start(t, map[string]string{"MAX_HEADER_BYTES": strconv.Itoa(limit)})
	for _, tt := range []struct {
		size, status int
	}{{limit, 200}, {limit + 1, 431}, {limit + 4096, 431}} {
		head := "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: "
		req := head + strings.Repeat("a", tt.size-len(head)-4) + "\r\n\r\n"
		resp, err := http.ReadResponse(sendRaw(t, in.addr, req), nil)
		if err != nil {
			t.Fatalf("%d-byte header block: %v", len(req), err)
		}
		if resp.StatusCode != tt.status {
			t.Errorf("%d-byte header block with MAX_HEADER_BYTES=%d: %d, want %d", len(req), limit, resp.StatusCode, tt.status)
		}
	}
}

// Once a stalled stdout drains, one warning line says how many lines were
// dropped, the same number /metrics counts.
func TestDroppedLinesAreReportedOnceStdoutDrains(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := startBinaryTo(t, w)
	w.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	get := func(path string) string {
		resp, err := client.Get("http://" + p.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for range 3000 {
		get("/hello")
	}
	var dropped int
	for _, l := range strings.Split(get("/metrics"), "\n") {
		fmt.Sscanf(l, "log_lines_dropped_total %d", &dropped)
	}
	if dropped == 0 {
		t.Fatal("no line dropped with stdout unread")
	}

	var out syncBuffer
	go io.Copy(&out, r) // stdout drains
	const warning = `"msg":"log lines dropped: stdout was slower than the service"`
	waitForLog(t, &out, warning)
	// A request after the report, and its access log line: any second
	// report would have come before it.
	resp, err := client.Get("http://" + p.addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitForLog(t, &out, `"request_id":"`+resp.Header.Get("X-Request-Id")+`"`)
	if n := strings.Count(out.String(), warning); n != 1 {
		t.Errorf("%d warning lines, want 1", n)
	}
	if want := fmt.Sprintf(`"dropped":%d}`, dropped); !strings.Contains(out.String(), want) {
		t.Errorf("the warning does not say %s (log_lines_dropped_total %d)", want, dropped)
	}
}

// On a graceful shutdown every line logged before it reaches stdout: the
// access log line of each request answered, then the shutdown's own lines,
// none dropped.
func TestGracefulShutdownWritesEveryLogLine(t *testing.T) {
	in := start(t, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var ids []string
	for range 500 {
		resp, err := client.Get("http://" + in.addr + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ids = append(ids, resp.Header.Get("X-Request-Id"))
	}
	in.cancel()
	if err := <-in.done; err != nil {
		t.Fatalf("run = %v after a graceful shutdown", err)
	}
	in.done <- nil // for the cleanup
	out := in.stdout.String()
	for i, id := range ids {
		if !strings.Contains(out, `"request_id":"`+id+`"`) {
			t.Fatalf("request %d's access log line (%s) is not on stdout after the shutdown", i+1, id)
		}
	}
	if !strings.HasSuffix(out, "\"msg\":\"shutdown: complete\"}\n") {
		t.Errorf("stdout does not end with the shutdown's last line:\n%s", out[max(0, len(out)-500):])
	}
}

// sendRaw writes raw to a new connection to addr as it is, with no client
// to fix it up or retry it, and returns a reader of what comes back. The
// connection closes with the test.
func sendRaw(t *testing.T, addr, raw string) *bufio.Reader {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	return bufio.NewReader(conn)
}
