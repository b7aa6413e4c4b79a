package doccheck

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/kobuilt/hello/pkg/config"
)

// TestDocs checks README.md, every docs/*.md and every other Markdown file
// of the repository they link to. Each rule is a subtest
// (go test -run TestDocs/env ./pkg/internal/doccheck), and each finding
// names file:line.
//
// What is read:
//   - Code blocks tagged sh, bash, shell or console hold commands (in a
//     console block, only the lines after a "$ " prompt). Untagged blocks
//     are output and are not read; one that starts with a command
//     (commandNames, or a "$ " prompt) is itself a finding (blocks), so a
//     command cannot escape the checks by losing its tag.
//   - Code spans in prose are commands when they start with a program of
//     commandNames (go, kubectl, docker, ...), or with NAME=value and a
//     command. Each span is a snippet of its own.
//   - Lines joined at a trailing backslash, comments dropped, a leading "$ "
//     dropped, split into simple commands at \n ; & && | || ( ); the
//     commands in $(...) are checked too (in `...` only their $NAMEs).
//     Here-documents are not understood.
//
// The rules:
//   - paths: the docs' commands run from the repository root, or where a cd
//     into a directory of the repository went, until the end of the block
//     or subshell; after a cd elsewhere paths are not checked. A word names
//     a path when it starts with ./, ../ or $PWD/, or when its first element
//     is an entry of that directory (config/..., pkg/..., .ko.yaml,
//     Dockerfile.reference at the root); the path must exist (pathProblem).
//     So do < inputs, --flag=value values and NAME=value values. Outputs
//     (> file) are not checked, nor package patterns (the go rule's).
//   - prose: a code span of prose that is one word whose first element is
//     an entry of the root (`cmd/hello`, `pkg/server`, `.ko.yaml`) names a
//     path of this repository, which must exist; a path in another module
//     is written with that module's path.
//   - go: the ./ patterns of go run/build/test/vet (./... included) must
//     match packages, as `go list` from that directory says; go run's must be
//     a command (package main). go run module@version and import paths are
//     resolved by the module proxy and not checked. go tool NAME must be a
//     tool directive of go.mod (ko) or a tool of the Go distribution (pprof,
//     nm, ...).
//   - env: the variables a command is given (NAME=value cmd, export NAME,
//     docker run -e NAME, kubectl set env ... NAME=value and NAME-) must be
//     a setting of the service (the "env NAME" entries of its --help), an
//     external variable of externalVars, or a HELLO_* variable of the test
//     harness (named in a file that is not Markdown, outside this package).
//     Each $NAME a command expands must be one of those, or set earlier in
//     the same block (NAME=value alone, export, for NAME in); a command in
//     prose may also expand what the blocks above it set.
//   - links: the target of every relative link or image ([text](path),
//     [text](path#anchor), [label]: path), from the linking file's
//     directory, must exist; a #anchor into a Markdown file must be the
//     GitHub anchor (slug) of one of its headings. URLs are not fetched.
func TestDocs(t *testing.T) {
	c := newChecker(t)
	var findings []finding
	docs := docFiles(t, c.root)
	for i := 0; i < len(docs); i++ {
		src, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(docs[i])))
		if err != nil {
			t.Fatal(err)
		}
		findings = append(findings, c.checkDoc(docs[i], string(src))...)
		// Markdown files of the repository that a doc links to are docs too.
		_, prose := splitFences(string(src))
		_, rest := codeSpans(prose)
		for _, l := range links(rest) {
			target := linkedMarkdown(docs[i], l.dest)
			if target != "" && !slices.Contains(docs, target) && isFile(filepath.Join(c.root, filepath.FromSlash(target))) {
				docs = append(docs, target)
			}
		}
	}
	t.Logf("read %d docs: %s", len(docs), strings.Join(docs, ", "))
	t.Logf("checked %v", c.counted)
	for _, rule := range []string{ruleLinks, rulePaths, ruleProse, ruleGo, ruleEnv, ruleBlocks} {
		t.Run(rule, func(t *testing.T) {
			for _, f := range findings {
				if f.rule == rule {
					t.Error(f)
				}
			}
		})
	}
}

