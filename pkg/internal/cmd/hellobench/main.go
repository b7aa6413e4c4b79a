// Command hellobench measures hello against a bare echo server and a bare
// net/http server on the same machine in one run: binary size, throughput
// and latency under the same load, server CPU per request, the CPU of one
// /metrics scrape against one /hello, time from start to the first 200, and
// idle memory.
//
//	go run ./pkg/internal/cmd/hellobench                        # 9 rounds, about 3 minutes
//	go run ./pkg/internal/cmd/hellobench -svg docs/images       # also draw the charts in docs/performance.md
//	go run ./pkg/internal/cmd/hellobench -target 127.0.0.1:8080 # only load a server you started (to profile it)
//
// The three servers take turns over several rounds and every figure is the
// median of the per-round ratios, because a shared 2-core machine swings by
// ±15% from one minute to the next. Each round prints the machine's idle
// share, which tells a gap in work from a gap in waiting.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "hellobench: %v\n", err)
		os.Exit(1)
	}
}

type settings struct {
	rounds, concurrency, starts  int
	duration, warmup, costWindow time.Duration
	svgDir, target               string
}

func run(args []string, out io.Writer) error {
	var s settings
	fs := flag.NewFlagSet("hellobench", flag.ContinueOnError)
	fs.IntVar(&s.rounds, "rounds", 9, "load rounds per server, interleaved")
	fs.DurationVar(&s.duration, "duration", 3*time.Second, "load duration of one round")
	fs.DurationVar(&s.warmup, "warmup", 500*time.Millisecond, "load before each measured round")
	fs.IntVar(&s.concurrency, "concurrency", 16, "keep-alive connections, one request in flight on each")
	fs.IntVar(&s.starts, "starts", 15, "process starts timed per server")
	fs.DurationVar(&s.costWindow, "cost-window", time.Second, "how long each round sends one kind of request one at a time to measure its CPU cost (/hello, /metrics)")
	fs.StringVar(&s.svgDir, "svg", "", "write the charts (per-round ratios, binary bytes by module) as SVG files into this directory")
	fs.StringVar(&s.target, "target", "", "only load this host:port (a server you started, e.g. under perf) for -duration and print what came back")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.rounds < 1 || s.concurrency < 1 || s.starts < 1 || s.duration <= 0 || s.warmup < 0 || s.costWindow <= 0 {
		return errors.New("rounds, concurrency and starts must be at least 1, duration and cost-window positive")
	}
	if s.target != "" {
		res, err := loadFor(s.target, s.concurrency, s.duration)
		if err != nil {
			return fmt.Errorf("load %s: %w", s.target, err)
		}
		fmt.Fprintf(out, "%s: %.0f req/s (%d requests), p50 %s, p99 %s, %d errors\n", s.target, res.rps, res.requests, round(res.p50), round(res.p99), res.errors)
		return nil
	}

	dir, err := os.MkdirTemp("", "hellobench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	hello := &server{name: "hello", pkg: "github.com/kobuilt/hello/cmd/hello", env: []string{"DRAIN_DELAY=0s"}, metrics: true}
	echo := &server{name: "echo", pkg: "github.com/kobuilt/hello/pkg/internal/cmd/hellobench/bareecho"}
	bare := &server{name: "bare", pkg: "github.com/kobuilt/hello/pkg/internal/cmd/hellobench/bare"}
	servers := []*server{hello, echo, bare}
	for _, srv := range servers {
		if err := srv.build(dir); err != nil {
			return err
		}
	}

	fmt.Fprintf(out, "hellobench: hello = this service; echo = bare echo hello; bare = bare net/http hello\n")
	fmt.Fprintf(out, "%d rounds x %s, %d connections, GET /hello, load generator in this process\n\n", s.rounds, s.duration, s.concurrency)
	fmt.Fprintf(out, "binary (CGO_ENABLED=0 -trimpath -ldflags='-s -w'): hello %s, echo %s, bare %s; hello/echo %.2f, hello/bare %.2f\n\n",
		mb(hello.size), mb(echo.size), mb(bare.size), float64(hello.size)/float64(echo.size), float64(hello.size)/float64(bare.size))

	fmt.Fprintf(out, "%-6s %-6s %10s %9s %9s %8s %12s %6s\n", "round", "server", "req/s", "p50", "p99", "errors", "server CPU", "idle")
	var rr []roundRatios
	for r := range s.rounds {
		order := slices.Concat(servers[r%3:], servers[:r%3])
		results := map[*server]loadResult{}
		for _, srv := range order {
			res, err := srv.load(s)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, srv.name, err)
			}
			results[srv] = res
			fmt.Fprintf(out, "%-6d %-6s %10.0f %9s %9s %8d %8.1fµs/r %5.0f%%\n", r+1, srv.name, res.rps, round(res.p50), round(res.p99), res.errors,
				float64(res.cpuPerReq)/float64(time.Microsecond), 100*res.idle)
		}
		h, e, b := results[hello], results[echo], results[bare]
		rr = append(rr, roundRatios{
			helloRPS: h.rps / b.rps, echoRPS: e.rps / b.rps, helloEchoRPS: h.rps / e.rps,
			helloP99: float64(h.p99) / float64(b.p99), echoP99: float64(e.p99) / float64(b.p99),
			helloCPU: float64(h.cpuPerReq) / float64(b.cpuPerReq),
			idle:     (h.idle + e.idle + b.idle) / 3,
		})
	}

	fmt.Fprintf(out, "\nCPU of one request, sent one at a time on one keep-alive connection for %s each, hello:\n", s.costWindow)
	fmt.Fprintf(out, "%-6s %12s %12s %8s %6s\n", "round", "/hello", "/metrics", "ratio", "idle")
	for r := range s.rounds {
		c, err := hello.requestCost(s.costWindow, r%2 == 1)
		if err != nil {
			return fmt.Errorf("cost round %d: %w", r+1, err)
		}
		rr[r].scrape = float64(c.metrics) / float64(c.hello)
		fmt.Fprintf(out, "%-6d %10.1fµs %10.1fµs %8.1f %5.0f%%\n", r+1, us(c.hello), us(c.metrics), rr[r].scrape, 100*c.idle)
	}

	starts := map[*server][]time.Duration{}
	rss := map[*server]int{}
	for i := range s.starts {
		for _, srv := range slices.Concat(servers[i%3:], servers[:i%3]) {
			d, kb, err := srv.startOnce()
			if err != nil {
				return fmt.Errorf("start %s: %w", srv.name, err)
			}
			starts[srv] = append(starts[srv], d)
			rss[srv] = max(rss[srv], kb)
		}
	}

	med := func(f func(roundRatios) float64) float64 {
		v := make([]float64, len(rr))
		for i, r := range rr {
			v[i] = f(r)
		}
		return medianF(v)
	}
	fmt.Fprintf(out, "\nmedian of %d per-round ratios (machine idle, median of rounds: %.0f%%):\n", s.rounds, 100*med(func(r roundRatios) float64 { return r.idle }))
	fmt.Fprintf(out, "  throughput        hello/bare %.2f   echo/bare %.2f   hello/echo %.2f\n",
		med(func(r roundRatios) float64 { return r.helloRPS }), med(func(r roundRatios) float64 { return r.echoRPS }), med(func(r roundRatios) float64 { return r.helloEchoRPS }))
	fmt.Fprintf(out, "  p99 latency       hello/bare %.2f   echo/bare %.2f\n",
		med(func(r roundRatios) float64 { return r.helloP99 }), med(func(r roundRatios) float64 { return r.echoP99 }))
	fmt.Fprintf(out, "  server CPU/req    hello/bare %.2f\n", med(func(r roundRatios) float64 { return r.helloCPU }))
	fmt.Fprintf(out, "  /metrics scrape   %.1f x the CPU of one /hello\n", med(func(r roundRatios) float64 { return r.scrape }))
	sh, se, sb := median(starts[hello]), median(starts[echo]), median(starts[bare])
	fmt.Fprintf(out, "start to first 200, median of %d starts: hello %s, echo %s, bare %s; hello/bare %.2f, echo/bare %.2f\n",
		s.starts, round(sh), round(se), round(sb), float64(sh)/float64(sb), float64(se)/float64(sb))
	fmt.Fprintf(out, "idle RSS after start and one request, largest of %d starts: hello %.1f MB, echo %.1f MB, bare %.1f MB\n",
		s.starts, float64(rss[hello])/1024, float64(rss[echo])/1024, float64(rss[bare])/1024)

	mods, err := moduleSizes(dir, servers)
	if err != nil {
		return fmt.Errorf("binary bytes by module: %w", err)
	}
	fmt.Fprintf(out, "\nbinary bytes by module (symbol sizes from go tool nm -size; \"other\" is the rest of the stripped file):\n")
	writeModuleTable(out, servers, mods)

	if s.svgDir != "" {
		if err := writeCharts(s.svgDir, rr, servers, mods); err != nil {
			return err
		}
		fmt.Fprintf(out, "\ncharts written to %s\n", s.svgDir)
	}
	return nil
}

