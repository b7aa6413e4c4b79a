package airgap

import (
	"archive/tar"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestBaseIsDeterministic(t *testing.T) {
	a, err := Base()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Base()
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
	idx, err := Base()
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

	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	bodies := map[string]string{}
	tr := tar.NewReader(mutate.Extract(img))
	var prev string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name <= prev {
			t.Errorf("tar entries not sorted: %q after %q", hdr.Name, prev)
		}
		prev = hdr.Name
		if !hdr.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s has mtime %v, want the epoch", hdr.Name, hdr.ModTime)
		}
		// mutate.Extract cleans names ("tmp/" becomes "tmp").
		n := strings.TrimSuffix(hdr.Name, "/")
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
		{"etc/passwd", 0o644, 0, "nonroot:x:65532:65532:nonroot:/home/nonroot:"},
		{"etc/passwd", 0o644, 0, "root:x:0:0:"},
		{"etc/passwd", 0o644, 0, "nobody:x:65534:65534:"},
		{"etc/group", 0o644, 0, "nonroot:x:65532:"},
		{"etc/nsswitch.conf", 0o644, 0, "hosts:          files dns"},
		{"etc/os-release", 0o644, 0, `ID="debian"`},
		{"etc/ssl/certs/ca-certificates.crt", 0o644, 0, "-----BEGIN CERTIFICATE-----"},
		{"tmp", 0o1777, 0, ""},
		{"home/nonroot", 0o700, NonrootUID, ""},
	}
	for _, tt := range tests {
		hdr, ok := files[tt.name]
		if !ok {
			t.Errorf("%s missing", tt.name)
			continue
		}
		if hdr.Mode != tt.mode || hdr.Uid != tt.uid {
			t.Errorf("%s: mode %o uid %d, want %o %d", tt.name, hdr.Mode, hdr.Uid, tt.mode, tt.uid)
		}
		if !strings.Contains(bodies[tt.name], tt.contains) {
			t.Errorf("%s does not contain %q", tt.name, tt.contains)
		}
	}

	// The bundle must be usable by crypto/x509, which is what SSL_CERT_FILE
	// feeds in a Go program.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(bodies["etc/ssl/certs/ca-certificates.crt"])) {
		t.Fatal("CA bundle has no parseable certificate")
	}
	if blk, _ := pem.Decode([]byte(bodies["etc/ssl/certs/ca-certificates.crt"])); blk == nil {
		t.Fatal("CA bundle is not PEM")
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
