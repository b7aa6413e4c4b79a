package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kobuilt/hello/pkg/config"
	"github.com/kobuilt/hello/pkg/internal/airgap"
)

// loadCompose loads the project the way `docker compose` does when run in
// dir with no -f and no --project-directory: from dir as the current directory,
// with the same compose-go options in the same order as docker/compose's
// cmd/compose/compose.go (toProjectOptions), so COMPOSE_FILE in dir/.env is honoured
// exactly as Compose v2 honours it (a relative COMPOSE_FILE is resolved against the
// current directory). env stands in for the process environment Compose would see.
func loadCompose(t *testing.T, dir string, env ...string) *types.Project {
	t.Helper()
	t.Chdir(dir)
	opts, err := cli.NewProjectOptions(nil,
		cli.WithWorkingDirectory(""),
		cli.WithEnv(env),
		cli.WithEnv([]string{"PWD=" + dir}),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(),
		cli.WithName(""),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go cannot load the project in %s: %v", dir, err)
	}
	return p
}

// TestComposeFile checks .compose.yaml with compose-go, the library Compose v2 itself loads files with:
// found from the root through .env, valid, and locked down as the image is meant to run.
func TestComposeFile(t *testing.T) {
	root := repoRoot(t)
	p := loadCompose(t, root)
	if want := filepath.Join(root, ".compose.yaml"); !slices.Equal(p.ComposeFiles, []string{want}) {
		t.Fatalf("docker compose in the root would load %q, want %q (COMPOSE_FILE in .env)", p.ComposeFiles, want)
	}
	svc, err := p.GetService("hello")
	if err != nil {
		t.Fatal(err)
	}
	d := config.Default()
	checks := []struct {
		what string
		ok   bool
		got  any
	}{
		{"image defaults to what `ko build --base-import-paths` tags in ko.local", svc.Image == "ko.local/hello:latest", svc.Image},
		{"read-only root", svc.ReadOnly, svc.ReadOnly},
		{"cap_drop [ALL]", slices.Equal(svc.CapDrop, []string{"ALL"}), svc.CapDrop},
		{"no-new-privileges", slices.Contains(svc.SecurityOpt, "no-new-privileges:true"), svc.SecurityOpt},
		{"user 65532", svc.User == "65532:65532", svc.User},
		{"exec-form health check", svc.HealthCheck != nil && slices.Equal(svc.HealthCheck.Test, types.HealthCheckTest{"CMD", "/ko-app/hello", "healthcheck"}), svc.HealthCheck},
		{"health check timeout above the command's own 2s", svc.HealthCheck != nil && svc.HealthCheck.Timeout != nil && time.Duration(*svc.HealthCheck.Timeout) > 2*time.Second, svc.HealthCheck},
		{"stop_grace_period above DRAIN_DELAY + SHUTDOWN_TIMEOUT", svc.StopGracePeriod != nil && time.Duration(*svc.StopGracePeriod) > d.DrainDelay+d.ShutdownTimeout, svc.StopGracePeriod},
		{"port 8080", len(svc.Ports) == 1 && svc.Ports[0].Target == 8080 && svc.Ports[0].Published == "8080", svc.Ports},
		{"no environment that changes the defaults the grace period is computed from", len(svc.Environment) == 0, svc.Environment},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %+v", c.what, c.got)
		}
	}

	// The image is overridable, for a pushed image.
	override := "127.0.0.1:5000/hello@sha256:" + strings.Repeat("0", 64)
	if svc, err := loadCompose(t, root, "HELLO_IMAGE="+override).GetService("hello"); err != nil || svc.Image != override {
		t.Errorf("HELLO_IMAGE=%s: image %q, %v", override, svc.Image, err)
	}
}

// loadKoImage loads this host's platform of the ko image into d under tag and removes it when the test ends.
// docker load works with every daemon, including ones in a VM that cannot reach our 127.0.0.1 registry.
func loadKoImage(t *testing.T, ctx context.Context, d *airgap.Docker, b *builtImage, tag string) {
	t.Helper()
	img, _ := platformImage(t, remoteIndex(t, b.Ref), "linux/"+runtime.GOARCH)
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "hello.tar")
	if err := tarball.WriteToFile(tarPath, ref, img); err != nil {
		t.Fatal(err)
	}
	if _, err := run(d.Command(ctx, "load", "--input", tarPath)); err != nil {
		t.Fatal(err)
	}
	os.Remove(tarPath)
	t.Cleanup(func() {
		// vfs stores a full copy per layer; leave nothing behind.
		if _, err := run(d.Command(context.Background(), "rmi", "--force", tag)); err != nil {
			t.Errorf("remove image: %v", err)
		}
	})
}

