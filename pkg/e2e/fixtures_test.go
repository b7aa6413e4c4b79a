package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/airgap"
)

// fixture is the air-gapped world every end-to-end test builds against.
type fixture struct {
	Registry *airgap.Registry
	// Base is the offline distroless stand-in, "127.0.0.1:PORT/distroless/static@sha256:...".
	Base string
	// Ko returns the ko CLI for the module checked out at dir, pushing
	// under Registry and building FROM Base.
	Ko func(dir string) airgap.Ko
}

// Shared state: started at most once per test binary, torn down by TestMain.
var (
	mu         sync.Mutex
	fix        *fixture
	fixErr     error
	dock       *airgap.Docker
	dockErr    error
	cleanups   []func() error
	rootOnce   sync.Once
	root       string
	rootErr    error
	setupLimit = 2 * time.Minute
)

// harness returns the shared registry and base, starting them on first use.
func harness(t *testing.T) *fixture {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if fix == nil && fixErr == nil {
		fix, fixErr = startHarness()
	}
	if fixErr != nil {
		t.Fatalf("air-gapped harness: %v", fixErr)
	}
	return fix
}

func startHarness() (*fixture, error) {
	reg, err := airgap.StartRegistry()
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, reg.Close)
	ctx, cancel := context.WithTimeout(context.Background(), setupLimit)
	defer cancel()
	base, err := airgap.PushBase(ctx, reg.Host()+"/distroless/static")
	if err != nil {
		return nil, err
	}
	return &fixture{
		Registry: reg,
		Base:     base,
		Ko: func(dir string) airgap.Ko {
			return airgap.Ko{Dir: dir, DockerRepo: reg.Host() + "/kobuilt", BaseImage: base}
		},
	}, nil
}

// dockerd returns the shared Docker daemon, starting one on first use; it
// skips (or fails in CI) when Docker is not installed.
func dockerd(t *testing.T) *airgap.Docker {
	t.Helper()
	ok, why := airgap.DockerAvailable()
	airgap.Need(t, ok, "Docker ("+why+")", airgap.DockerInstallHint)
	mu.Lock()
	defer mu.Unlock()
	if dock == nil && dockErr == nil {
		dock, dockErr = startDocker()
	}
	if dockErr != nil {
		t.Fatalf("docker daemon: %v", dockErr)
	}
	return dock
}

func startDocker() (*airgap.Docker, error) {
	// Short on purpose: the daemon's unix sockets live under it.
	dir, err := os.MkdirTemp("", "e2e-docker")
	if err != nil {
		return nil, fmt.Errorf("docker dir: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupLimit)
	defer cancel()
	d, err := airgap.StartDocker(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cleanups = append(cleanups, func() error {
		err := d.Close()
		return errors.Join(err, os.RemoveAll(dir))
	})
	return d, nil
}

// repoRoot is the directory holding this module's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			rootErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			rootErr = fmt.Errorf("not inside a Go module")
			return
		}
		root = filepath.Dir(gomod)
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return root
}

// addCleanup registers f to run once at the end of the test binary, after
// every test, in reverse order of registration.
func addCleanup(f func() error) {
	mu.Lock()
	defer mu.Unlock()
	cleanups = append(cleanups, f)
}

// teardown runs every cleanup, newest first, and reports all failures.
func teardown() error {
	mu.Lock()
	defer mu.Unlock()
	var errs []error
	for i := len(cleanups) - 1; i >= 0; i-- {
		errs = append(errs, cleanups[i]())
	}
	cleanups = nil
	return errors.Join(errs...)
}

// run executes cmd and returns its stdout; on failure the error carries
// stderr, which is where ko and docker explain themselves.
func run(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail(stderr.String(), 4000))
	}
	return stdout.String(), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
