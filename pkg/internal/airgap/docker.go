package airgap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kobuilt/hello/pkg/internal/proc"
)

// Docker is a Docker daemon the tests may use: one that already answers, or
// one StartDocker launched and Close stops.
type Docker struct {
	// Host is the DOCKER_HOST value the client talks to.
	Host string
	// Client is the docker CLI binary.
	Client string

	proc     *exec.Cmd  // nil when the daemon was already running
	exited   chan error // receives proc's exit status once
	stateDir string     // data and exec roots; emptied by Close when we started the daemon
	logFile  *os.File   // the started daemon's stdout+stderr
	started  bool
}

// dockerClient prefers Debian's /usr/bin/docker: it comes with the
// docker.io package whose daemon we start, and it has BuildKit built in,
// unlike some standalone static clients that need a buildx plugin.
func dockerClient() (string, error) {
	if fi, err := os.Stat("/usr/bin/docker"); err == nil && !fi.IsDir() {
		return "/usr/bin/docker", nil
	}
	p, err := exec.LookPath("docker")
	if err != nil {
		return "", fmt.Errorf("airgap: no docker CLI: %w", err)
	}
	return p, nil
}

// DockerAvailable reports whether a docker CLI and either a running daemon
// or a dockerd binary exist, so tests can decide to skip before StartDocker.
func DockerAvailable() (bool, string) {
	if _, err := dockerClient(); err != nil {
		return false, err.Error()
	}
	if _, err := exec.LookPath("dockerd"); err == nil {
		return true, ""
	}
	if os.Getenv("DOCKER_HOST") != "" {
		return true, ""
	}
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		return true, ""
	}
	return false, "no dockerd binary and no daemon socket"
}

// DockerInstallHint is what to install when DockerAvailable is false.
const DockerInstallHint = "Debian/Ubuntu: apt-get install docker.io (or Docker Desktop / Engine from docs.docker.com)"

// StartDocker returns a daemon that answers: the one named by DOCKER_HOST,
// else the default socket's, else a dockerd started with its state under
// dir. The started daemon has no bridge and no iptables rules (so it needs no
// extra privileges on the host network and containers use --network host),
// stores images with vfs (works on any filesystem, including overlay in a
// container) and uses runc.
func StartDocker(ctx context.Context, dir string) (*Docker, error) {
	client, err := dockerClient()
	if err != nil {
		return nil, err
	}
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		d := &Docker{Host: host, Client: client}
		if err := d.ping(ctx); err != nil {
			return nil, fmt.Errorf("airgap: DOCKER_HOST=%s does not answer: %w", host, err)
		}
		return d, nil
	}
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		d := &Docker{Host: "unix:///var/run/docker.sock", Client: client}
		if d.ping(ctx) == nil {
			return d, nil
		}
	}
	return startDockerd(ctx, dir, client)
}

func startDockerd(ctx context.Context, dir, client string) (*Docker, error) {
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, fmt.Errorf("airgap: no daemon answers and dockerd is not installed: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("airgap: docker dir: %w", err)
	}
	// Unix socket paths are limited to 108 bytes, and containerd nests its
	// sockets under the exec root, so keep dir short (e.g. os.MkdirTemp("", "d")).
	sock := filepath.Join(dir, "docker.sock")
	if len(dir) > 60 {
		return nil, fmt.Errorf("airgap: docker dir %q is too long for the daemon's unix sockets; use a shorter one", dir)
	}
	data := filepath.Join(dir, "data")
	for _, p := range []string{data, filepath.Join(dir, "exec")} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("airgap: docker state dir: %w", err)
		}
	}
	logFile, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, fmt.Errorf("airgap: dockerd log: %w", err)
	}
	// Not CommandContext: the daemon must outlive the start-up context and
	// is stopped gracefully by Close.
	cmd := exec.Command(dockerd,
		"--iptables=false", "--ip6tables=false", "--bridge=none",
		"--storage-driver=vfs",
		"--default-runtime=runc",
		"--data-root", data,
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--host", "unix://"+sock,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = proc.SysProcAttr(syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("airgap: start dockerd: %w", err)
	}
	d := &Docker{
		Host: "unix://" + sock, Client: client,
		proc: cmd, exited: make(chan error, 1), stateDir: dir, logFile: logFile, started: true,
	}
	go func() { d.exited <- cmd.Wait() }()

	deadline := time.Now().Add(90 * time.Second)
	for {
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := d.ping(pingCtx)
		cancel()
		if err == nil {
			return d, nil
		}
		select {
		case werr := <-d.exited:
			d.exited <- werr
			_ = d.Close()
			return nil, fmt.Errorf("airgap: dockerd exited during start-up (%w); log:\n%s", werr, d.logTail())
		case <-ctx.Done():
			_ = d.Close()
			return nil, fmt.Errorf("airgap: waiting for dockerd: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = d.Close()
			return nil, fmt.Errorf("airgap: dockerd did not answer within 90s: %w; log:\n%s", err, d.logTail())
		}
	}
}

// Started reports whether StartDocker launched this daemon itself.
func (d *Docker) Started() bool { return d.started }

// Command returns `docker args...` aimed at this daemon, with BuildKit on.
func (d *Docker) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.Client, args...)
	// A DOCKER_CONTEXT would point the client at another daemon.
	cmd.Env = proc.Environ([]string{"DOCKER_CONTEXT"}, "DOCKER_HOST="+d.Host, "DOCKER_BUILDKIT=1")
	return cmd
}

func (d *Docker) ping(ctx context.Context) error {
	out, err := d.Command(ctx, "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker version: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func (d *Docker) logTail() string {
	if d.logFile == nil {
		return ""
	}
	return proc.TailFile(d.logFile.Name(), 4000)
}

// Close stops a daemon that StartDocker launched (SIGTERM, then SIGKILL
// after 30s) and deletes its image store; a daemon that was already running
// is left alone.
func (d *Docker) Close() error {
	if d.proc == nil {
		return nil
	}
	var errs []error
	select {
	case err := <-d.exited:
		d.exited <- err
	default:
		if err := d.proc.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("signal dockerd: %w", err))
		}
		// The exit status goes back for whoever waits next, as above.
		select {
		case err := <-d.exited:
			d.exited <- err
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("dockerd ignored SIGTERM for 30s; killed"))
			_ = d.proc.Process.Kill()
			d.exited <- <-d.exited
		}
	}
	d.proc = nil
	if d.logFile != nil {
		d.logFile.Close()
	}
	// dockerd leaves its network namespace bind-mounted under the exec
	// root; unmount before deleting, and delete the vfs store, which keeps
	// a full copy of every layer.
	if d.stateDir != "" {
		if err := unmountUnder(d.stateDir); err != nil {
			errs = append(errs, err)
		}
		for _, sub := range []string{"data", "exec"} {
			if err := os.RemoveAll(filepath.Join(d.stateDir, sub)); err != nil {
				errs = append(errs, fmt.Errorf("remove docker state: %w", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("airgap: stop dockerd: %w", err)
	}
	return nil
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	var points []string
	for _, line := range strings.Split(string(raw), "\n") {
		// Field 5 is the mount point (octal-escaped; our paths have no spaces).
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := unmountDetach(p); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
