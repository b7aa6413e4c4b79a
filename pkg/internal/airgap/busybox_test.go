package airgap

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// needBusybox returns the host's busybox, or skips (fails in CI) without it.
func needBusybox(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the busybox stand-in is built from Debian's busybox-static; skipped on %s", runtime.GOOS)
	}
	p, err := exec.LookPath("busybox")
	testenv.Need(t, err == nil, "busybox", "apt-get install busybox-static")
	return p
}

func TestBusyboxImage(t *testing.T) {
	bin := needBusybox(t)
	img, err := Busybox(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	again, err := Busybox(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatalf("two builds gave different digests: %s and %s", d1, d2)
	}
	t.Logf("busybox stand-in %s", d1)

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	// No USER, like docker.io/library/busybox: kubectl debug's restricted
	// profile relies on the Pod's runAsUser, and the test must show that.
	if cfg.Config.User != "" || strings.Join(cfg.Config.Cmd, " ") != "sh" || !cfg.Created.Equal(baseEpoch) {
		t.Errorf("config User %q Cmd %q Created %v, want no user, sh, the epoch", cfg.Config.User, cfg.Config.Cmd, cfg.Created)
	}

	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	bodies := map[string][]byte{}
	tr := tar.NewReader(mutate.Extract(img))
	var prev string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name <= prev {
			t.Errorf("tar entries not sorted: %q after %q", h.Name, prev)
		}
		prev = h.Name
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 {
			t.Errorf("%s: mtime %v uid %d, want the epoch and root", h.Name, h.ModTime, h.Uid)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		bodies[strings.TrimSuffix(h.Name, "/")], _ = io.ReadAll(tr)
	}
	if h := files["bin/busybox"]; h == nil || h.Mode != 0o755 || !bytes.Equal(bodies["bin/busybox"], want) {
		t.Errorf("bin/busybox is not %s, mode 0755", bin)
	}
	// What the debug test runs, and the shell.
	for _, a := range []string{"sh", "ps", "cat", "ls", "wget", "netstat", "touch", "sleep"} {
		if h := files["bin/"+a]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s is not a symlink to busybox: %+v", a, h)
		}
	}
	for _, tt := range []struct{ file, line string }{
		{"etc/passwd", "root:x:0:0:"},
		{"etc/passwd", "nonroot:x:65532:65532:"},
		{"etc/group", "nonroot:x:65532:"},
	} {
		lines := strings.Split(string(bodies[tt.file]), "\n")
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, tt.line) }) {
			t.Errorf("%s has no line %q:\n%s", tt.file, tt.line, bodies[tt.file])
		}
	}
	if h := files["tmp"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp: %+v, want a directory with mode 1777", h)
	}
}

func TestPushBusyboxToRegistry(t *testing.T) {
	needBusybox(t)
	reg, err := StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	ref, err := PushBusybox(t.Context(), reg.Host()+"/busybox")
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatalf("PushBusybox returned %q, not a digest reference: %v", ref, err)
	}
	img, err := remote.Image(d, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := img.Digest(); got.String() != d.DigestStr() {
		t.Fatalf("registry serves %s for %s", got, ref)
	}
	if _, err := PushBusybox(t.Context(), "not a repo"); err == nil {
		t.Fatal("PushBusybox accepted an invalid repository")
	}
}
