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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
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
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	hello, echo, bare := newServers()
	servers := []*server{hello, echo, bare}
	for _, srv := range servers {
		if err := srv.build(root, dir); err != nil {
			return err
		}
	}

	fmt.Fprintf(out, "hellobench: hello = this service; echo = bare echo hello; bare = bare net/http hello\n")
	fmt.Fprintf(out, "%s, %s, %s/%s, %d CPUs, %s\n", describeCommit(root), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(out, "%d rounds x %s, %d connections, GET /hello, load generator in this process\n\n", s.rounds, s.duration, s.concurrency)
	fmt.Fprintf(out, "binary (CGO_ENABLED=0 -trimpath -ldflags='-s -w'): hello %s, echo %s, bare %s; hello/echo %.2f, hello/bare %.2f\n\n",
		mb(hello.size), mb(echo.size), mb(bare.size), float64(hello.size)/float64(echo.size), float64(hello.size)/float64(bare.size))

	fmt.Fprintf(out, "%-6s %-6s %10s %9s %9s %8s %12s %6s\n", "round", "server", "req/s", "p50", "p99", "errors", "server CPU", "idle")
	var rr []roundRatios
	for r := range s.rounds {
		order := rotated(servers, r)
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

	// Starts are timed back to back, and idle RSS read in a pass of its
	// own: on a VM whose idle vCPUs sleep, a start after a second of idling
	// measured 8x slower (bare: 3 ms back to back, 25 ms after 1 s idle),
	// which times the machine's wake-up rather than the server.
	starts := map[*server][]time.Duration{}
	rss := map[*server]int{}
	for i := range s.starts {
		for _, srv := range rotated(servers, i) {
			p, d, err := srv.start()
			if err != nil {
				return fmt.Errorf("start %s: %w", srv.name, err)
			}
			p.stop()
			starts[srv] = append(starts[srv], d)
		}
	}
	for i := range s.starts {
		for _, srv := range rotated(servers, i) {
			kb, err := srv.idleRSS()
			if err != nil {
				return fmt.Errorf("idle RSS of %s: %w", srv.name, err)
			}
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

	mods, err := moduleSizes(root, dir, servers)
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

// describeCommit names the commit the servers were built from, and says if
// the tree had changes on top of it: a figure is only as good as knowing
// what it measured.
func describeCommit(root string) string {
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		return "commit unknown (not a git checkout)"
	}
	s := "commit " + strings.TrimSpace(string(head))
	if st, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		s += " with uncommitted changes"
	}
	return s
}

// rotated is servers in the order of round i: each starts a round first in
// turn, so no server always runs right after the same other one.
func rotated(servers []*server, i int) []*server {
	k := i % len(servers)
	return slices.Concat(servers[k:], servers[:k])
}
