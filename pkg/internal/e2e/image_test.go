package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	specsv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kobuilt/hello/pkg/internal/airgap"
	"github.com/kobuilt/hello/pkg/internal/imagefs"
	"github.com/kobuilt/hello/pkg/internal/loopback"
	"github.com/kobuilt/hello/pkg/internal/testenv"
)

const appPath = "/ko-app/hello"

// wantPlatforms is what .ko.yaml's defaultPlatforms must produce, with the
// ELF machine each binary must be built for.
var wantPlatforms = []struct {
	platform string
	machine  elf.Machine
}{
	{"linux/amd64", elf.EM_X86_64},
	{"linux/arm64", elf.EM_AARCH64},
}

// imageFS is one platform's flattened filesystem.
type imageFS struct {
	headers map[string]*tar.Header // by absolute path
	binary  []byte                 // the app, /ko-app/hello
	small   map[string]string      // the contents of smallFiles
}

// smallFiles are the base's files whose contents the tests read.
var smallFiles = []string{"/etc/passwd", "/etc/group", "/usr/lib/os-release"}

// remoteIndex fetches the index ref points at from the harness registry.
func remoteIndex(t *testing.T, ref string) v1.ImageIndex {
	t.Helper()
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatalf("image reference %q: %v", ref, err)
	}
	idx, err := remote.Index(d, remote.WithContext(context.Background()))
	if err != nil {
		t.Fatalf("fetch %s: %v", ref, err)
	}
	return idx
}

// platformImage returns the index's image for platform ("os/arch").
func platformImage(t *testing.T, idx v1.ImageIndex, platform string) (v1.Image, v1.Descriptor) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range im.Manifests {
		if desc.Platform != nil && desc.Platform.OS+"/"+desc.Platform.Architecture == platform {
			img, err := idx.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img, desc
		}
	}
	t.Fatalf("index has no %s image", platform)
	return nil, v1.Descriptor{}
}

