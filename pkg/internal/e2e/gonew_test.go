package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"

	"github.com/kobuilt/hello/pkg/internal/airgap"
	"github.com/kobuilt/hello/pkg/internal/proc"
	"github.com/kobuilt/hello/pkg/internal/testenv"
	"github.com/kobuilt/hello/pkg/version"
)

// The module path a team gives its copy, and the date of its first commit
// (fixed, so that the commit /version must name is known in advance).
const (
	copyModulePath = "example.com/acme/api"
	copyCommitDate = "2026-11-27T12:00:00Z"
)

// TestModulePathOnlyInGoModAndImports keeps a copy made with gonew whole.
// gonew rewrites go.mod and the imports of .go files and nothing else, so
// any other file that names the module path (an ldflag, a ko:// reference,
// a Dockerfile, a string constant, a comment) would still name this
// repository in the copy, and -X ldflags would silently stamp nothing.
// Docs (*.md, *.svg), go.sum and testdata may name it.
func TestModulePathOnlyInGoModAndImports(t *testing.T) {
	root := repoRoot(t)
	modPath := modulePath(t, root)
	out, err := run(exec.Command("git", "-C", root, "ls-files", "-z"))
	if err != nil {
		t.Fatal(err)
	}
	var hits []string
	for _, f := range strings.Split(strings.TrimSuffix(out, "\x00"), "\x00") {
		if mayNameModule(f) {
			continue
		}
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(src, []byte(modPath)) {
			continue
		}
		var imports map[int]bool
		if strings.HasSuffix(f, ".go") {
			imports = importLines(t, f, src)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, modPath) && !imports[i+1] {
				hits = append(hits, fmt.Sprintf("%s:%d: %s", f, i+1, strings.TrimSpace(line)))
			}
		}
	}
	if len(hits) > 0 {
		t.Errorf("%d lines name the module path %s outside go.mod, Go import lines, docs and testdata; a copy made with gonew would keep them:\n%s",
			len(hits), modPath, strings.Join(hits, "\n"))
	}
}

// mayNameModule reports whether the tracked file f (slash-separated, from
// the module root) may name the module path.
func mayNameModule(f string) bool {
	switch {
	case f == "go.mod", f == "go.sum":
		return true
	case path.Ext(f) == ".md", path.Ext(f) == ".svg":
		return true
	}
	return slices.Contains(strings.Split(f, "/"), "testdata")
}

// importLines returns the lines holding the import paths of the Go file.
func importLines(t *testing.T, name string, src []byte) map[int]bool {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[int]bool{}
	for _, imp := range f.Imports {
		lines[fset.Position(imp.Path.Pos()).Line] = true
	}
	return lines
}

func modulePath(t *testing.T, dir string) string {
	t.Helper()
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	p := modfile.ModulePath(gomod)
	if p == "" {
		t.Fatalf("%s/go.mod has no module line", dir)
	}
	return p
}

