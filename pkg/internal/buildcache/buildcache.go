// Package buildcache keeps what the tests build from scratch modules (the
// control plane, the node, the vulnerability database) in the user cache
// dir, one directory per recipe key, so it is built once per machine and
// not on every test run.
package buildcache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
)

// Root is the cache directory for name: $env if it is set, else
// kobuilt-hello/name in the user cache dir (~/.cache on Linux).
func Root(env, name string) (string, error) {
	if d := os.Getenv(env); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the user cache dir (set %s instead): %w", env, err)
	}
	return filepath.Join(d, "kobuilt-hello", name), nil
}

// Fill creates the entry root/key: build writes into a new directory beside
// it, which is renamed to root/key only when build succeeded, so a cancelled
// build never leaves a half-filled entry that would be trusted as cached.
func Fill(root, key string, build func(dir string) error) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("create cache dir: %w", err)
	}
	tmp, err := os.MkdirTemp(root, key+".tmp-")
	if err != nil {
		return fmt.Errorf("create build dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		return err
	}
	final := filepath.Join(root, key)
	if err := os.Rename(tmp, final); err != nil {
		// Another build may have finished first; the caller checks its
		// result as it checks any cache entry.
		if _, serr := os.Stat(final); serr == nil {
			return nil
		}
		return fmt.Errorf("move built files into the cache: %w", err)
	}
	return nil
}

// RecipeDir finds the checkout's directory rel (slash-separated, e.g.
// pkg/internal/node/testdata) holding marker, from the working directory
// upwards: go run leaves the working directory anywhere inside the checkout.
func RecipeDir(rel, marker string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		r := filepath.Join(dir, filepath.FromSlash(rel))
		if _, err := os.Stat(filepath.Join(r, filepath.FromSlash(marker))); err == nil {
			return r, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("run it inside the hello checkout: %s not found above the working directory", rel)
}

// GoCommand runs the go command in a scratch module, isolated from any
// go.work and from a GOFLAGS that would make it use a vendor directory.
func GoCommand(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	return cmd
}

// RunGo runs the go command in the scratch module in dir, copying its
// output to log; its error carries the output's last 4000 bytes.
func RunGo(ctx context.Context, log io.Writer, dir string, args ...string) error {
	cmd := GoCommand(ctx, dir, args...)
	var tail bytes.Buffer
	cmd.Stdout = io.MultiWriter(log, &tail)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		out := tail.String()
		if len(out) > 4000 {
			out = out[len(out)-4000:]
		}
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// ModuleVersion asks the go command which version of module path the
// scratch module in dir requires, and that version's time (zero if the
// proxy gave none).
func ModuleVersion(ctx context.Context, dir, path string) (string, time.Time, error) {
	out, err := GoCommand(ctx, dir, "list", "-mod=readonly", "-m", "-json", path).Output()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("go list -m %s in %s: %w%s", path, dir, err, Stderr(err))
	}
	var m struct {
		Version string
		Time    *time.Time
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return "", time.Time{}, fmt.Errorf("go list -m %s: %w", path, err)
	}
	if m.Version == "" {
		return "", time.Time{}, fmt.Errorf("%s does not require %s", dir, path)
	}
	var t time.Time
	if m.Time != nil {
		t = m.Time.UTC()
	}
	return m.Version, t, nil
}

// Stderr is what a failed command wrote to stderr, as ": text", for
// appending to an error message; "" if it wrote nothing or did not run.
func Stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// Exec is the whole main of a command that runs a tool built into the
// cache: it builds the tool the first time (build returns its binary),
// runs it with the command's arguments and standard streams, and exits
// with the tool's exit code.
func Exec(name string, build func(context.Context) (string, error)) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bin, err := build(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	cmd := exec.CommandContext(ctx, bin, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
