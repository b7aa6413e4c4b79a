package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type server struct {
	name, bin string
	pkg       string // relative to the module root: ./cmd/hello
	env       []string
	size      int64
	metrics   bool // serves /metrics, on METRICS_ADDR when it listens there
}

// newServers are the three servers hellobench compares. They are named
// relative to the module root, never by import path, so that a copy of this
// repository under another module path (gonew) measures itself unchanged.
func newServers() (hello, echo, bare *server) {
	return &server{name: "hello", pkg: "./cmd/hello", env: []string{"DRAIN_DELAY=0s"}, metrics: true},
		&server{name: "echo", pkg: "./pkg/internal/cmd/hellobench/bareecho"},
		&server{name: "bare", pkg: "./pkg/internal/cmd/hellobench/bare"}
}

// moduleRoot is the directory of the go.mod above the working directory,
// which the servers' package paths are relative to.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run it inside the module: no go.mod above the working directory")
	}
	return filepath.Dir(gomod), nil
}

// build compiles the server in the module at root into dir as the image
// builds it, so the numbers are the shipped binary's.
func (s *server) build(root, dir string) error {
	s.bin = filepath.Join(dir, s.name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", s.bin, s.pkg)
	cmd.Dir = root
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

// start starts the server and waits for its first 200 on /hello; it returns
// the process and how long that took.
func (s *server) start() (*process, time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	env := append(append(os.Environ(), s.env...), "PORT="+port)
	metricsAddr := ""
	if s.metrics {
		mport, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		metricsAddr = "127.0.0.1:" + mport
		env = append(env, "METRICS_ADDR="+metricsAddr)
	}
	cmd := exec.Command(s.bin)
	cmd.Env = env
	// Logs go where a container runtime would take them, not to a terminal.
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, 0, err
	}
	defer devnull.Close()
	cmd.Stdout, cmd.Stderr = devnull, devnull
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	p := &process{cmd: cmd, addr: "127.0.0.1:" + port, metricsAddr: metricsAddr}
	d, err := p.waitListening(t0)
	if err != nil {
		p.stop()
		return nil, 0, err
	}
	return p, d, nil
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

// waitListening waits until the server started at t0 answers a request,
// for at most 10 s, and returns how long that took from t0.
func (p *process) waitListening(t0 time.Time) (time.Duration, error) {
	for time.Since(t0) < 10*time.Second {
		// A request answered, not just a connection accepted: hello
		// listens on its port before it has opened its metrics port.
		if c, err := net.Dial("tcp", p.addr); err == nil {
			ok := oneRequest(bufio.NewReader(c), c) == nil
			c.Close()
			if ok {
				return time.Since(t0), nil
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	return 0, errors.New("no 200 within 10s")
}

// idleRSS starts the server and reads its resident memory after a second
// of idling.
func (s *server) idleRSS() (int, error) {
	p, _, err := s.start()
	if err != nil {
		return 0, err
	}
	defer p.stop()
	time.Sleep(time.Second)
	return rssKB(p.cmd.Process.Pid)
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