func flatten(t *testing.T, img v1.Image) imageFS {
	t.Helper()
	fs := imageFS{headers: map[string]*tar.Header{}, small: map[string]string{}}
	err := imagefs.Walk(img, func(p string, hdr *tar.Header, r io.Reader) error {
		fs.headers[p] = hdr
		switch {
		case p == appPath:
			var err error
			fs.binary, err = io.ReadAll(r)
			return err
		case slices.Contains(smallFiles, p) && hdr.Typeflag == tar.TypeReg:
			b, err := io.ReadAll(r)
			fs.small[p] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fs.binary == nil {
		t.Fatalf("no %s in the image", appPath)
	}
	return fs
}

func TestImageIndexHasBothPlatforms(t *testing.T) {
	b := helloImage(t)
	idx := remoteIndex(t, b.Ref)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, desc := range im.Manifests {
		if desc.Platform == nil {
			t.Errorf("manifest %s has no platform", desc.Digest)
			continue
		}
		got = append(got, desc.Platform.OS+"/"+desc.Platform.Architecture)
	}
	slices.Sort(got)
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(got, want) {
		t.Fatalf("index platforms %v, want %v", got, want)
	}
	// ko records the base by name and digest; the name must be exactly the
	// base ref we asked for, minus any tag, so it cannot drift with spelling.
	baseName, err := name.NewDigest(harness(t).Base)
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Annotations[specsv1.AnnotationBaseImageName]; got != baseName.Name() {
		t.Errorf("index annotation %s = %q, want %q", specsv1.AnnotationBaseImageName, got, baseName.Name())
	}
}

func TestImageConfigAndFilesystem(t *testing.T) {
	b := helloImage(t)
	idx := remoteIndex(t, b.Ref)
	base, err := airgap.Base(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range wantPlatforms {
		t.Run(strings.ReplaceAll(tc.platform, "/", "-"), func(t *testing.T) {
			img, desc := platformImage(t, idx, tc.platform)
			checkConfig(t, img, b)
			checkBaseAnnotations(t, img, desc, base)
			fs := flatten(t, img)
			checkFilesystem(t, fs)
			checkDebian13(t, fs)
			checkBinary(t, fs.binary, tc.machine, b)
		})
	}
}

func checkConfig(t *testing.T, img v1.Image, b *builtImage) {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if c.User != "65532" {
		t.Errorf("User = %q, want 65532 (nonroot, from the base)", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{appPath}) {
		t.Errorf("Entrypoint = %q, want [%s]", c.Entrypoint, appPath)
	}
	if c.WorkingDir != airgap.NonrootHome {
		t.Errorf("WorkingDir = %q, want %s", c.WorkingDir, airgap.NonrootHome)
	}
	if !slices.Contains(c.Env, "SSL_CERT_FILE="+airgap.CertFile) {
		t.Errorf("Env %q lacks SSL_CERT_FILE=%s", c.Env, airgap.CertFile)
	}
	checkLabels(t, c.Labels, ociLabels(b.Stamp))
}

func checkBaseAnnotations(t *testing.T, img v1.Image, desc v1.Descriptor, base v1.ImageIndex) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	bm, err := base.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	got := m.Annotations[specsv1.AnnotationBaseImageDigest]
	for _, bd := range bm.Manifests {
		if bd.Digest.String() == got {
			if !bd.Platform.Equals(*desc.Platform) {
				t.Errorf("%v image built on the %v base", desc.Platform, bd.Platform)
			}
			return
		}
	}
	t.Errorf("annotation %s=%q is not an image of the base index", specsv1.AnnotationBaseImageDigest, got)
}

// Names of programs that must not exist anywhere in the image: a shell or a
// package manager is what an attacker who gets code execution looks for.
var forbidden = []string{
	"sh", "bash", "dash", "ash", "zsh", "ksh", "csh", "tcsh", "fish", "busybox", "toybox",
	"apt", "apt-get", "dpkg", "apk", "yum", "dnf", "microdnf", "rpm", "pip", "pip3", "opkg",
}

func checkFilesystem(t *testing.T, fs imageFS) {
	t.Helper()
	for p, hdr := range fs.headers {
		if slices.Contains(forbidden, path.Base(p)) {
			t.Errorf("%s is in the image (no shell or package manager allowed)", p)
		}
		if hdr.Mode&(syscall.S_ISUID|syscall.S_ISGID) != 0 {
			t.Errorf("%s is setuid/setgid (mode %o)", p, hdr.Mode)
		}
		inHome := p == airgap.NonrootHome || strings.HasPrefix(p, airgap.NonrootHome+"/")
		switch {
		case inHome && (hdr.Uid != airgap.NonrootUID || hdr.Gid != airgap.NonrootUID):
			t.Errorf("%s owned by %d:%d, want %d:%d", p, hdr.Uid, hdr.Gid, airgap.NonrootUID, airgap.NonrootUID)
		case !inHome && (hdr.Uid != 0 || hdr.Gid != 0):
			t.Errorf("%s owned by %d:%d, want root (only %s belongs to nonroot)", p, hdr.Uid, hdr.Gid, airgap.NonrootHome)
		}
	}
	for p, mode := range map[string]int64{"/tmp": 0o1777, airgap.NonrootHome: 0o700, airgap.CertFile: 0o644, appPath: 0o555} {
		hdr, ok := fs.headers[p]
		switch {
		case !ok:
			t.Errorf("%s missing", p)
		case hdr.Mode&0o7777 != mode:
			t.Errorf("%s mode %o, want %o", p, hdr.Mode&0o7777, mode)
		}
	}
	// The app can only write where the base lets nonroot write.
	if hdr := fs.headers[appPath]; hdr != nil && hdr.Mode&0o222 != 0 {
		t.Errorf("%s is writable (mode %o)", appPath, hdr.Mode)
	}
}

// checkDebian13 wants what gcr.io/distroless/static-debian13:nonroot gives
// the image (what .ko.yaml pins; the tests build on the offline stand-in for
// it): Debian 13's os-release, merged /usr, the nonroot account, the CA bundle
// and the tz database where Go looks for them.
func checkDebian13(t *testing.T, fs imageFS) {
	t.Helper()
	release := fs.small["/usr/lib/os-release"]
	for _, want := range []string{`PRETTY_NAME="Distroless"`, `ID="debian"`, `VERSION_ID="13"`, `VERSION="Debian GNU/Linux 13 (trixie)"`} {
		if !slices.Contains(strings.Split(release, "\n"), want) {
			t.Errorf("/usr/lib/os-release lacks the line %s:\n%s", want, release)
		}
	}
	for p, target := range map[string]string{
		"/etc/os-release": "../usr/lib/os-release",
		"/bin":            "usr/bin",
		"/lib":            "usr/lib",
		"/sbin":           "usr/sbin",
	} {
		hdr := fs.headers[p]
		if hdr == nil || hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != target {
			t.Errorf("%s is %+v, want a symlink to %s", p, hdr, target)
		}
	}
	if !strings.Contains(fs.small["/etc/passwd"], "\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n") {
		t.Errorf("/etc/passwd has no nonroot 65532 entry:\n%s", fs.small["/etc/passwd"])
	}
	if !strings.Contains(fs.small["/etc/group"], "\nnonroot:x:65532:\n") {
		t.Errorf("/etc/group has no nonroot 65532 entry:\n%s", fs.small["/etc/group"])
	}
	for _, p := range []string{airgap.CertFile, "/usr/share/zoneinfo/Etc/UTC", "/usr/share/zoneinfo/Europe/Berlin"} {
		if hdr := fs.headers[p]; hdr == nil || hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
			t.Errorf("%s is %+v, want a non-empty file", p, hdr)
		}
	}
	// Debian 13 moved the old names to tzdata-legacy (a link there, a copy in
	// the stand-in); static-debian13 installs it too.
	if fs.headers["/usr/share/zoneinfo/US/Eastern"] == nil {
		t.Error("/usr/share/zoneinfo/US/Eastern missing")
	}
}

func checkBinary(t *testing.T, bin []byte, machine elf.Machine, b *builtImage) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s is not ELF: %v", appPath, err)
	}
	defer f.Close()
	if f.Machine != machine || f.Class != elf.ELFCLASS64 {
		t.Errorf("ELF machine %v class %v, want %v 64-bit", f.Machine, f.Class, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary has a PT_INTERP (dynamic loader): it is not static")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a PT_DYNAMIC segment: it is not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	// -s -w: no symbol table, no DWARF.
	if s := f.Section(".symtab"); s != nil {
		t.Errorf("binary has a .symtab: -s was not applied")
	}
	if s := f.Section(".debug_info"); s != nil {
		t.Errorf("binary has DWARF: -w was not applied")
	}

	bi := readBuildInfo(t, bin)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings CGO_ENABLED=%q -trimpath=%q, want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	if v, ok := settings["vcs.revision"]; ok {
		t.Errorf("binary carries vcs.revision=%s: .ko.yaml must decide -buildvcs=false", v)
	}
	// -trimpath keeps -ldflags out of the build info, so look for the
	// stamped commit itself; /version is checked under qemu and Docker.
	if !bytes.Contains(bin, []byte(b.Commit)) {
		t.Errorf("binary does not contain the stamped commit %s", b.Commit)
	}
}

// checkLabels wants exactly the labels in want: a label the base (or anything else) brought in would describe
// something other than this image.
func checkLabels(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected label %s=%q (inherited from the base?)", k, v)
		}
	}
	if !t.Failed() {
		t.Logf("labels: %v", got)
	}
}

// stamp is what /version must serve for a build, derived from git the
// way .ko.yaml's templates do.
type stamp struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// koStamp computes what .ko.yaml's templates stamp for rev in the git
// checkout dir: {{.Git.Tag}} (the nearest tag, v0.0.0 without one, plus
// "-dirty" for a dirty tree), {{.Git.FullCommit}} and {{.Git.CommitDate}}
// (the committer date in UTC, RFC 3339).
func koStamp(t *testing.T, dir, rev string, dirty bool) stamp {
	t.Helper()
	s, err := gitStamp(dir, rev, dirty)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func gitStamp(dir, rev string, dirty bool) (stamp, error) {
	git := func(args ...string) (string, error) {
		out, err := run(exec.Command("git", append([]string{"-C", dir}, args...)...))
		return strings.TrimSpace(out), err
	}
	commit, err := git("rev-parse", rev)
	if err != nil {
		return stamp{}, err
	}
	ct, err := git("show", "-s", "--format=%ct", commit)
	if err != nil {
		return stamp{}, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return stamp{}, fmt.Errorf("commit time %q: %w", ct, err)
	}
	version := "v0.0.0" // ko's value when no tag is reachable
	if tag, err := git("describe", "--tags", "--abbrev=0", commit); err == nil && tag != "" {
		version = tag
	}
	if dirty {
		version += "-dirty"
	}
	return stamp{Version: version, Commit: commit, Date: time.Unix(sec, 0).UTC().Format(time.RFC3339)}, nil
}

// checkVersion GETs /version from base and compares it with want.
func checkVersion(t *testing.T, base string, want stamp) {
	t.Helper()
	var got stamp
	body := get(t, base+"/version")
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/version is not JSON: %v: %s", err, body)
	}
	if got != want {
		t.Errorf("/version = %+v, want %+v", got, want)
	}
}

func readBuildInfo(t *testing.T, bin []byte) *buildinfo.BuildInfo {
	t.Helper()
	bi, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("read Go build info: %v", err)
	}
	return bi
}

