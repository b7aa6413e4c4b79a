package airgap

import (
	"archive/tar"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestBaseIsDeterministic(t *testing.T) {
	a, err := Base(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Base(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("two calls gave different digests: %s and %s", da, db)
	}
}

func TestBaseHonoursDistrolessContract(t *testing.T) {
	idx, err := Base(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(BasePlatforms) {
		t.Fatalf("index has %d manifests, want %d", len(im.Manifests), len(BasePlatforms))
	}
	for i, desc := range im.Manifests {
		if !desc.Platform.Equals(BasePlatforms[i]) {
			t.Errorf("manifest %d platform %v, want %v", i, desc.Platform, BasePlatforms[i])
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != desc.Platform.Architecture || cfg.OS != "linux" {
			t.Errorf("config platform %s/%s, descriptor %v", cfg.OS, cfg.Architecture, desc.Platform)
		}
		if cfg.Config.User != "65532" || cfg.Config.WorkingDir != NonrootHome {
			t.Errorf("User %q WorkingDir %q, want 65532 %s", cfg.Config.User, cfg.Config.WorkingDir, NonrootHome)
		}
		env := strings.Join(cfg.Config.Env, "\n")
		for _, want := range []string{"PATH=" + BasePath, "SSL_CERT_FILE=" + CertFile} {
			if !strings.Contains(env, want) {
				t.Errorf("Env %q lacks %q", cfg.Config.Env, want)
			}
		}
	}

	for _, desc := range im.Manifests {
		t.Run(desc.Platform.Architecture, func(t *testing.T) {
			img, err := idx.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkBaseFilesystem(t, img, desc.Platform.Architecture)
		})
	}
}

// checkBaseFilesystem holds the stand-in to what static-debian13:nonroot
// ships (GoogleContainerTools/distroless static/ and common/, and Debian 13's
// base-files and tzdata packages).
func checkBaseFilesystem(t *testing.T, img v1.Image, arch string) {
	t.Helper()
	// The layer as written, not a flattened view: Docker refuses a layer that
	// holds a path twice, which flattening would hide.
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	bodies := map[string]string{}
	tr := tar.NewReader(rc)
	var prev string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := strings.TrimSuffix(hdr.Name, "/")
		if n <= prev {
			t.Errorf("tar entries not sorted or not unique: %q after %q", n, prev)
		}
		prev = n
		if !hdr.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s has mtime %v, want the epoch", hdr.Name, hdr.ModTime)
		}
		files[n] = hdr
		b, _ := io.ReadAll(tr)
		bodies[n] = string(b)
	}
	tests := []struct {
		name     string
		mode     int64
		uid      int
		contains string
	}{
		{"etc/passwd", 0o644, 0, "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{"etc/passwd", 0o644, 0, "root:x:0:0:root:/root:/sbin/nologin\n"},
		{"etc/passwd", 0o644, 0, "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"},
		{"etc/group", 0o644, 0, "nonroot:x:65532:\n"},
		{"etc/nsswitch.conf", 0o644, 0, "\nhosts:          files dns\n"},
		{"etc/nsswitch.conf", 0o644, 0, "\npasswd:         compat\n"},
		{"usr/lib/os-release", 0o644, 0, "PRETTY_NAME=\"Distroless\"\n"},
		{"usr/lib/os-release", 0o644, 0, "\nID=\"debian\"\n"},
		{"usr/lib/os-release", 0o644, 0, "\nVERSION_ID=\"13\"\n"},
		{"usr/lib/os-release", 0o644, 0, "\nVERSION=\"Debian GNU/Linux 13 (trixie)\"\n"},
		{"etc/ssl/certs/ca-certificates.crt", 0o644, 0, "-----BEGIN CERTIFICATE-----"},
		{"tmp", 0o1777, 0, ""},
		{"home/nonroot", 0o700, NonrootUID, ""},
		{"usr/share/zoneinfo/Etc/UTC", 0o644, 0, "TZif"},
		{"usr/share/zoneinfo/America/New_York", 0o644, 0, "TZif"},
		// Debian 13 moved the backward-compatible names to tzdata-legacy,
		// which static-debian13 installs as well.
		{"usr/share/zoneinfo/US/Eastern", 0o644, 0, "TZif"},
	}
	for _, tt := range tests {
		hdr, ok := files[tt.name]
		if !ok {
			t.Errorf("%s missing", tt.name)
			continue
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeDir {
			t.Errorf("%s: type %q, want a file or directory", tt.name, hdr.Typeflag)
		}
		if hdr.Mode != tt.mode || hdr.Uid != tt.uid || hdr.Gid != tt.uid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", tt.name, hdr.Mode, hdr.Uid, hdr.Gid, tt.mode, tt.uid, tt.uid)
		}
		if !strings.Contains(bodies[tt.name], tt.contains) {
			t.Errorf("%s does not contain %q", tt.name, tt.contains)
		}
	}

	// Debian 13 merges /usr (Debian 12 had directories here), and
	// /etc/os-release is base-files' link to /usr/lib/os-release.
	links := map[string]string{
		"etc/os-release": "../usr/lib/os-release",
		"bin":            "usr/bin",
		"lib":            "usr/lib",
		"sbin":           "usr/sbin",
	}
	if arch == "amd64" {
		links["lib64"] = "usr/lib64"
	} else if _, ok := files["lib64"]; ok {
		t.Errorf("lib64 exists on %s; Debian ships it on amd64 only", arch)
	}
	for name, target := range links {
		hdr, ok := files[name]
		switch {
		case !ok:
			t.Errorf("%s missing", name)
		case hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != target:
			t.Errorf("%s: type %q link %q, want a symlink to %s", name, hdr.Typeflag, hdr.Linkname, target)
		case files[path.Clean(path.Join(path.Dir(name), target))] == nil:
			t.Errorf("%s links to %s, which the image lacks", name, target)
		}
	}
	for name := range files {
		if strings.HasPrefix(name, "usr/share/zoneinfo/posix") {
			t.Errorf("%s exists: Debian 13's tzdata has no posix/ zones", name)
			break
		}
	}

	// The bundle must be usable by crypto/x509, which is what SSL_CERT_FILE
	// feeds in a Go program, and the zones by time.LoadLocation.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(bodies["etc/ssl/certs/ca-certificates.crt"])) {
		t.Fatal("CA bundle has no parseable certificate")
	}
	if blk, _ := pem.Decode([]byte(bodies["etc/ssl/certs/ca-certificates.crt"])); blk == nil {
		t.Fatal("CA bundle is not PEM")
	}
	ny, err := time.LoadLocationFromTZData("America/New_York", []byte(bodies["usr/share/zoneinfo/America/New_York"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, off := time.Date(2026, 7, 1, 12, 0, 0, 0, ny).Zone(); off != -4*3600 {
		t.Errorf("America/New_York in July is UTC%+d s, want -14400 (EDT)", off)
	}
}

func TestPushBaseToRegistry(t *testing.T) {
	reg, err := StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	if !strings.HasPrefix(reg.Host(), "127.0.0.1:") {
		t.Fatalf("registry host %q is not on loopback", reg.Host())
	}
	ctx := context.Background()
	ref, err := PushBase(ctx, reg.Host()+"/distroless/static")
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatalf("PushBase returned %q, not a digest reference: %v", ref, err)
	}
	idx, err := remote.Index(d, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := idx.Digest()
	if got.String() != d.DigestStr() {
		t.Fatalf("registry serves %s for %s", got, ref)
	}
	tagged, err := remote.Index(d.Context().Tag("nonroot"), remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if td, _ := tagged.Digest(); td != got {
		t.Fatalf(":nonroot is %s, want %s", td, got)
	}

	if _, err := PushBase(ctx, "not a repo"); err == nil {
		t.Fatal("PushBase accepted an invalid repository")
	}
}
