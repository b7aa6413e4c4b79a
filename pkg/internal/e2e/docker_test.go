package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/internal/airgap"
)

// TestDockerRun loads the ko image into Docker and runs it the way the
// README tells users to (runLikeUsers).
func TestDockerRun(t *testing.T) {
	d := dockerd(t)
	b := helloImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	tag := "kobuilt-e2e/hello:" + b.Commit[:12]
	loadKoImage(t, ctx, d, b, tag)

	runLikeUsers(t, ctx, d, tag, koStamp(t, repoRoot(t), b.Commit, b.Dirty))
}

// runLikeUsers runs image the way the README tells users to, locked down:
// read-only root, no capabilities, no privilege escalation, host network on
// a free port. It must answer /hello and /version (want), run as 65532, and
// on `docker stop` drain, log both shutdown phases and exit 0 before Docker
// would SIGKILL. The ko image and the Dockerfile image both go through it.
func runLikeUsers(t *testing.T, ctx context.Context, d *airgap.Docker, image string, want stamp) {
	t.Helper()
	const drain, stopTimeout = 2 * time.Second, 20 * time.Second
	port := freePort(t)
	container := fmt.Sprintf("hello-e2e-%d", port)
	out, err := run(d.Command(ctx, "run", "--detach", "--name", container,
		"--network", "host", // no bridge on these daemons; loopback only
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--env", fmt.Sprintf("PORT=%d", port),
		"--env", "DRAIN_DELAY="+drain.String(),
		image))
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	t.Cleanup(func() {
		if _, err := run(d.Command(context.Background(), "rm", "--force", "--volumes", id)); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	logs := func() string {
		// The app logs to stdout; docker errors, if any, go to stderr.
		out, err := d.Command(context.Background(), "logs", id).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("docker logs: %v: %s", err, out)
		}
		return string(out)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	readyCtx, readyCancel := context.WithTimeout(ctx, 60*time.Second)
	defer readyCancel()
	if err := waitHTTP(readyCtx, base+"/readyz", nil); err != nil {
		t.Fatalf("%v\ncontainer logs:\n%s", err, logs())
	}
	if body := get(t, base+"/hello"); body != "Hello!" {
		t.Errorf("GET /hello = %q, want Hello!", body)
	}
	checkVersion(t, base, want)

	user, err := run(d.Command(ctx, "inspect", "--format", "{{.Config.User}}", id))
	if err != nil {
		t.Fatal(err)
	}
	// ko sets the base's "65532"; the Dockerfile says "65532:65532".
	if u := strings.TrimSpace(user); u != "65532" && u != "65532:65532" {
		t.Errorf("container runs as %q, want 65532", u)
	}

	start := time.Now()
	if _, err := run(d.Command(ctx, "stop", "--time", fmt.Sprint(int(stopTimeout.Seconds())), id)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	state, err := run(d.Command(ctx, "inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", id))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(state); got != "0 false" {
		t.Errorf("after docker stop: exit code and OOMKilled = %q, want \"0 false\"\nlogs:\n%s", got, logs())
	}
	if took < drain {
		t.Errorf("stopped in %v, less than the %v drain delay: it did not drain", took, drain)
	}
	if took >= stopTimeout {
		t.Errorf("stop took %v: Docker had to SIGKILL after the %v timeout", took, stopTimeout)
	}
	l := logs()
	for _, want := range []string{"shutdown: draining", "shutdown: complete"} {
		if !strings.Contains(l, want) {
			t.Errorf("container logs lack %q:\n%s", want, l)
		}
	}
	t.Logf("docker stop took %v (drain %v, timeout %v)", took.Round(time.Millisecond), drain, stopTimeout)
}
