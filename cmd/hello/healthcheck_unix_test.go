//go:build unix

package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// The real binary, as Docker runs it: `hello healthcheck` with the
// container's environment exits 0 while the server answers, and 1 with one
// line on stderr once the server's process is stopped (SIGSTOP), then 0
// again after SIGCONT.
func TestHealthcheckBinaryFollowsTheServer(t *testing.T) {
	p := startBinary(t)
	_, port, _ := net.SplitHostPort(p.addr)
	check := func() (int, string) {
		t.Helper()
		cmd := exec.Command(binary(t), "healthcheck")
		cmd.Env = append(os.Environ(), "PORT="+port)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		if stdout.Len() != 0 {
			t.Errorf("stdout = %q, want nothing", stdout.String())
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}

	if code, stderr := check(); code != 0 || stderr != "" {
		t.Fatalf("running server: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	code, stderr := check()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "hello: healthcheck: ") {
		t.Errorf("stopped server: exit %d, stderr %q; want 1 and one line", code, stderr)
	}
	t.Logf("stopped server: exit %d: %s", code, strings.TrimSpace(stderr))
	if code, stderr := check(); code != 0 {
		t.Errorf("resumed server: exit %d, stderr %q; want 0", code, stderr)
	}
}
