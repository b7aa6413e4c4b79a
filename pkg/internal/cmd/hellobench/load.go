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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

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
	p, _, err := s.start()
	if err != nil {
		return loadResult{}, err
	}
	defer p.stop()
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

// cpuSample is the CPU a process and the whole machine have used so far,
// read from /proc (proc_linux.go).
type cpuSample struct {
	process     time.Duration
	busy, total int64 // machine ticks
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
	p, _, err := s.start()
	if err != nil {
		return cost{}, err
	}
	defer p.stop()
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
