package pins

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/internal/buildcache"
	"github.com/kobuilt/hello/pkg/internal/proc"
	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// configFile is the Renovate config; renovate-config-validator and Renovate
// itself find it there.
const configFile = ".github/renovate.json5"

// extractReport is the part of Renovate's --report-type=file output the test
// reads: manager → package files → dependencies.
type extractReport struct {
	Repositories map[string]struct {
		PackageFiles map[string][]struct {
			PackageFile string
			Deps        []dep
		}
	}
}

type dep struct {
	DepName, PackageName, CurrentValue, CurrentDigest, Datasource, DepType string
}

func TestRenovateSeesEveryPin(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()

	root, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	testenv.Need(t, err == nil, fmt.Sprintf("a git checkout (git rev-parse: %v)", err), "git clone the repository: Renovate extracts from a git checkout")
	dir := strings.TrimSpace(string(root))

	pins, err := scanRepo(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// The kinds of pin the repository has today: a scanner that stopped
	// finding one of them would make the comparison below pass vacuously.
	kinds := map[string]int{}
	for _, p := range pins {
		kinds[p.datasource]++
	}
	for _, ds := range []string{"go", "golang-version", "docker", "npm", "github-tags", "github-runners", ""} {
		if kinds[ds] == 0 {
			t.Errorf("the scanner found no pin with datasource %q; found %v", ds, kinds)
		}
	}

	bin := renovate(t, pins)
	t.Run("validator", func(t *testing.T) {
		start := time.Now()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "renovate-config-validator"), "--strict", configFile)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("renovate-config-validator --strict %s: %v\n%s", configFile, err, out)
		}
		t.Logf("renovate-config-validator --strict: %s", time.Since(start).Round(100*time.Millisecond))
	})

	start := time.Now()
	report := filepath.Join(t.TempDir(), "extract.json")
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "renovate"), "--platform=local", "--dry-run=extract",
		"--report-type=file", "--report-path="+report)
	cmd.Dir = dir
	// No onboarding PR and no lookups: Renovate reads the config and the
	// files git lists and writes what it extracted. Its cache goes to a
	// directory of the test's own.
	cmd.Env = proc.Environ(nil, "RENOVATE_BASE_DIR="+t.TempDir(), "LOG_LEVEL=warn",
		"RENOVATE_ONBOARDING=false", "RENOVATE_REQUIRE_CONFIG=required")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("renovate --dry-run=extract: %v\n%s", err, proc.Tail(string(out), 4000))
	}
	t.Logf("renovate --platform=local --dry-run=extract: %s", time.Since(start).Round(100*time.Millisecond))
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r extractReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("read Renovate's report: %v", err)
	}
	local, ok := r.Repositories["local"]
	if !ok {
		t.Fatalf("Renovate's report has no local repository:\n%s", proc.Tail(string(data), 2000))
	}

	byFile := map[string][]dep{}
	for manager, files := range local.PackageFiles {
		n := 0
		for _, f := range files {
			byFile[f.PackageFile] = append(byFile[f.PackageFile], f.Deps...)
			n += len(f.Deps)
		}
		t.Logf("Renovate extracts %d dependencies from %d files with manager %s", n, len(files), manager)
		if manager == "gomod" {
			continue
		}
		for _, f := range files {
			for _, d := range f.Deps {
				t.Logf("  %s: %s %s %s %s", f.PackageFile, d.Datasource, d.DepName, d.CurrentValue, d.CurrentDigest)
			}
		}
	}

	for _, p := range pins {
		i := slices.IndexFunc(byFile[p.file], func(d dep) bool {
			return (p.datasource == "" || d.Datasource == p.datasource) && (p.name == "" || d.DepName == p.name) &&
				d.CurrentValue == p.value && (p.digest == "" || d.CurrentDigest == p.digest)
		})
		if i < 0 {
			t.Errorf("%s: not in Renovate's extract, so Renovate would never update it: make %s match it "+
				"(a custom manager, or a `# renovate: datasource=... depName=...` comment on the line above it)", p, configFile)
			continue
		}
		// Renovate looks a Go dependency up by its module path: it must be
		// the module the written path (a package in it) belongs to.
		if d := byFile[p.file][i]; d.Datasource == "go" && d.PackageName != "" && d.PackageName != d.DepName &&
			!strings.HasPrefix(d.DepName, d.PackageName+"/") {
			t.Errorf("%s: Renovate looks it up as %s, which is not a module path of %s", p, d.PackageName, d.DepName)
		}
	}
	t.Logf("%d pins found by the scanner, all in Renovate's extract unless reported above", len(pins))
}

// renovate returns the directory of the renovate and
// renovate-config-validator commands: the release .ci/run installs (its
// npm pin renovate@X.Y.Z) in the user cache dir, where .ci/run puts it.
func renovate(t *testing.T, pins []pin) string {
	t.Helper()
	i := slices.IndexFunc(pins, func(p pin) bool { return p.file == ".ci/run" && p.datasource == "npm" && p.name == "renovate" })
	if i < 0 {
		t.Fatal(".ci/run installs no renovate@X.Y.Z from npm")
	}
	want := pins[i].value
	cache, err := buildcache.Root("HELLO_RENOVATE_CACHE", "renovate")
	if err != nil {
		t.Fatal(err)
	}
	hint := fmt.Sprintf("npm install --prefix %s --save-exact --ignore-scripts renovate@%s (what .ci/run does; Node 20 or newer)", cache, want)
	_, err = exec.LookPath("node")
	testenv.Need(t, err == nil, "Node.js (node)", hint)
	var pkg struct{ Version string }
	data, err := os.ReadFile(filepath.Join(cache, "node_modules", "renovate", "package.json"))
	if err == nil {
		err = json.Unmarshal(data, &pkg)
	}
	testenv.Need(t, err == nil && pkg.Version == want,
		fmt.Sprintf("Renovate %s in %s (found %q, %v)", want, cache, pkg.Version, err), hint)
	return filepath.Join(cache, "node_modules", ".bin")
}