// docFiles returns README.md and docs/*.md, as slash paths from root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{"README.md"}
	for _, m := range matches {
		docs = append(docs, "docs/"+filepath.Base(m))
	}
	if len(docs) < 2 {
		t.Fatalf("no docs/*.md under %s", root)
	}
	return docs
}

// linkedMarkdown returns the Markdown file of the repository that dest, a
// link in doc, points to, or "".
func linkedMarkdown(doc, dest string) string {
	p, _, _ := strings.Cut(dest, "#")
	if scheme.MatchString(p) || !strings.HasSuffix(p, ".md") || strings.HasPrefix(p, "/") {
		return ""
	}
	target := path.Join(path.Dir(doc), p)
	if target == ".." || strings.HasPrefix(target, "../") {
		return ""
	}
	return target
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// newChecker reads what the rules check against from the repository: the
// service's settings, go.mod's tools and the harness's variables.
func newChecker(t *testing.T) *checker {
	t.Helper()
	root := moduleRoot(t)
	return &checker{
		root:     root,
		settings: serviceSettings(t),
		ownVars:  harnessVars(t, root),
		tools:    goTools(t, root),
		listed:   map[string]goListResult{},
		counted:  map[string]int{},
	}
}

// moduleRoot is the directory of the go.mod the test runs in.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside a Go module")
	}
	return filepath.Dir(gomod)
}

var usageEnv = regexp.MustCompile(`\benv ([A-Z][A-Z0-9_]*)\b`)

// serviceSettings returns the environment variables of the service, as its
// --help lists them ("env DRAIN_DELAY, default 5s").
func serviceSettings(t *testing.T) map[string]bool {
	t.Helper()
	var usage bytes.Buffer
	if _, err := config.Parse([]string{"--help"}, func(string) string { return "" }, &usage); !errors.Is(err, config.ErrHelp) {
		t.Fatalf("config.Parse(--help) = %v, want ErrHelp", err)
	}
	settings := map[string]bool{}
	for _, m := range usageEnv.FindAllStringSubmatch(usage.String(), -1) {
		settings[m[1]] = true
	}
	if !settings["PORT"] || !settings["DRAIN_DELAY"] {
		t.Fatalf("no PORT and DRAIN_DELAY among the settings %v read from the usage; has its format changed?\n%s", keys(settings), usage.String())
	}
	return settings
}

var harnessVar = regexp.MustCompile(`\bHELLO_[A-Z0-9_]+`)

// harnessVars returns the HELLO_* variables named in the repository's files
// other than Markdown (the Go code, .ci/run and .compose.yaml that read
// them), outside this package, whose samples name variables that must not
// exist.
func harnessVars(t *testing.T, root string) map[string]bool {
	t.Helper()
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == ".git" || p == here):
			return filepath.SkipDir
		case d.IsDir() || strings.HasSuffix(p, ".md") || !d.Type().IsRegular():
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, v := range harnessVar.FindAll(src, -1) {
			vars[string(v)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return vars
}

// goTools returns what `go tool NAME` may name: go.mod's tool directives,
// by path and by last element, and the Go distribution's tools.
func goTools(t *testing.T, root string) map[string]bool {
	t.Helper()
	gomod := filepath.Join(root, "go.mod")
	src, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse(gomod, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]bool{}
	for _, tool := range f.Tool {
		tools[tool.Path] = true
		tools[path.Base(tool.Path)] = true
	}
	for _, name := range goDistTools {
		tools[name] = true
	}
	return tools
}

func TestGoDistTools(t *testing.T) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	for _, name := range goDistTools {
		if !isDir(filepath.Join(strings.TrimSpace(string(out)), "src", "cmd", name)) {
			t.Errorf("goDistTools has %s, which is not in GOROOT/src/cmd", name)
		}
	}
}
