package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/config"
	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// TestHeaderFloodStaysUnderThePodMemoryLimit: a header flood (connections
// that send a request line and a long header and never finish the block)
// cannot make the service go over its Pod's memory limit, on the service
// port or the metrics port. The image's binary runs in a real memory cgroup
// with the limit and the environment config/deployment.yaml gives it; 3,000
// connections each hold an unfinished header block of the largest size
// served, then of 30 KB; afterwards no OOM kill has happened and /healthz
// and /hello answer at once. Past the connection cap each new connection
// evicts an idle one, so the floods churn too.
func TestHeaderFloodStaysUnderThePodMemoryLimit(t *testing.T) {
	testenv.Need(t, os.Geteuid() == 0, "root (to create a memory cgroup)", "run the tests as root")
	pod := deploymentPod(t, loadConfig(t, repoRoot(t))["Deployment"])
	cg := newMemoryCgroup(t, pod.memoryLimit)
	// The Pod's environment, but for where to listen.
	service := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$0" && exec "$1" --addr "$2" --metrics-addr "$3"`, cg.procs, imageBinary(t), service, metrics)
	cmd.Env = pod.env
	exited, logs := startService(t, cmd, service)

	maxHeader := config.Default().MaxHeaderBytes
	for _, kv := range pod.env {
		if v, ok := strings.CutPrefix(kv, "MAX_HEADER_BYTES="); ok {
			maxHeader, _ = strconv.Atoi(v)
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for _, target := range []struct{ name, addr string }{{"service port", service}, {"metrics port", metrics}} {
		for _, size := range []int{maxHeader, 30 << 10} {
			conns := flood(target.addr, 3000, size)
			// The service answers right after, the flood still connected:
			// within the 500 ms net/http holds each connection it answered
			// 431, busy, before closing it (the cap refuses new ones then).
			for _, path := range []string{"/healthz", "/hello"} {
				took, err := answersWithin(2*time.Second, func() error {
					resp, err := client.Get("http://" + service + path)
					if err != nil {
						return err
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						return fmt.Errorf("status %d", resp.StatusCode)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("after a flood of %d-byte headers on the %s: GET %s: %v (OOM kills: %d)\n%s",
						size, target.name, path, err, cg.oomKills(), logs.String())
				}
				t.Logf("GET %s answered %s after the flood of %d-byte blocks on the %s", path, took.Round(time.Millisecond), size, target.name)
			}
			for _, c := range conns {
				c.Close()
			}
			t.Logf("3,000 connections x %d-byte unfinished header blocks on the %s: peak %.1f MiB of the %d MiB limit, %d OOM kills",
				size, target.name, float64(cg.peak(t))/(1<<20), pod.memoryLimit>>20, cg.oomKills())
			cg.resetPeak()
		}
	}
	if n := cg.oomKills(); n != 0 {
		t.Errorf("%d OOM kills in the Pod's memory cgroup", n)
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("the service exited during the floods: %v\n%s", err, logs.String())
	default:
	}
}

// TestMemoryPerConnectionFitsTheBudget measures what one connection holds
// with an unfinished header block of each size pending, and checks it
// against the per-connection budget cmd/hello sizes MAX_CONNECTIONS by
// (connectionBytes: 16 KiB + 2 x MAX_HEADER_BYTES, where MAX_HEADER_BYTES
// is at least 8 KiB and at least the block). The image's binary runs in a
// memory cgroup large enough that no connection cap or GC pressure
// shapes the result; each size gets a fresh process, and the figure is
// the cgroup's growth over 1,000 connections.
func TestMemoryPerConnectionFitsTheBudget(t *testing.T) {
	testenv.Need(t, os.Geteuid() == 0, "root (to create a memory cgroup)", "run the tests as root")
	const conns, limit = 1000, 256 << 20
	bin := imageBinary(t)
	for _, size := range []int{0, 8 << 10, 16 << 10, 30 << 10} {
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			cg := newMemoryCgroup(t, limit)
			service := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$0" && exec "$1" --addr "$2" --metrics-addr "$3"`, cg.procs, bin, service, metrics)
			// A header timeout long enough that no connection is closed while
			// it is measured.
			cmd.Env = []string{"MAX_CONNECTIONS=1024", "MAX_HEADER_BYTES=32768", "READ_HEADER_TIMEOUT=60s", "LOG_LEVEL=error", "GOGC=10"}
			startService(t, cmd, service)
			base := cg.settledUsage(t)

			opened := flood(service, conns, size)
			defer func() {
				for _, c := range opened {
					c.Close()
				}
			}()
			if len(opened) != conns {
				t.Fatalf("%d of %d connections opened", len(opened), conns)
			}
			// At least: the connection that found the service ready may
			// still be open too.
			if _, err := answersWithin(30*time.Second, func() error {
				if open := metricValue(get(t, "http://"+metrics+"/metrics"), "http_connections_open"); open < conns {
					return fmt.Errorf("the service had %d of the %d connections open", open, conns)
				}
				return nil
			}); err != nil {
				t.Fatalf("after 30 s: %v", err)
			}
			each := float64(cg.settledUsage(t)-base) / conns
			budget := 16<<10 + 2*max(8<<10, size)
			t.Logf("%d connections with a %d-byte unfinished header block each: %.1f KiB per connection (budget %d KiB)", conns, size, each/1024, budget>>10)
			if each > float64(budget) {
				t.Errorf("a connection with a %d-byte block pending holds %.1f KiB, more than the %d KiB cmd/hello budgets for it: MAX_CONNECTIONS would not fit the memory limit", size, each/1024, budget>>10)
			}
		})
	}
}

// imageBinary is the image's binary for this machine, written to a file.
func imageBinary(t *testing.T) string {
	t.Helper()
	img, _ := platformImage(t, remoteIndex(t, helloImage(t).Ref), "linux/"+runtime.GOARCH)
	bin := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(bin, flatten(t, img).binary, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// startService starts cmd, the service, and waits until /healthz answers
// on addr; the test's cleanup kills it. It returns the channel that gets
// cmd's exit and the service's output so far.
func startService(t *testing.T, cmd *exec.Cmd, addr string) (chan error, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitHTTP(ctx, "http://"+addr+"/healthz", exited); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	return exited, &logs
}

// answersWithin calls get until it succeeds, for at most d, and says how
// long that took, or the last error.
func answersWithin(d time.Duration, get func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := get()
		if err == nil || time.Since(start) > d {
			return time.Since(start), err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flood opens n connections to addr, 200 at a time, and on each sends a
// request line, Host and one header that make the block size bytes long
// without the blank line that would end it. It returns the connections
// opened; the server may have closed some of them to make room.
func flood(addr string, n, size int) []net.Conn {
	head := "GET /hello HTTP/1.1\r\nHost: hello\r\nX-Flood: "
	block := head + strings.Repeat("a", max(0, size-len(head)-4)) + "\r\n" // -4: the \r\n\r\n that never comes
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return
			}
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(c, block) // the server may have closed it to make room
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	return conns
}

type podSpec struct {
	memoryLimit int64
	env         []string // the container's environment, resource references resolved
}

// deploymentPod reads the memory limit and environment of the hello
// container from the Deployment in config/.
func deploymentPod(t *testing.T, d object) podSpec {
	t.Helper()
	c := lookup(d, "spec", "template", "spec", "containers", 0)
	if lookup(c, "name") != "hello" {
		t.Fatal("the Deployment's first container is not hello")
	}
	limit, _ := lookup(c, "resources", "limits", "memory").(string)
	p := podSpec{memoryLimit: quantity(t, limit)}
	for _, e := range lookupSlice(c, "env") {
		name, _ := lookup(e, "name").(string)
		switch {
		case lookup(e, "valueFrom") == nil:
			p.env = append(p.env, fmt.Sprintf("%s=%v", name, lookup(e, "value")))
		case lookup(e, "valueFrom", "resourceFieldRef", "resource") == "limits.memory":
			p.env = append(p.env, name+"="+strconv.FormatInt(p.memoryLimit, 10))
		default:
			t.Fatalf("config/deployment.yaml: env %s comes from something this test cannot resolve", name)
		}
	}
	return p
}

// quantity parses a Kubernetes memory quantity with a binary suffix.
func quantity(t *testing.T, q string) int64 {
	t.Helper()
	for i, suffix := range []string{"Ki", "Mi", "Gi"} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			if v, err := strconv.ParseInt(n, 10, 64); err == nil {
				return v << (10 * (i + 1))
			}
		}
	}
	t.Fatalf("memory limit %q: want a whole number of Ki, Mi or Gi", q)
	return 0
}

// memoryCgroup is a memory cgroup of the test's own, v1 or v2.
type memoryCgroup struct {
	dir, procs string
	v1         bool
}

func newMemoryCgroup(t *testing.T, limit int64) *memoryCgroup {
	t.Helper()
	cg := &memoryCgroup{}
	name := fmt.Sprintf("hello-e2e-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		cg.dir, cg.v1 = filepath.Join("/sys/fs/cgroup/memory", name), true
	} else {
		cg.dir = filepath.Join("/sys/fs/cgroup", name)
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		testenv.Need(t, false, "a memory cgroup to create ("+err.Error()+")", "run the tests as root on Linux with the memory controller")
	}
	t.Cleanup(func() {
		// Cleanups run newest first: the process has been killed; its
		// cgroup empties once the kernel has reaped it.
		for deadline := time.Now().Add(10 * time.Second); os.Remove(cg.dir) != nil && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	})
	cg.procs = filepath.Join(cg.dir, "cgroup.procs")
	limitFile := "memory.max"
	if cg.v1 {
		limitFile = "memory.limit_in_bytes"
	}
	if err := os.WriteFile(filepath.Join(cg.dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		t.Fatal(err)
	}
	if cg.v1 { // no swap to spill to, as in a Pod
		_ = os.WriteFile(filepath.Join(cg.dir, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644)
	}
	return cg
}

// readSize reads one of the cgroup's files that holds a number of bytes: v2
// is its name under cgroup v2, v1 under v1.
func (cg *memoryCgroup) readSize(t *testing.T, v2, v1 string) int64 {
	t.Helper()
	file := v2
	if cg.v1 {
		file = v1
	}
	b, err := os.ReadFile(filepath.Join(cg.dir, file))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s/%s: %v", cg.dir, file, err)
	}
	return n
}

// limit is the cgroup's memory limit in bytes.
func (cg *memoryCgroup) limit(t *testing.T) int64 {
	return cg.readSize(t, "memory.max", "memory.limit_in_bytes")
}

// oomKills is the number of processes the kernel has killed in the cgroup
// for want of memory.
func (cg *memoryCgroup) oomKills() int {
	file := "memory.events"
	if cg.v1 {
		file = "memory.oom_control"
	}
	b, _ := os.ReadFile(filepath.Join(cg.dir, file))
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// peak is the most memory the cgroup has used since it was made or reset.
func (cg *memoryCgroup) peak(t *testing.T) int64 {
	return cg.readSize(t, "memory.peak", "memory.max_usage_in_bytes")
}

// settledUsage is the cgroup's memory use once it has stopped growing:
// two readings 200 ms apart within 64 KiB, for at most 10 s.
func (cg *memoryCgroup) settledUsage(t *testing.T) int64 {
	t.Helper()
	read := func() int64 { return cg.readSize(t, "memory.current", "memory.usage_in_bytes") }
	last := read()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		now := read()
		if now-last < 64<<10 && last-now < 64<<10 {
			return now
		}
		last = now
	}
	t.Fatalf("%s: memory use still changing after 10 s", cg.dir)
	return 0
}

func (cg *memoryCgroup) resetPeak() {
	file := "memory.peak" // writable since Linux 6.12
	if cg.v1 {
		file = "memory.max_usage_in_bytes"
	}
	_ = os.WriteFile(filepath.Join(cg.dir, file), []byte("0"), 0o644)
}
