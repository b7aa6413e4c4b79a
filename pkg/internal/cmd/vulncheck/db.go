package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kobuilt/hello/pkg/internal/buildcache"
)

// The pinned tools. The database is the module golang.org/x/vulndb at one
// commit (the newest the module proxy served when it was pinned), so a scan
// gives the same answer until someone moves this line; govulncheck is the
// release the docs give users for the online scan.
const (
	vulndbModule = "golang.org/x/vulndb"
	// renovate: datasource=go depName=golang.org/x/vulndb
	vulndbVersion = "v0.0.0-20261105234957-e22db6528018"
	govulncheck   = "golang.org/x/vuln/cmd/govulncheck@v1.9.0"
)

// cacheRoot holds one database directory per vulndb version.
func cacheRoot() (string, error) { return buildcache.Root("HELLO_VULNDB_CACHE", "vulndb") }

// buildDB returns the directory `govulncheck -db file:///DIR` reads, built
// from the pinned vulndb module's OSV files with its own cmd/indexdb. A
// cache hit costs a stat; a cold build downloads the module (about 20 MB of
// OSV JSON) and indexdb's dependencies, and writes about 40 MB.
func buildDB(ctx context.Context, log io.Writer) (string, error) {
	root, err := cacheRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, vulndbVersion)
	if _, err := os.Stat(filepath.Join(dir, "index", "db.json")); err == nil {
		return dir, nil
	}
	fmt.Fprintf(log, "vulncheck: building the vulnerability database from %s@%s into %s\n", vulndbModule, vulndbVersion, dir)

	src, err := moduleDir(ctx, vulndbModule+"@"+vulndbVersion)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("create the database cache: %w", err)
	}
	// indexdb writes into a fresh directory that is renamed into place only
	// when complete, so an interrupted build is never mistaken for a cache hit.
	tmp, err := os.MkdirTemp(root, vulndbVersion+".tmp-")
	if err != nil {
		return "", fmt.Errorf("create the database cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "db")
	cmd := exec.CommandContext(ctx, "go", "run", vulndbModule+"/cmd/indexdb@"+vulndbVersion,
		"-vulns", filepath.Join(src, "data", "osv"), "-out", out)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go run %s/cmd/indexdb@%s: %w", vulndbModule, vulndbVersion, err)
	}
	if err := os.Rename(out, dir); err != nil {
		// Another run may have finished the same build first.
		if _, serr := os.Stat(filepath.Join(dir, "index", "db.json")); serr == nil {
			return dir, nil
		}
		return "", fmt.Errorf("move the database into the cache: %w", err)
	}
	return dir, nil
}

// moduleDir downloads a module into the module cache and returns where.
func moduleDir(ctx context.Context, modVersion string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modVersion)
	b, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(b, &m); jerr == nil && m.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", modVersion, m.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w%s", modVersion, err, buildcache.Stderr(err))
	}
	if m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no directory in its output", modVersion)
	}
	return m.Dir, nil
}

// goToolchain is the toolchain go.mod names. govulncheck reports the
// standard library's vulnerabilities for the Go version its go command
// runs, so the scan must run the one the image is built with, not whatever
// Go the machine has.
func goToolchain(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "edit", "-json")
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod edit -json: %w%s", err, buildcache.Stderr(err))
	}
	var m struct{ Toolchain string }
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("go mod edit -json: %w", err)
	}
	if m.Toolchain == "" {
		return "", errors.New("go.mod has no toolchain line: the scan would test whatever Go this machine has")
	}
	return m.Toolchain, nil
}