// TestArm64BinaryRunsUnderQEMU runs the arm64 binary from the image (not a
// fresh build) and asks it for /hello: the cross-compiled image really works.
func TestArm64BinaryRunsUnderQEMU(t *testing.T) {
	qemu, err := exec.LookPath("qemu-aarch64-static")
	testenv.Need(t, err == nil, "qemu-aarch64-static", "apt-get install qemu-user-static")
	b := helloImage(t)
	img, _ := platformImage(t, remoteIndex(t, b.Ref), "linux/arm64")
	bin := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(bin, flatten(t, img).binary, 0o755); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "DRAIN_DELAY=0s")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(ctx, base+"/readyz", exited); err != nil {
		t.Fatalf("arm64 binary under qemu: %v\nlogs:\n%s", err, logs.String())
	}
	if body := get(t, base+"/hello"); body != "Hello!" {
		t.Fatalf("GET /hello = %q, want Hello!", body)
	}
	checkVersion(t, base, koStamp(t, repoRoot(t), b.Commit, b.Dirty))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("arm64 binary exited with %v after SIGTERM\nlogs:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("arm64 binary still running 30s after SIGTERM\nlogs:\n%s", logs.String())
	}
}

// TestSBOMListsEveryModule checks ko's SPDX SBOM against what the Go
// toolchain recorded in the binary (the `go version -m` list).
func TestSBOMListsEveryModule(t *testing.T) {
	b := helloImage(t)
	idx := remoteIndex(t, b.Ref)
	img, _ := platformImage(t, idx, "linux/amd64")
	bi := readBuildInfo(t, flatten(t, img).binary)

	files, err := filepath.Glob(filepath.Join(b.SBOMDir, "*.spdx.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no *.spdx.json in --sbom-dir %s (err %v)", b.SBOMDir, err)
	}
	var found bool
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name    string `json:"name"`
				Version string `json:"versionInfo"`
			} `json:"packages"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s is not JSON: %v", f, err)
		}
		if !strings.HasPrefix(doc.SPDXVersion, "SPDX-2.") {
			t.Errorf("%s: spdxVersion %q, want SPDX-2.x", f, doc.SPDXVersion)
		}
		pkgs := map[string]string{}
		for _, p := range doc.Packages {
			pkgs[p.Name] = p.Version
		}
		if _, ok := pkgs[bi.Main.Path]; !ok {
			continue // the index's SBOM, not an image's
		}
		found = true
		if len(bi.Deps) < 2 {
			t.Fatalf("binary lists only %d modules", len(bi.Deps))
		}
		for _, dep := range bi.Deps {
			m := dep
			if dep.Replace != nil {
				m = dep.Replace
			}
			if v, ok := pkgs[m.Path]; !ok || v != m.Version {
				t.Errorf("%s: module %s %s missing (SBOM has %q)", filepath.Base(f), m.Path, m.Version, v)
			}
		}
		if v := pkgs["github.com/labstack/echo/v4"]; v == "" {
			t.Errorf("%s: echo is not in the SBOM", filepath.Base(f))
		}
	}
	if !found {
		t.Fatalf("no SBOM in %s describes %s (files %v)", b.SBOMDir, bi.Main.Path, files)
	}
}

// TestDigestIsReproducible builds the same commit from two fresh clones at
// different paths, with different GOFLAGS VCS settings, and requires the
// same digest; on a clean tree it must also equal the shared build's.
func TestDigestIsReproducible(t *testing.T) {
	b := helloImage(t)
	h := harness(t)
	root := repoRoot(t)
	tmp := t.TempDir()
	builds := []struct {
		dir string
		env []string
	}{
		{filepath.Join(tmp, "a", "hello"), []string{"GOFLAGS=-buildvcs=true"}},
		{filepath.Join(tmp, "a-much-longer-path", "second", "clone"), []string{"GOFLAGS=-buildvcs=false", "TMPDIR=" + tmp}},
	}
	var refs []string
	for _, bd := range builds {
		if _, err := run(exec.Command("git", "clone", "--quiet", "--no-local", root, bd.dir)); err != nil {
			t.Fatal(err)
		}
		commit, err := gitHead(bd.dir)
		if err != nil {
			t.Fatal(err)
		}
		if commit != b.Commit {
			t.Fatalf("clone is at %s, shared build at %s", commit, b.Commit)
		}
		k := h.Ko(bd.dir)
		k.Env = bd.env
		ref, elapsed, err := koBuild(k, koBuildArgs(koStamp(t, bd.dir, commit, false))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s (%v)", bd.dir, ref, elapsed.Round(time.Millisecond))
		refs = append(refs, ref)
	}
	if refs[0] != refs[1] {
		t.Fatalf("same commit, different digests:\n  %s\n  %s", refs[0], refs[1])
	}
	if b.Dirty {
		t.Logf("working tree has uncommitted changes; not comparing with the shared build %s", b.Ref)
	} else if refs[0] != b.Ref {
		t.Fatalf("clean working tree built %s, fresh clones built %s", b.Ref, refs[0])
	}
}

// freePort is a free port on 127.0.0.1 for a server the test starts.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// waitHTTP polls url until it answers 200, the process exits (a value on
// exited, which is put back for the caller) or ctx ends.
func waitHTTP(ctx context.Context, url string, exited chan error) error {
	var opts []loopback.WaitOption
	if exited != nil {
		opts = append(opts, loopback.WithAbort(func() error {
			select {
			case err := <-exited:
				exited <- err
				return fmt.Errorf("process exited (%w)", err)
			default:
				return nil
			}
		}))
	}
	return loopback.WaitHTTP(ctx, url, opts...)
}

func get(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body)
}

// TestImageSizeFigures checks that ko adds next to nothing on top of the
// binary and the base: compressed image <= 1.10 x (gzipped binary + base).
// `go run ./pkg/internal/cmd/kofigures` prints the same figures with build times.
func TestImageSizeFigures(t *testing.T) {
	b := helloImage(t)
	idx := remoteIndex(t, b.Ref)
	baseIdx, err := airgap.Base(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range wantPlatforms {
		img, _ := platformImage(t, idx, tc.platform)
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		var imageBytes, baseBytes int64
		for _, l := range m.Layers {
			imageBytes += l.Size
		}
		baseImg, _ := platformImage(t, baseIdx, tc.platform)
		bm, err := baseImg.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bm.Layers {
			baseBytes += l.Size
		}
		var gz bytes.Buffer
		zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed) // ko's layer compression
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(flatten(t, img).binary); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		ratio := float64(imageBytes) / float64(int64(gz.Len())+baseBytes)
		t.Logf("%s: image %d B compressed, binary %d B gzipped, base %d B compressed, ratio %.3f",
			tc.platform, imageBytes, gz.Len(), baseBytes, ratio)
		if ratio > 1.10 {
			t.Errorf("%s: image is %.3f x (binary + base), want <= 1.10", tc.platform, ratio)
		}
	}
}
