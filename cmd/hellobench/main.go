// Command hellobench measures hello against a bare net/http server on the
// same machine in one run: throughput and latency under the same load,
// idle memory, and time from start to the first 200.
//
//	go run ./cmd/hellobench
//
// The two servers take turns over several rounds and the verdict uses the
// median of the per-round ratios, because a shared 2-core machine swings
// by ±15% from one minute to the next.
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
	rounds, concurrency, starts int
	duration, warmup            time.Duration
}

func run(args []string, out io.Writer) error {
	var s settings
	fs := flag.NewFlagSet("hellobench", flag.ContinueOnError)
	fs.IntVar(&s.rounds, "rounds", 5, "load rounds per server, interleaved")
	fs.DurationVar(&s.duration, "duration", 3*time.Second, "load duration of one round")
	fs.DurationVar(&s.warmup, "warmup", 500*time.Millisecond, "load before each measured round")
	fs.IntVar(&s.concurrency, "concurrency", 16, "keep-alive connections, one request in flight on each")
	fs.IntVar(&s.starts, "starts", 15, "process starts timed per server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.rounds < 1 || s.concurrency < 1 || s.starts < 1 || s.duration <= 0 || s.warmup < 0 {
		return errors.New("rounds, concurrency and starts must be at least 1 and duration positive")
	}

	dir, err := os.MkdirTemp("", "hellobench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	servers := []server{
		{name: "hello", pkg: "github.com/kobuilt/hello/cmd/hello", env: []string{"DRAIN_DELAY=0s"}},
		{name: "bare", pkg: "github.com/kobuilt/hello/cmd/hellobench/bare"},
	}
	for i := range servers {
		servers[i].bin = filepath.Join(dir, servers[i].name)
		// Built as the image builds it, so the numbers are the shipped binary's.
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", servers[i].bin, servers[i].pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", servers[i].pkg, err, b)
		}
	}
	hello, bare := &servers[0], &servers[1]
	fmt.Fprintf(out, "hellobench: %d rounds x %s, %d connections, GET /hello, load generator in this process\n\n", s.rounds, s.duration, s.concurrency)
	fmt.Fprintf(out, "%-6s %-6s %10s %9s %9s %8s %12s %6s\n", "round", "server", "req/s", "p50", "p99", "errors", "server CPU", "idle")

	var rpsRatios, p99Ratios []float64
	for r := range s.rounds {
		order := []*server{hello, bare}
		if r%2 == 1 {
			order = []*server{bare, hello}
		}
		results := map[string]loadResult{}
		for _, srv := range order {
			res, err := srv.load(s)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, srv.name, err)
			}
			results[srv.name] = res
			fmt.Fprintf(out, "%-6d %-6s %10.0f %9s %9s %8d %8.1fµs/r %5.0f%%\n", r+1, srv.name, res.rps, round(res.p50), round(res.p99), res.errors,
				float64(res.cpuPerReq)/float64(time.Microsecond), 100*res.idle)
		}
		rpsRatios = append(rpsRatios, results["hello"].rps/results["bare"].rps)
		p99Ratios = append(p99Ratios, float64(results["hello"].p99)/float64(results["bare"].p99))
	}

	var starts [2][]time.Duration
	var rss [2]int
	for i := range s.starts {
		for j, srv := range []*server{hello, bare} {
			if i%2 == 1 {
				srv = []*server{bare, hello}[j]
			}
			d, kb, err := srv.startOnce()
			if err != nil {
				return fmt.Errorf("start %s: %w", srv.name, err)
			}
			k := 0
			if srv == bare {
				k = 1
			}
			starts[k] = append(starts[k], d)
			rss[k] = max(rss[k], kb)
		}
	}
	startHello, startBare := median(starts[0]), median(starts[1])

	fmt.Fprintf(out, "\nmedian of %d per-round ratios, hello / bare:\n", s.rounds)
	fmt.Fprintf(out, "  throughput  %.2f   (target >= 0.90)\n", medianF(rpsRatios))
	fmt.Fprintf(out, "  p99 latency %.2f   (target <= 1.30)\n", medianF(p99Ratios))
	fmt.Fprintf(out, "start to first 200, median of %d starts: hello %s, bare %s, ratio %.2f (target <= 1.30)\n",
		s.starts, round(startHello), round(startBare), float64(startHello)/float64(startBare))
	fmt.Fprintf(out, "idle RSS after start and one request, largest of %d starts: hello %.1f MB, bare %.1f MB (target hello <= 12 MB)\n",
		s.starts, float64(rss[0])/1024, float64(rss[1])/1024)
	return nil
}

type server struct {
	name, pkg, bin string
	env            []string
}

type process struct {
	cmd  *exec.Cmd
	addr string
}

func (s *server) start() (*process, time.Time, error) {
	port, err := freePort()
	if err != nil {
		return nil, time.Time{}, err
	}
	cmd := exec.Command(s.bin)
	cmd.Env = append(append(os.Environ(), s.env...), "PORT="+port)
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
	return &process{cmd: cmd, addr: "127.0.0.1:" + port}, t0, nil
}

func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
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
	for {
		if c, err := net.Dial("tcp", p.addr); err == nil {
			c.Close()
			break
		}
		if time.Since(t0) > 10*time.Second {
			return loadResult{}, errors.New("not listening after 10s")
		}
		time.Sleep(time.Millisecond)
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
		rps: float64(len(all)) / elapsed.Seconds(),
		p50: all[len(all)*50/100],
		p99: all[len(all)*99/100],
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