// TestGonewCopy starts a service from this repository the way Go teams
// start from a template: the real gonew copies the module as committed at
// HEAD, served from a file:// module proxy, under a new module path. The
// copy, committed to a fresh git repository, must build, vet and pass the
// service's tests, resolve config/ with ko into an image of its own module
// under its own repository, and that image must answer /hello with a
// /version naming the copy's commit and module.
func TestGonewCopy(t *testing.T) {
	// CI must never pass by skipping, -short or not.
	if testing.Short() && !testenv.InCI() {
		t.Skip("copies, builds and runs the module; not in -short")
	}
	_, err := exec.LookPath("git")
	testenv.Need(t, err == nil, "git", "apt-get install git")
	h := harness(t)
	d := dockerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	gonew, err := airgap.Gonew(ctx)
	if err != nil {
		t.Fatal(err)
	}

	src := dfClone(t) // HEAD, without what a developer left uncommitted
	srcPath := modulePath(t, src)
	vers, proxy := moduleProxy(t, src, srcPath)
	dir := filepath.Join(t.TempDir(), "api")
	start := time.Now()
	// As a user runs it, with the template on a local proxy ahead of the
	// usual one. The template's download goes to a scratch module cache
	// (writable, so the test can delete it) rather than the user's, with
	// the go command at hand: downloading needs no particular toolchain.
	gn := exec.CommandContext(ctx, gonew, srcPath+"@"+vers, copyModulePath, dir)
	gn.Env = proc.Environ([]string{"GOWORK"},
		"GOPROXY=file://"+filepath.ToSlash(proxy)+","+goEnv(t, "GOPROXY"), "GONOSUMDB="+srcPath,
		"GOMODCACHE="+t.TempDir(), "GOFLAGS=-modcacherw", "GOTOOLCHAIN=local")
	if _, err := run(gn); err != nil {
		t.Fatal(err)
	}
	t.Logf("gonew %s@%s %s: %s", srcPath, vers, copyModulePath, time.Since(start).Round(time.Millisecond))
	checkCopyHasTheTree(t, src, dir)
	head := commitCopy(t, ctx, dir, "gonew "+srcPath+"@"+vers+" "+copyModulePath)

	var product []string // the service's packages: cmd/hello and pkg/ outside pkg/internal
	out, err := run(goInCopy(ctx, dir, "list", "./cmd/...", "./pkg/..."))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(out) {
		if !strings.HasPrefix(p, copyModulePath+"/pkg/internal/") {
			product = append(product, p)
		}
	}
	for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}, append([]string{"test"}, product...)} {
		start := time.Now()
		if _, err := run(goInCopy(ctx, dir, args...)); err != nil {
			t.Fatalf("in the copy: %v", err)
		}
		t.Logf("in the copy: go %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	}

	// What `ko apply -f config/` deploys, under the copy's own repository.
	repo := h.Registry.Host() + "/acme/api"
	start = time.Now()
	resolved, err := run(airgap.Ko{Dir: dir, DockerRepo: repo, BaseImage: h.Base}.Command(ctx, "resolve", "-f", "config/"))
	if err != nil {
		t.Fatalf("in the copy: %v", err)
	}
	images := regexp.MustCompile(`(?m)^\s*image:\s*(\S+)\s*$`).FindAllStringSubmatch(resolved, -1)
	if len(images) != 1 {
		t.Fatalf("ko resolve -f config/ in the copy gave %d image: lines, want 1:\n%s", len(images), resolved)
	}
	ref := images[0][1]
	if !strings.HasPrefix(ref, repo+"/") || !strings.Contains(ref, "@sha256:") {
		t.Fatalf("ko resolved the image to %s, want %s/…@sha256:…", ref, repo)
	}
	t.Logf("in the copy: ko resolve -f config/: %s in %s", ref, time.Since(start).Round(time.Millisecond))
	img, _ := platformImage(t, remoteIndex(t, ref), "linux/"+runtime.GOARCH)
	if bi := readBuildInfo(t, flatten(t, img).binary); bi.Main.Path != copyModulePath || bi.Path != copyModulePath+"/cmd/hello" {
		t.Errorf("the image's binary is %s from module %s, want %s/cmd/hello from %s", bi.Path, bi.Main.Path, copyModulePath, copyModulePath)
	}

	tag := "gonew-e2e/api:" + head[:12]
	loadKoImage(t, ctx, d, &builtImage{Ref: ref}, tag)
	got, body := serveOnce(t, ctx, d, tag)
	t.Logf("the copy's /version: %s", body)
	want := koStamp(t, dir, "HEAD", false)
	if got.Version != want.Version || got.Commit != head || got.Date != copyCommitDate || got.Module != copyModulePath {
		t.Errorf("the copy's /version = %s, want version %s, commit %s (the copy's HEAD), date %s, module %s",
			body, want.Version, head, copyCommitDate, copyModulePath)
	}
}

// moduleProxy serves the module in dir (a clean checkout) from a file://
// module proxy (the layout `go help goproxy` describes) under a
// pseudo-version of its HEAD, as a real proxy would serve a pushed commit.
func moduleProxy(t *testing.T, dir, modPath string) (vers, proxy string) {
	t.Helper()
	st, err := gitStamp(dir, "HEAD", false)
	if err != nil {
		t.Fatal(err)
	}
	when, err := time.Parse(time.RFC3339, st.Date)
	if err != nil {
		t.Fatal(err)
	}
	vers = module.PseudoVersion("v0", "", when, st.Commit[:12])
	proxy = t.TempDir()
	escPath, err := module.EscapePath(modPath)
	if err != nil {
		t.Fatal(err)
	}
	escVers, err := module.EscapeVersion(vers)
	if err != nil {
		t.Fatal(err)
	}
	at := filepath.Join(proxy, filepath.FromSlash(escPath), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	zf, err := os.Create(filepath.Join(at, escVers+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	// Like the proxy, it leaves out .git and the nested modules (directories
	// with a go.mod of their own).
	err = zip.CreateFromDir(zf, module.Version{Path: modPath, Version: vers}, dir)
	if cerr := zf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("module zip: %v", err)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := json.Marshal(map[string]string{"Version": vers, "Time": st.Date})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"list": []byte(vers + "\n"), escVers + ".info": info, escVers + ".mod": gomod} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return vers, proxy
}

// checkCopyHasTheTree compares the copy with the checkout it came from: it
// must hold every tracked file except those of nested modules (the
// Kubernetes recipes' scratch modules under testdata), which module zips
// leave out and docs/start-your-own.md tells teams to copy themselves.
func checkCopyHasTheTree(t *testing.T, src, dst string) {
	t.Helper()
	out, err := run(exec.Command("git", "-C", src, "ls-files", "-z"))
	if err != nil {
		t.Fatal(err)
	}
	files := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	var nested []string // directories holding a go.mod of their own
	for _, f := range files {
		if path.Base(f) == "go.mod" && f != "go.mod" {
			nested = append(nested, path.Dir(f)+"/")
		}
	}
	var left []string
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dst, filepath.FromSlash(f))); err == nil {
			continue
		}
		if !slices.ContainsFunc(nested, func(n string) bool { return strings.HasPrefix(f, n) }) {
			t.Errorf("the copy lacks %s", f)
		}
		left = append(left, f)
	}
	t.Logf("the copy has %d of %d tracked files; the %d left out are the nested modules %v", len(files)-len(left), len(files), len(left), nested)
}