// roundRatios are one round's figures, each a ratio of two servers
// measured back to back.
type roundRatios struct {
	helloRPS, echoRPS, helloEchoRPS float64
	helloP99, echoP99               float64
	helloCPU                        float64
	scrape                          float64 // CPU of one /metrics over one /hello
	idle                            float64
}

func mb(n int64) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

type server struct {
	name, pkg, bin string
	env            []string
	size           int64
	metrics        bool // serves /metrics, on METRICS_ADDR when it listens there
}

// build compiles the server as the image builds it, so the numbers are the
// shipped binary's.
func (s *server) build(dir string) error {
	s.bin = filepath.Join(dir, s.name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", s.bin, s.pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", s.pkg, err, b)
	}
	fi, err := os.Stat(s.bin)
	if err != nil {
		return err
	}
	s.size = fi.Size()
	return nil
}

type process struct {
	cmd               *exec.Cmd
	addr, metricsAddr string
}

func (s *server) start() (*process, time.Time, error) {
	port, err := freePort()
	if err != nil {
		return nil, time.Time{}, err
	}
	env := append(append(os.Environ(), s.env...), "PORT="+port)
	metricsAddr := ""
	if s.metrics {
		mport, err := freePort()
		if err != nil {
			return nil, time.Time{}, err
		}
		metricsAddr = "127.0.0.1:" + mport
		env = append(env, "METRICS_ADDR="+metricsAddr)
	}
	cmd := exec.Command(s.bin)
	cmd.Env = env
	// Logs go where a container runtime would take them, not to a terminal.
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer devnull.Close()
	cmd.Stdout, cmd.Stderr = devnull, devnull
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, time.Time{}, err
	}
	return &process{cmd: cmd, addr: "127.0.0.1:" + port, metricsAddr: metricsAddr}, t0, nil
}

