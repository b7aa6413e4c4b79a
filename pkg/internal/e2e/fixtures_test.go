package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/internal/airgap"
	"github.com/kobuilt/hello/pkg/internal/proc"
	"github.com/kobuilt/hello/pkg/internal/testenv"
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

// Shared fixtures: each started at most once per test binary, on first use,
// and torn down by TestMain through the cleanups.
var (
	harnessOnce = sync.OnceValues(startHarness)
	dockerOnce  = sync.OnceValues(startDocker)
	rootOnce    = sync.OnceValues(moduleRoot)
	setupLimit  = 2 * time.Minute

	mu       sync.Mutex
	cleanups []func() error
)

// harness returns the shared registry and base, starting them on first use.
func harness(t *testing.T) *fixture {
	t.Helper()
	fix, err := harnessOnce()
	if err != nil {
		t.Fatalf("air-gapped harness: %v", err)
	}
	return fix
}

func startHarness() (*fixture, error) {
	reg, err := airgap.StartRegistry()
	if err != nil {
		return nil, err
	}
	addCleanup(reg.Close)
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
			return airgap.Ko{Dir: dir, DockerRepo: reg.Host() + "/kobuilt/hello", BaseImage: base}
		},
	}, nil
}

// dockerd returns the shared Docker daemon, starting one on first use; it
// skips (or fails in CI) when Docker is not installed.
func dockerd(t *testing.T) *airgap.Docker {
	t.Helper()
	ok, why := airgap.DockerAvailable()
	testenv.Need(t, ok, "Docker ("+why+")", airgap.DockerInstallHint)
	d, err := dockerOnce()
	if err != nil {
		t.Fatalf("docker daemon: %v", err)
	}
	return d
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
	addCleanup(func() error {
		err := d.Close()
		return errors.Join(err, os.RemoveAll(dir))
	})
	return d, nil
}

// repoRoot is the directory holding this module's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := rootOnce()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
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
		return stdout.String(), fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, proc.Tail(stderr.String(), 4000))
	}
	return stdout.String(), nil
}

// builtImage is cmd/hello built once by `go tool ko build` from the working
// tree and pushed to the harness registry; the image, Docker and Kubernetes
// tests all look at this one build.
type builtImage struct {
	Ref     string // "127.0.0.1:PORT/kobuilt/hello@sha256:..."
	Commit  string // git HEAD of the tree it was built from
	Dirty   bool   // the tree had uncommitted changes
	Stamp   stamp  // what /version serves and the labels say
	SBOMDir string // ko --sbom-dir output
	Elapsed time.Duration
}

// imageOnce builds it on first use.
var imageOnce = sync.OnceValues(func() (*builtImage, error) {
	h, err := harnessOnce()
	if err != nil {
		return nil, fmt.Errorf("air-gapped harness: %w", err)
	}
	dir, err := rootOnce()
	if err != nil {
		return nil, err
	}
	return buildHello(h, dir)
})

// sourceLabel is the repository the image says it was built from. The
// workflow passes ${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}; any URI does
// here.
const sourceLabel = "https://github.com/you/hello"

// ociLabels are the labels both images carry (docs/image.md, the workflow, Dockerfile.reference): where the
// source is, which commit, which version, and when, as the commit's date so that a rebuild is byte-identical.
func ociLabels(s stamp) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":   sourceLabel,
		"org.opencontainers.image.revision": s.Commit,
		"org.opencontainers.image.version":  s.Version,
		"org.opencontainers.image.created":  s.Date,
	}
}

// koBuildArgs is the build command users run (docs/image.md, workflow): the
// labels are the only thing passed on the command line (ko has no labels in
// .ko.yaml); flags, ldflags, platforms and base come from .ko.yaml.
func koBuildArgs(s stamp, extra ...string) []string {
	args := []string{"build", "--bare"}
	labels := ociLabels(s)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		args = append(args, "--image-label", k+"="+labels[k])
	}
	return append(append(args, extra...), "./cmd/hello")
}

// helloImage builds the image on first use.
func helloImage(t *testing.T) *builtImage {
	t.Helper()
	img, err := imageOnce()
	if err != nil {
		t.Fatalf("building the image: %v", err)
	}
	return img
}

func buildHello(h *fixture, dir string) (*builtImage, error) {
	commit, err := gitHead(dir)
	if err != nil {
		return nil, err
	}
	status, err := run(exec.Command("git", "-C", dir, "status", "--porcelain"))
	if err != nil {
		return nil, err
	}
	sbom, err := os.MkdirTemp("", "e2e-sbom")
	if err != nil {
		return nil, err
	}
	addCleanup(func() error { return os.RemoveAll(sbom) })
	dirty := strings.TrimSpace(status) != ""
	st, err := gitStamp(dir, commit, dirty)
	if err != nil {
		return nil, err
	}
	ref, elapsed, err := koBuild(h.Ko(dir), koBuildArgs(st, "--sbom-dir", sbom)...)
	if err != nil {
		return nil, err
	}
	return &builtImage{Ref: ref, Commit: commit, Dirty: dirty, Stamp: st, SBOMDir: sbom, Elapsed: elapsed}, nil
}

// koBuild runs `go tool ko` and returns the digest reference it printed.
func koBuild(k airgap.Ko, args ...string) (string, time.Duration, error) {
	// Two platforms on a 2-core CI machine, cold caches: minutes, not hours.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := run(k.Command(ctx, args...))
	elapsed := time.Since(start)
	if err != nil {
		return "", elapsed, err
	}
	fields := strings.Fields(out)
	if len(fields) == 0 {
		return "", elapsed, fmt.Errorf("ko printed no image reference")
	}
	ref := fields[len(fields)-1]
	if !strings.Contains(ref, "@sha256:") {
		return "", elapsed, fmt.Errorf("ko printed %q, not a digest reference", ref)
	}
	return ref, elapsed, nil
}

func gitHead(dir string) (string, error) {
	out, err := run(exec.Command("git", "-C", dir, "rev-parse", "HEAD"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}