// commitCopy makes the copy a git repository with one commit, by a fixed
// author at copyCommitDate, and returns its hash.
func commitCopy(t *testing.T, ctx context.Context, dir, message string) string {
	t.Helper()
	env := proc.Environ([]string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"},
		"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Acme", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_AUTHOR_DATE="+copyCommitDate,
		"GIT_COMMITTER_NAME=Acme", "GIT_COMMITTER_EMAIL=dev@example.com", "GIT_COMMITTER_DATE="+copyCommitDate)
	for _, args := range [][]string{{"init", "--quiet", "--initial-branch=main"}, {"add", "--all"}, {"commit", "--quiet", "--message", message}} {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir, cmd.Env = dir, env
		if _, err := run(cmd); err != nil {
			t.Fatal(err)
		}
	}
	head, err := gitHead(dir)
	if err != nil {
		t.Fatal(err)
	}
	return head
}

// goInCopy runs the go command in the copy as its developers would, away
// from any go.work or GOFLAGS of the machine running the test.
func goInCopy(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = proc.Environ([]string{"GOFLAGS"}, "GOWORK=off")
	return cmd
}

func goEnv(t *testing.T, key string) string {
	t.Helper()
	out, err := run(exec.Command("go", "env", key))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// serveOnce runs image locked down as the README runs it, on the host
// network at a free port, and returns its /version once /hello answers.
func serveOnce(t *testing.T, ctx context.Context, d *airgap.Docker, image string) (version.Info, string) {
	t.Helper()
	port := freePort(t)
	out, err := run(d.Command(ctx, "run", "--detach", "--network", "host",
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--env", "PORT="+strconv.Itoa(port), image))
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	t.Cleanup(func() {
		if _, err := run(d.Command(context.Background(), "rm", "--force", "--volumes", id)); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	readyCtx, readyCancel := context.WithTimeout(ctx, 60*time.Second)
	defer readyCancel()
	if err := waitHTTP(readyCtx, base+"/readyz", nil); err != nil {
		logs, _ := d.Command(context.Background(), "logs", id).CombinedOutput()
		t.Fatalf("%v\ncontainer logs:\n%s", err, logs)
	}
	if body := get(t, base+"/hello"); body != "Hello!" {
		t.Errorf("GET /hello = %q, want Hello!", body)
	}
	body := strings.TrimSpace(get(t, base+"/version"))
	var v version.Info
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("/version is not JSON: %v: %s", err, body)
	}
	return v, body
}
