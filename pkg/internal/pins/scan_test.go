// Package pins checks that Renovate (.github/renovate.json5) sees every
// version this repository pins, so a pin cannot silently go stale.
//
// The test finds the pins with its own scanner, whose rules are below and
// share nothing with the Renovate config, runs the Renovate release .ci/run
// installs with --dry-run=extract, and fails, naming the file and line, on
// every pin that Renovate's extract does not list with the same datasource,
// dependency name and current value (and digest) in the same file.
//
// What counts as a pin, and where (the repository's files as git lists them,
// less go.sum files, *_test.go files, whose versions and digests are
// fixtures, files under testdata/ other than go.mod, and the Renovate config
// itself):
//
//   - go.mod files, as `go mod edit -json` reads them: the go and toolchain
//     lines (datasource golang-version, name "go") and every version in a
//     require or replace line (datasource go).
//   - A Go module version, HOST/PATH@vX.Y.Z (the first path element has a
//     dot), in any file, Markdown included: `go run` and `go install`
//     commands and Go string constants (datasource go).
//   - GOTOOLCHAIN=goX.Y.Z or GOTOOLCHAIN: goX.Y.Z in any file but Markdown
//     (datasource golang-version, name "go").
//   - An image pinned by tag and digest, NAME:TAG@sha256:HEX, in any file but
//     Markdown (datasource docker).
//   - NAME@X.Y.Z on a line that runs npm or npx, in any file (datasource
//     npm).
//   - In GitHub workflows, `uses: OWNER/REPO[/PATH]@REF` (datasource
//     github-tags) and `runs-on: ubuntu|windows|macos-VERSION` (datasource
//     github-runners).
//   - A Go string literal that is a version alone, "vX.Y.Z...", in non-test
//     Go files under pkg/internal (the harness's tools and data): its name is
//     elsewhere, so only the file and value must match.
package pins

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kobuilt/hello/pkg/internal/buildcache"
)

// A pin is one pinned version, where the scanner found it.
type pin struct {
	file       string // slash-separated, relative to the repository root
	line       int
	datasource string
	name       string // "" when the file does not say (a bare version constant)
	value      string
	digest     string // "sha256:..." for an image, else ""
}

func (p pin) String() string {
	s := fmt.Sprintf("%s:%d: %s %s", p.file, p.line, p.datasource, p.name)
	if p.name == "" {
		s += "(any name)"
	}
	s += " " + p.value
	if p.digest != "" {
		s += "@" + p.digest
	}
	return s
}

