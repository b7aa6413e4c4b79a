// Command vulncheck runs govulncheck over the module with no network but
// the Go module proxy: against a vulnerability database built from a pinned
// golang.org/x/vulndb (cached in the user cache dir), with the toolchain
// go.mod names. It fails on any vulnerability in an imported package that
// has a fix, and on any other finding unless .govulncheck.yaml reviews it;
// a review that matches nothing fails too.
//
// .ci/run calls it; on a laptop: go run ./pkg/internal/cmd/vulncheck
// (users who are online run govulncheck itself; see docs/testing.md).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kobuilt/hello/pkg/internal/buildcache"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "vulncheck: %v\n", err)
		os.Exit(1)
	}
}

// errFindings means the scan worked and found something to act on.
var errFindings = errors.New("vulnerabilities to act on (see above)")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	patterns := args
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	review, err := readReviewed(filepath.Join(root, ".govulncheck.yaml"))
	if err != nil {
		return err
	}
	toolchain, err := goToolchain(ctx)
	if err != nil {
		return err
	}

	start := time.Now()
	db, err := buildDB(ctx, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "vulncheck: database %s@%s ready in %s (%s)\n", vulndbModule, vulndbVersion, time.Since(start).Round(100*time.Millisecond), db)

	start = time.Now()
	s, err := runGovulncheck(ctx, root, toolchain, db, patterns, stderr)
	if err != nil {
		return err
	}
	if s.config.GoVersion != toolchain {
		return fmt.Errorf("govulncheck scanned the standard library of %s, want %s (go.mod's toolchain)", s.config.GoVersion, toolchain)
	}
	lines := decide(fold(s.findings), review)
	fmt.Fprintf(stdout, "vulncheck: %s with %s, %s, scan level %s, in %s: %d vulnerabilities\n",
		govulncheck, s.config.GoVersion, strings.Join(patterns, " "), s.config.ScanLevel, time.Since(start).Round(100*time.Millisecond), len(lines))
	fmt.Fprint(stdout, format(lines))
	for _, l := range lines {
		if l.Fail {
			return errFindings
		}
	}
	return nil
}

func readReviewed(path string) (map[string]reviewed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read reviewed findings: %w", err)
	}
	return parseReviewed(b)
}

// runGovulncheck scans patterns in the module at root. GOTOOLCHAIN is set
// for the whole process: govulncheck asks its go command which standard
// library it scans.
func runGovulncheck(ctx context.Context, root, toolchain, db string, patterns []string, stderr io.Writer) (*scan, error) {
	args := append([]string{"run", govulncheck, "-db", "file:///" + strings.TrimPrefix(filepath.ToSlash(db), "/"), "-format", "json"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+toolchain)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return parseScan(&out)
}

// moduleRoot is the directory of the main module's go.mod, so the command
// works from anywhere inside the checkout.
func moduleRoot(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w%s", err, buildcache.Stderr(err))
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run it inside the hello module: no go.mod above the working directory")
	}
	return filepath.Dir(gomod), nil
}