// TestComposeServiceHealth runs the compose service's container settings through the Docker Engine API (what
// `docker compose up` sends; the docker CLI cannot, as --health-cmd always goes through /bin/sh) on the
// harness's real dockerd, with the ko image: the exec-form health check turns it healthy, SIGSTOP on the
// server turns it unhealthy, SIGCONT healthy again. The daemons here have no bridge, so the container
// uses the host network on a free port instead of the 8080:8080 mapping; every other setting is the file's.
func TestComposeServiceHealth(t *testing.T) {
	d := dockerd(t)
	b := helloImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tag := "ko.local/hello:e2e-" + b.Commit[:12]
	loadKoImage(t, ctx, d, b, tag)
	svc, err := loadCompose(t, repoRoot(t), "HELLO_IMAGE="+tag).GetService("hello")
	if err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	hc := svc.HealthCheck
	create := map[string]any{
		"Image": svc.Image,
		"User":  svc.User,
		"Env":   []string{fmt.Sprintf("PORT=%d", port)},
		"Healthcheck": map[string]any{
			"Test":        []string(hc.Test),
			"Interval":    time.Duration(*hc.Interval).Nanoseconds(),
			"Timeout":     time.Duration(*hc.Timeout).Nanoseconds(),
			"Retries":     *hc.Retries,
			"StartPeriod": time.Duration(*hc.StartPeriod).Nanoseconds(),
		},
		"StopTimeout": int(time.Duration(*svc.StopGracePeriod).Seconds()),
		"HostConfig": map[string]any{
			"NetworkMode":    "host",
			"ReadonlyRootfs": svc.ReadOnly,
			"CapDrop":        svc.CapDrop,
			"SecurityOpt":    svc.SecurityOpt,
		},
	}
	var created struct{ ID string }
	if err := d.API(ctx, "POST", fmt.Sprintf("/containers/create?name=hello-compose-%d", port), create, &created); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.API(context.Background(), "DELETE", "/containers/"+created.ID+"?force=true", nil, nil); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	type inspect struct {
		Config struct {
			User        string
			Healthcheck struct{ Test []string }
		}
		HostConfig struct {
			ReadonlyRootfs bool
			CapDrop        []string
			SecurityOpt    []string
		}
		State struct {
			Health struct {
				Status string
				Log    []struct {
					ExitCode int
					Output   string
				}
			}
		}
	}
	state := func() inspect {
		t.Helper()
		var in inspect
		if err := d.API(ctx, "GET", "/containers/"+created.ID+"/json", nil, &in); err != nil {
			t.Fatal(err)
		}
		return in
	}
	in := state()
	if got := in.Config.Healthcheck.Test; !slices.Equal(got, []string{"CMD", "/ko-app/hello", "healthcheck"}) {
		t.Fatalf("the daemon stored health check %q, want the exec form", got)
	}
	if !in.HostConfig.ReadonlyRootfs || !slices.Equal(in.HostConfig.CapDrop, []string{"ALL"}) || in.Config.User != "65532:65532" {
		t.Fatalf("the daemon stored %+v %+v", in.Config, in.HostConfig)
	}
	if err := d.API(ctx, "POST", "/containers/"+created.ID+"/start", nil, nil); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	waitHealth := func(want string, within time.Duration) inspect {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			in := state()
			if in.State.Health.Status == want {
				return in
			}
			if time.Now().After(deadline) {
				logs, _ := d.Command(ctx, "logs", created.ID).CombinedOutput()
				t.Fatalf("health %q after %v, want %q; checks: %+v\ncontainer logs:\n%s", in.State.Health.Status, within, want, in.State.Health.Log, logs)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	lastCheck := func(in inspect) string {
		if n := len(in.State.Health.Log); n > 0 {
			l := in.State.Health.Log[n-1]
			return fmt.Sprintf("exit %d %q", l.ExitCode, strings.TrimSpace(l.Output))
		}
		return "(no check ran)"
	}
	interval, retries := time.Duration(*hc.Interval), time.Duration(*hc.Retries)
	in = waitHealth("healthy", time.Duration(*hc.StartPeriod)+2*interval)
	t.Logf("starting -> healthy after %v; last check: %s", time.Since(start).Round(time.Millisecond), lastCheck(in))

	// The server stops answering (its process is stopped, as a wedged one would be); the check still runs, in a
	// new process in the container, and times out.
	if _, err := run(d.Command(ctx, "kill", "--signal", "STOP", created.ID)); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	in = waitHealth("unhealthy", (retries+1)*(interval+time.Duration(*hc.Timeout)))
	t.Logf("SIGSTOP: healthy -> unhealthy after %v; last check: %s", time.Since(stopped).Round(time.Millisecond), lastCheck(in))
	if l := in.State.Health.Log[len(in.State.Health.Log)-1]; l.ExitCode != 1 || !strings.HasPrefix(l.Output, "hello: healthcheck: ") || strings.Count(l.Output, "\n") != 1 {
		t.Errorf("failing check: exit %d output %q, want 1 and one line from hello healthcheck", l.ExitCode, l.Output)
	}

	if _, err := run(d.Command(ctx, "kill", "--signal", "CONT", created.ID)); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	in = waitHealth("healthy", 2*interval)
	t.Logf("SIGCONT: unhealthy -> healthy after %v; last check: %s", time.Since(resumed).Round(time.Millisecond), lastCheck(in))
}