var (
	goModuleRE  = regexp.MustCompile(`\b([a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)+(?:/[A-Za-z0-9._~-]+)+)@(v\d+\.\d+\.\d+[0-9A-Za-z.+-]*)`)
	toolchainRE = regexp.MustCompile(`GOTOOLCHAIN[=:]\s*["']?go(\d+\.\d+(?:\.\d+)?)`)
	imageRE     = regexp.MustCompile(`([a-z0-9][a-z0-9._-]*(?:/[a-z0-9._-]+)*):([A-Za-z0-9_][A-Za-z0-9._-]*)@(sha256:[0-9a-f]{64})`)
	npmLineRE   = regexp.MustCompile(`\bnp[mx]\b`)
	npmRE       = regexp.MustCompile(`(?:^|[\s"'=])((?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*)@(\d+\.\d+\.\d+[0-9A-Za-z.+-]*)`)
	usesRE      = regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*["']?([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)(?:/[^@\s"']*)?@([^\s"'#]+)`)
	runsOnRE    = regexp.MustCompile(`^\s*runs-on:\s*["']?(ubuntu|windows|macos)-(\d+(?:\.\d+)*)`)
	bareRE      = regexp.MustCompile(`"(v\d+\.\d+\.\d+[0-9A-Za-z.+-]*)"`)
)

// scanned reports whether file (slash-separated) may hold pins.
func scanned(file string) bool {
	base := path.Base(file)
	switch {
	case base == "go.sum", strings.HasSuffix(base, "_test.go"):
		return false
	case file == ".github/renovate.json5":
		return false // the config's examples of pin shapes
	case base != "go.mod" && slices.Contains(strings.Split(path.Dir(file), "/"), "testdata"):
		return false
	}
	return true
}

// scanText finds the pins in one file's text by the line rules above.
// go.mod files are read by scanGoMod instead.
func scanText(file string, text []byte) []pin {
	markdown := strings.HasSuffix(file, ".md")
	workflow := strings.HasPrefix(file, ".github/workflows/")
	harnessGo := strings.HasPrefix(file, "pkg/internal/") && strings.HasSuffix(file, ".go")
	var pins []pin
	add := func(line int, datasource, name, value, digest string) {
		pins = append(pins, pin{file: file, line: line, datasource: datasource, name: name, value: value, digest: digest})
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		for _, m := range goModuleRE.FindAllStringSubmatch(line, -1) {
			add(n, "go", m[1], m[2], "")
		}
		if npmLineRE.MatchString(line) {
			for _, m := range npmRE.FindAllStringSubmatch(line, -1) {
				add(n, "npm", m[1], m[2], "")
			}
		}
		if markdown {
			continue
		}
		for _, m := range toolchainRE.FindAllStringSubmatch(line, -1) {
			add(n, "golang-version", "go", m[1], "")
		}
		for _, m := range imageRE.FindAllStringSubmatch(line, -1) {
			add(n, "docker", m[1], m[2], m[3])
		}
		if workflow {
			if m := usesRE.FindStringSubmatch(line); m != nil {
				add(n, "github-tags", m[1], m[2], "")
			}
			if m := runsOnRE.FindStringSubmatch(line); m != nil {
				add(n, "github-runners", m[1], m[2], "")
			}
		}
		if harnessGo {
			for _, m := range bareRE.FindAllStringSubmatch(line, -1) {
				add(n, "", "", m[1], "")
			}
		}
	}
	return pins
}

// goModJSON is what `go mod edit -json` prints, as far as pins go.
type goModJSON struct {
	Go        string
	Toolchain string
	Require   []struct{ Path, Version string }
	Replace   []struct {
		New struct{ Path, Version string }
	}
}

// scanGoMod finds the pins in one go.mod file with the go command's own
// parser; the line numbers come from the text, for the messages.
func scanGoMod(ctx context.Context, root, file string) ([]pin, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "edit", "-json", filepath.FromSlash(file))
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod edit -json %s: %w%s", file, err, buildcache.Stderr(err))
	}
	var m goModJSON
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("go mod edit -json %s: %w", file, err)
	}
	text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(text), "\n")
	// lineOf is the first line whose words include seq in a row.
	lineOf := func(seq ...string) int {
		for i, l := range lines {
			f := strings.Fields(l)
			for j := 0; j+len(seq) <= len(f); j++ {
				if slices.Equal(f[j:j+len(seq)], seq) {
					return i + 1
				}
			}
		}
		return 0
	}
	var pins []pin
	add := func(line int, datasource, name, value string) {
		pins = append(pins, pin{file: file, line: line, datasource: datasource, name: name, value: value})
	}
	if m.Go != "" {
		add(lineOf("go", m.Go), "golang-version", "go", m.Go)
	}
	if m.Toolchain != "" {
		add(lineOf("toolchain", m.Toolchain), "golang-version", "go", strings.TrimPrefix(m.Toolchain, "go"))
	}
	for _, r := range m.Require {
		add(lineOf(r.Path, r.Version), "go", r.Path, r.Version)
	}
	for _, r := range m.Replace {
		if r.New.Version != "" { // a version, not a local directory
			add(lineOf("=>", r.New.Path, r.New.Version), "go", r.New.Path, r.New.Version)
		}
	}
	return pins, nil
}

// scanRepo finds every pin in the files git lists under root.
func scanRepo(ctx context.Context, root string) ([]pin, error) {
	cmd := exec.CommandContext(ctx, "git", "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %w", root, err)
	}
	var pins []pin
	for _, file := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if !scanned(file) {
			continue
		}
		if path.Base(file) == "go.mod" {
			p, err := scanGoMod(ctx, root, file)
			if err != nil {
				return nil, err
			}
			pins = append(pins, p...)
			continue
		}
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			return nil, err
		}
		pins = append(pins, scanText(file, text)...)
	}
	return pins, nil
}