// stop ends a server between rounds. Its exit status is not a result: a
// server that fails to stop is killed, and the next round starts anew.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func (p *process) waitListening(t0 time.Time) error {
	for {
		if c, err := net.Dial("tcp", p.addr); err == nil {
			c.Close()
			return nil
		}
		if time.Since(t0) > 10*time.Second {
			return errors.New("not listening after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// cost is the server CPU of one request of each kind, sent one at a time.
type cost struct {
	hello, metrics time.Duration
	idle           float64
}

// requestCost starts the server and measures the CPU it spends per GET
// /hello and per GET /metrics, each sent back to back on one keep-alive
// connection for window (metrics first when metricsFirst). /metrics is
// scraped on METRICS_ADDR when the server listens there, else on its port,
// so the command also measures commits from before METRICS_ADDR existed.
func (s *server) requestCost(window time.Duration, metricsFirst bool) (cost, error) {
	p, t0, err := s.start()
	if err != nil {
		return cost{}, err
	}
	defer p.stop()
	if err := p.waitListening(t0); err != nil {
		return cost{}, err
	}
	metricsAddr := p.addr
	if c, err := net.Dial("tcp", p.metricsAddr); p.metricsAddr != "" && err == nil {
		c.Close()
		metricsAddr = p.metricsAddr
	}
	kinds := []struct {
		addr, path string
		into       *time.Duration
	}{{p.addr, "/hello", nil}, {metricsAddr, "/metrics", nil}}
	var c cost
	kinds[0].into, kinds[1].into = &c.hello, &c.metrics
	if metricsFirst {
		kinds[0], kinds[1] = kinds[1], kinds[0]
	}
	var busy, total int64
	for _, k := range kinds {
		// Warm up: first scrapes and requests build series and buffers.
		if _, err := sequential(k.addr, k.path, window/5); err != nil {
			return cost{}, err
		}
		before, err := sampleCPU(p.cmd.Process.Pid)
		if err != nil {
			return cost{}, err
		}
		n, err := sequential(k.addr, k.path, window)
		if err != nil {
			return cost{}, err
		}
		after, err := sampleCPU(p.cmd.Process.Pid)
		if err != nil {
			return cost{}, err
		}
		*k.into = (after.process - before.process) / time.Duration(n)
		busy += after.busy - before.busy
		total += after.total - before.total
	}
	if total > 0 {
		c.idle = 1 - float64(busy)/float64(total)
	}
	return c, nil
}

// sequential sends GET path on one keep-alive connection, one request at a
// time, for d, and returns how many 200s came back.
func sequential(addr, path string, d time.Duration) (int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: hellobench\r\n\r\n")
	n := 0
	for start := time.Now(); time.Since(start) < d; n++ {
		if _, err := conn.Write(req); err != nil {
			return n, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return n, fmt.Errorf("GET %s: %w", path, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return n, fmt.Errorf("GET %s: %w", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			return n, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
	}
	return n, nil
}

// startOnce times one start to the first 200 on /hello, then reads the
// resident memory after a second of idling.
func (s *server) startOnce() (time.Duration, int, error) {
	p, t0, err := s.start()
	if err != nil {
		return 0, 0, err
	}
	defer p.stop()
	for time.Since(t0) < 10*time.Second {
		if c, err := net.Dial("tcp", p.addr); err == nil {
			ok := oneRequest(bufio.NewReader(c), c) == nil
			c.Close()
			if ok {
				d := time.Since(t0)
				time.Sleep(time.Second)
				kb, err := rssKB(p.cmd.Process.Pid)
				return d, kb, err
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	return 0, 0, errors.New("no 200 within 10s")
}

type loadResult struct {
	rps      float64
	requests int
	p50, p99 time.Duration
	errors   int
	// cpuPerReq is the server process's CPU time (user+system) per
	// request, and idle the share of the machine's CPU left idle: together
	// they say whether a ratio comes from work or from waiting.
	cpuPerReq time.Duration
	idle      float64
}

func (s *server) load(set settings) (loadResult, error) {
	p, t0, err := s.start()
	if err != nil {
		return loadResult{}, err
	}
	defer p.stop()
	if err := p.waitListening(t0); err != nil {
		return loadResult{}, err
	}
	if set.warmup > 0 {
		if _, err := loadFor(p.addr, set.concurrency, set.warmup); err != nil {
			return loadResult{}, err
		}
	}
	before, err := sampleCPU(p.cmd.Process.Pid)
	if err != nil {
		return loadResult{}, err
	}
	res, err := loadFor(p.addr, set.concurrency, set.duration)
	if err != nil {
		return loadResult{}, err
	}
	after, err := sampleCPU(p.cmd.Process.Pid)
	if err != nil {
		return loadResult{}, err
	}
	res.cpuPerReq = time.Duration(float64(after.process-before.process) / (res.rps * set.duration.Seconds()))
	if after.total > before.total {
		res.idle = 1 - float64(after.busy-before.busy)/float64(after.total-before.total)
	}
	return res, nil
}

// cpuSample is the CPU a process and the whole machine have used so far.
type cpuSample struct {
	process     time.Duration
	busy, total int64 // machine ticks
}

func sampleCPU(pid int) (cpuSample, error) {
	var s cpuSample
	var err error
	if s.process, err = processCPU(pid); err != nil {
		return s, err
	}
	s.busy, s.total, err = machineCPU()
	return s, err
}

// clockTick is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports (reading it needs sysconf, which needs cgo).
const clockTick = 10 * time.Millisecond

// processCPU is the user+system CPU time pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may hold spaces; fields after it
	// start at the state, field 3, so utime (14) and stime (15) are 11, 12.
	_, rest, ok := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// machineCPU is the busy and total CPU ticks of the whole machine so far.
func machineCPU() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	var idle int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return total - idle, total, nil
}

// loadFor keeps concurrency connections busy for d, one request at a
// time on each, and records every latency. It speaks HTTP/1.1 directly so
// that the client costs less CPU than either server.
func loadFor(addr string, concurrency int, d time.Duration) (loadResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	lat := make([][]time.Duration, concurrency)
	errs := make([]int, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range concurrency {
		wg.Go(func() {
			var conn net.Conn
			var br *bufio.Reader
			for ctx.Err() == nil {
				if conn == nil {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						errs[i]++
						time.Sleep(time.Millisecond)
						continue
					}
					conn, br = c, bufio.NewReader(c)
				}
				t0 := time.Now()
				if err := oneRequest(br, conn); err != nil {
					errs[i]++
					conn.Close()
					conn = nil
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
			if conn != nil {
				conn.Close()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return loadResult{}, errors.New("no request succeeded")
	}
	slices.Sort(all)
	res := loadResult{
		rps:      float64(len(all)) / elapsed.Seconds(),
		requests: len(all),
		p50:      all[len(all)*50/100],
		p99:      all[len(all)*99/100],
	}
	for _, e := range errs {
		res.errors += e
	}
	return res, nil
}

var request = []byte("GET /hello HTTP/1.1\r\nHost: bench\r\nUser-Agent: hellobench\r\n\r\n")

// oneRequest sends GET /hello and reads the response, which must be a 200
// with the body Hello!.
func oneRequest(br *bufio.Reader, w io.Writer) error {
	if _, err := w.Write(request); err != nil {
		return err
	}
	status, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", status)
	}
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			length, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return err
			}
		}
	}
	if length != len("Hello!") {
		return fmt.Errorf("Content-Length %d", length)
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(br, body); err != nil {
		return err
	}
	if string(body) != "Hello!" {
		return fmt.Errorf("body %q", body)
	}
	return nil
}

func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