// TestScanRules runs the scanner's line rules on text written for them:
// each rule finds its pins and passes over look-alikes that pin nothing.
func TestScanRules(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		file, text string
		want       []pin
	}{
		{".ci/run", "GOOS=linux go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 run ./...\n" +
			"go run ./pkg/internal/cmd/cosign version\n" +
			"export GOTOOLCHAIN=go1.27.3\n" +
			"npm install --prefix \"$dir\" renovate@39.264.1 @scope/tool@1.2.3-rc.1\n" +
			"npx --yes --package renovate@39 -- renovate\n" +
			"echo user@1.2.3 # not an install line\n", []pin{
			{line: 1, datasource: "go", name: "github.com/golangci/golangci-lint/v2/cmd/golangci-lint", value: "v2.15.0"},
			{line: 3, datasource: "golang-version", name: "go", value: "1.27.3"},
			{line: 4, datasource: "npm", name: "renovate", value: "39.264.1"},
			{line: 4, datasource: "npm", name: "@scope/tool", value: "1.2.3-rc.1"},
		}},
		{".ko.yaml", "# KO_DEFAULTBASEIMAGE=mirror.example.com/distroless/static-debian12:nonroot@sha256:...\n" +
			"defaultBaseImage: gcr.io/distroless/static-debian13:nonroot@" + digest + "\n", []pin{
			{line: 2, datasource: "docker", name: "gcr.io/distroless/static-debian13", value: "nonroot", digest: digest},
		}},
		{".github/workflows/build.yml", "    runs-on: ubuntu-24.04\n      - uses: actions/checkout@v5\n" +
			"        uses: github/codeql-action/init@v3 # a path inside the repository\n      - uses: ./local-action\n" +
			"      GOTOOLCHAIN: go1.27.3\n", []pin{
			{line: 1, datasource: "github-runners", name: "ubuntu", value: "24.04"},
			{line: 2, datasource: "github-tags", name: "actions/checkout", value: "v5"},
			{line: 3, datasource: "github-tags", name: "github/codeql-action", value: "v3"},
			{line: 5, datasource: "golang-version", name: "go", value: "1.27.3"},
		}},
		{"pkg/internal/airgap/cosign.go", "const CosignModule = \"github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3\"\n" +
			"\tvulndbVersion = \"v0.0.0-20261105234957-e22db6528018\"\n\tEngineAPIVersion = \"v1.41\"\n", []pin{
			{line: 1, datasource: "go", name: "github.com/sigstore/cosign/v3/cmd/cosign", value: "v3.1.3"},
			{line: 2, value: "v0.0.0-20261105234957-e22db6528018"},
		}},
		{"docs/image.md", "go run github.com/google/go-containerregistry/cmd/crane@v0.21.7 copy \\\n" +
			"  gcr.io/distroless/static-debian12:nonroot@" + digest + "\nGOTOOLCHAIN=go1.27.3\n" +
			"npm install --prefix $dir renovate@39.264.1\n", []pin{
			{line: 1, datasource: "go", name: "github.com/google/go-containerregistry/cmd/crane", value: "v0.21.7"},
			{line: 4, datasource: "npm", name: "renovate", value: "39.264.1"},
		}},
		{"pkg/server/server.go", "\tversion = \"v0.0.0\" // product code: not the harness\n", nil},
	}
	for _, c := range cases {
		got := scanText(c.file, []byte(c.text))
		for i := range c.want {
			c.want[i].file = c.file
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.file, got, c.want)
		}
	}
	for file, want := range map[string]bool{
		"go.mod": true, "pkg/internal/node/testdata/cni/go.mod": true, ".ci/run": true, "docs/testing.md": true,
		"go.sum": false, "pkg/internal/e2e/kube_test.go": false, "pkg/internal/e2e/testdata/figures/dockerfile-vs-ko.json": false,
		".github/renovate.json5": false,
	} {
		if got := scanned(file); got != want {
			t.Errorf("scanned(%q) = %v, want %v", file, got, want)
		}
	}
}
