package imagecompare

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// file is one tar entry of a test layer.
type file struct {
	name, body, link string
	typ              byte
	mode             int64
	mtime            time.Time
}

func layerOf(t *testing.T, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Linkname: f.link, ModTime: f.mtime}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func build(t *testing.T, base v1.Image, cfg v1.Config, annotations map[string]string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	merged := cf.Config
	if cfg.User != "" {
		merged.User = cfg.User
	}
	if cfg.Entrypoint != nil {
		merged.Entrypoint = cfg.Entrypoint
	}
	merged.Env = append(merged.Env, cfg.Env...)
	if cfg.WorkingDir != "" {
		merged.WorkingDir = cfg.WorkingDir
	}
	merged.Labels = cfg.Labels
	merged.ExposedPorts = cfg.ExposedPorts
	cf.Config = merged
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	if annotations != nil {
		img = mutate.Annotations(img, annotations).(v1.Image)
	}
	return img
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

// fixture is a small world: a registry holding a distroless-like base index, and images built on it.
type fixture struct {
	reg       string
	baseIndex string // repo@sha256 of the base index
	basePlat  string // digest of its linux/amd64 image
	base      v1.Image
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	base := build(t, empty.Image, v1.Config{User: "65532", WorkingDir: "/home/nonroot", Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}}, nil,
		layerOf(t,
			file{name: "etc/", typ: tar.TypeDir},
			file{name: "etc/passwd", body: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n", mode: 0o644},
			file{name: "home/nonroot/", typ: tar.TypeDir, mode: 0o700},
			file{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		))
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: base, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	repo, err := name.NewRepository(host + "/distroless/static")
	if err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	if err := remote.WriteIndex(repo.Digest(idxDigest.String()), idx); err != nil {
		t.Fatal(err)
	}
	bd, _ := base.Digest()
	return &fixture{reg: host, baseIndex: repo.Digest(idxDigest.String()).String(), basePlat: bd.String(), base: base}
}

// helloBinary stands in for the service binary in every fixture image.
const helloBinary = "\x7fELF the hello binary"

// koLike is what ko produces from helloBinary: base + kodata layer + binary layer, base recorded in manifest
// annotations, PATH extended with /ko-app.
func (fx *fixture) koLike(t *testing.T) v1.Image {
	return build(t, fx.base, v1.Config{Entrypoint: []string{"/ko-app/hello"}, Env: []string{"KO_DATA_PATH=/var/run/ko"}},
		map[string]string{AnnotationBaseName: strings.Split(fx.baseIndex, "@")[0] + ":nonroot", AnnotationBaseDigest: fx.basePlat},
		layerOf(t, file{name: "var/run/ko/", typ: tar.TypeDir}),
		layerOf(t, file{name: "ko-app/", typ: tar.TypeDir}, file{name: "ko-app/hello", body: helloBinary}))
}

// dockerfileLike is what Dockerfile.reference produces: one COPY layer with other mtimes, base in a label.
func (fx *fixture) dockerfileLike(t *testing.T, binary, user string) v1.Image {
	return build(t, fx.base, v1.Config{Entrypoint: []string{"/ko-app/hello"}, User: user, Labels: map[string]string{AnnotationBaseName: fx.baseIndex}}, nil,
		layerOf(t, file{name: "ko-app/", typ: tar.TypeDir, mtime: time.Unix(1700000000, 0)}, file{name: "ko-app/hello", body: binary, mtime: time.Unix(1700000000, 0)}))
}

// singleStage is the seed's "before": a builder with a shell, a setuid binary, sources and no declared base.
func (fx *fixture) singleStage(t *testing.T, binary string) v1.Image {
	return build(t, empty.Image, v1.Config{Entrypoint: []string{"hello"}, Env: []string{"PATH=/usr/local/go/bin:/bin"}, WorkingDir: "/src"}, nil,
		layerOf(t,
			file{name: "bin/busybox", body: "busybox"},
			file{name: "bin/sh", typ: tar.TypeSymlink, link: "busybox"},
			file{name: "bin/su", body: "su", mode: 0o4755},
			file{name: "src/main.go", body: strings.Repeat("package main\n", 1000)},
		),
		// The binary reaches PATH through a symlink, as `go install` + a link would.
		layerOf(t, file{name: "usr/local/go/bin/hello", typ: tar.TypeSymlink, link: "/opt/hello"}, file{name: "opt/hello", body: binary}),
	)
}

// Three ways to hand an image to the command.
func (fx *fixture) asRegistry(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	d, _ := img.Digest()
	ref, err := name.ParseReference(fx.reg + "/" + repo + "@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return ref.String()
}

func asLayout(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})); err != nil {
		t.Fatal(err)
	}
	return dir
}

func asArchive(t *testing.T, img v1.Image) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("hello:test")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompare(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	const bin = helloBinary
	amd64 := WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})
	tests := []struct {
		name     string
		args     func(t *testing.T) []string
		same     bool
		wantDiff []string // substrings of Differences
	}{
		{
			name: "ko and Dockerfile images from the registry agree",
			args: func(t *testing.T) []string {
				return []string{"ko=" + fx.asRegistry(t, "ko", fx.koLike(t)), "dockerfile=" + fx.asRegistry(t, "df", fx.dockerfileLike(t, bin, "65532:65532"))}
			},
			same: true,
		},
		{
			name: "layout and docker save archive agree",
			args: func(t *testing.T) []string {
				return []string{"ko=" + asLayout(t, fx.koLike(t)), "dockerfile=" + asArchive(t, fx.dockerfileLike(t, bin, "65532:65532"))}
			},
			same: true,
		},
		{
			name: "different binary bytes fail the verdict",
			args: func(t *testing.T) []string {
				return []string{"ko=" + asLayout(t, fx.koLike(t)), "dockerfile=" + asLayout(t, fx.dockerfileLike(t, bin+" with VCS stamp", "65532"))}
			},
			wantDiff: []string{"entrypoint binary sha256"},
		},
		{
			name: "root user fails the verdict",
			args: func(t *testing.T) []string {
				return []string{"ko=" + asLayout(t, fx.koLike(t)), "dockerfile=" + asLayout(t, fx.dockerfileLike(t, bin, "0"))}
			},
			wantDiff: []string{"user (uid:gid): ko 65532:65532, dockerfile 0:0"},
		},
		{
			name: "a HEALTHCHECK only one image has fails the verdict",
			args: func(t *testing.T) []string {
				img, err := mutate.Config(fx.dockerfileLike(t, bin, "65532:65532"), v1.Config{
					Entrypoint:  []string{"/ko-app/hello"},
					User:        "65532:65532",
					Labels:      map[string]string{AnnotationBaseName: fx.baseIndex},
					Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "/ko-app/hello", "healthcheck"}},
				})
				if err != nil {
					t.Fatal(err)
				}
				return []string{"ko=" + asLayout(t, fx.koLike(t)), "dockerfile=" + asLayout(t, img)}
			},
			wantDiff: []string{`healthcheck: ko (none), dockerfile ["CMD" "/ko-app/hello" "healthcheck"]`},
		},
		{
			name: "single-stage differs in base, argv, env and workdir but not in binary",
			args: func(t *testing.T) []string {
				return []string{"ko=" + asLayout(t, fx.koLike(t)), "single=" + asArchive(t, fx.singleStage(t, bin))}
			},
			wantDiff: []string{"user (uid:gid): ko 65532:65532, single 0:0", "entrypoint+cmd:", "env:", "workdir:", "base:"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compare(ctx, tc.args(t), DefaultIgnoredEnv, amd64)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict.SameOutcome != tc.same {
				t.Fatalf("SameOutcome = %v, want %v; differences: %q", r.Verdict.SameOutcome, tc.same, r.Verdict.Differences)
			}
			all := strings.Join(r.Verdict.Differences, "\n")
			for _, w := range tc.wantDiff {
				if !strings.Contains(all, w) {
					t.Errorf("differences lack %q:\n%s", w, all)
				}
			}
			if strings.Contains(all, "entrypoint binary sha256") != strings.Contains(strings.Join(tc.wantDiff, " "), "entrypoint binary sha256") {
				t.Errorf("binary verdict wrong:\n%s", all)
			}
			for _, f := range r.Images {
				if f.EntrypointSHA256 == "" {
					t.Errorf("%s: entrypoint not hashed: %s", f.Name, f.EntrypointPath)
				}
			}
		})
	}
}

func TestInspectFacts(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	const bin = helloBinary
	amd64 := WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})

	ko := fx.koLike(t)
	koRef := fx.asRegistry(t, "ko", ko)
	// ko attaches its SBOM as a tag next to the image.
	kd, _ := ko.Digest()
	sbomTag, _ := name.NewTag(fx.reg + "/ko:" + strings.Replace(kd.String(), ":", "-", 1) + ".sbom")
	sbom, _ := mutate.AppendLayers(empty.Image, layerOf(t, file{name: "sbom.spdx.json", body: "{}"}))
	if err := remote.Write(sbomTag, sbom); err != nil {
		t.Fatal(err)
	}

	withWhiteouts := build(t, fx.base, v1.Config{Entrypoint: []string{"/ko-app/hello"}}, nil,
		layerOf(t, file{name: "ko-app/hello", body: "old"}, file{name: "junk/a", body: "a"}, file{name: "junk/b", body: "b"}, file{name: "cache/x", body: "x"}),
		layerOf(t, file{name: "ko-app/hello", body: bin}, file{name: "junk/.wh..wh..opq", body: ""}, file{name: "junk/c", body: "c"}, file{name: ".wh.cache", body: ""}))

	tests := []struct {
		name  string
		arg   string
		check func(t *testing.T, f *Facts)
	}{
		{"ko image in a registry", "ko=" + koRef, func(t *testing.T, f *Facts) {
			if f.EntrypointSHA256 != sum(bin) || f.EntrypointPath != "/ko-app/hello" {
				t.Errorf("entrypoint %s %s, want /ko-app/hello %s", f.EntrypointPath, f.EntrypointSHA256, sum(bin))
			}
			if !strings.HasPrefix(f.SBOM, "yes") {
				t.Errorf("SBOM = %q, want yes", f.SBOM)
			}
			if f.Base.PlatformDigest != fx.basePlat || !f.Base.LayersVerified {
				t.Errorf("base = %+v, want verified %s", f.Base, fx.basePlat)
			}
			if f.Layers != 3 || f.User != "65532" || f.UserResolved != "65532:65532" || len(f.Shells) != 0 || len(f.Setuid) != 0 {
				t.Errorf("layers %d user %q shells %v setuid %v", f.Layers, f.User, f.Shells, f.Setuid)
			}
			if f.CompressedBytes <= 0 || f.UncompressedBytes <= f.CompressedBytes/10 {
				t.Errorf("sizes %d/%d", f.CompressedBytes, f.UncompressedBytes)
			}
		}},
		{"Dockerfile image: base from a digest-pinned label, resolved through the index", "df=" + fx.asRegistry(t, "df", fx.dockerfileLike(t, bin, "65532:65532")), func(t *testing.T, f *Facts) {
			if f.Base.Digest == "" || f.Base.PlatformDigest != fx.basePlat || !f.Base.LayersVerified {
				t.Errorf("base = %+v, want index resolved to %s", f.Base, fx.basePlat)
			}
			if f.SBOM != "none" {
				t.Errorf("SBOM = %q, want none", f.SBOM)
			}
		}},
		{"recompression counts every layer at one gzip level", "ko=" + koRef, func(t *testing.T, f *Facts) {
			if f.GzipLevel != 9 || f.GzipBytes <= 0 || f.GzipBytes >= f.UncompressedBytes {
				t.Errorf("gzip level %d bytes %d (uncompressed %d)", f.GzipLevel, f.GzipBytes, f.UncompressedBytes)
			}
		}},
		{"single-stage from a docker save archive", "single=" + asArchive(t, fx.singleStage(t, bin)), func(t *testing.T, f *Facts) {
			if f.EntrypointPath != "/opt/hello" || f.EntrypointSHA256 != sum(bin) {
				t.Errorf("entrypoint via PATH and symlink: %s %s", f.EntrypointPath, f.EntrypointSHA256)
			}
			if strings.Join(f.Shells, " ") != "/bin/busybox /bin/sh" || strings.Join(f.Setuid, " ") != "/bin/su" {
				t.Errorf("shells %v setuid %v", f.Shells, f.Setuid)
			}
			if !strings.HasPrefix(f.SBOM, "unknown") || f.Base.Identity() != "" || f.CompressedNote == "as stored" {
				t.Errorf("sbom %q base %+v note %q", f.SBOM, f.Base, f.CompressedNote)
			}
			if f.Files != 6 {
				t.Errorf("files = %d, want 6", f.Files)
			}
		}},
		{"whiteouts and opaque dirs are applied", "w=" + asLayout(t, withWhiteouts), func(t *testing.T, f *Facts) {
			// base: etc/passwd; then ko-app/hello and junk/c survive; junk/a, junk/b, cache/x are gone.
			if f.Files != 3 {
				t.Errorf("files = %d, want 3", f.Files)
			}
			if f.EntrypointSHA256 != sum(bin) {
				t.Errorf("entrypoint hash is the overwritten file's")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []Option{amd64}
			if strings.HasPrefix(tc.name, "recompression") {
				opts = append(opts, WithRecompression(9))
			}
			s, err := Open(ctx, tc.arg, opts...)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Inspect(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, f)
		})
	}
}

func TestOpenBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notTar := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notTar, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	tests := []struct{ name, arg, want string }{
		{"missing file", "x=" + filepath.Join(dir, "missing.tar"), "no such file"},
		{"directory that is not a layout", dir, "not an OCI image layout"},
		{"file that is not an archive", notTar, "docker save"},
		{"bad reference", "Not A Reference!", "neither an existing file"},
		{"image not in registry", strings.TrimPrefix(srv.URL, "http://") + "/nope:latest", "fetching"},
		{"empty source", "x=", "empty image source"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(ctx, tc.arg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q) = %v, want error containing %q", tc.arg, err, tc.want)
			}
		})
	}
}

func TestJudgeOutcomes(t *testing.T) {
	img := func(name, bin, user string) *Facts {
		return &Facts{Name: name, EntrypointSHA256: sum(bin), UserResolved: user, Entrypoint: []string{"/ko-app/hello"}, Base: Base{Digest: sum("base")}}
	}
	v := Judge([]*Facts{img("ko", "b", "65532:65532"), img("multi", "b", "65532:65532"), img("single", "b", "0:0")}, nil)
	if v.SameOutcome || len(v.Outcomes) != 2 || !v.Outcomes[0].SameOutcome || v.Outcomes[1].SameOutcome {
		t.Fatalf("verdict %+v", v)
	}
	if got := strings.Join(v.Outcomes[1].Differences, ";"); !strings.Contains(got, "user (uid:gid): ko 65532:65532, single 0:0") {
		t.Errorf("single's differences: %s", got)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, Report{Images: []*Facts{img("ko", "b", "1:1"), img("multi", "b", "1:1"), img("single", "c", "1:1")}, Verdict: v}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- multi: **same outcome**", "- single: **different outcome**", "  - user (uid:gid)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestRender(t *testing.T) {
	fs := []*Facts{
		{Name: "single", CompressedBytes: 300e6, UncompressedBytes: 900e6, EntrypointSHA256: sum("a")},
		{Name: "ko", CompressedBytes: 9e6, UncompressedBytes: 20e6, EntrypointSHA256: sum("a")},
	}
	r := Report{Images: fs, Verdict: Judge(fs, nil)}
	var md, svg, js bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteSVG(&svg, fs); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| | single | ko |", "| compressed size | 300.00 MB | 9.00 MB |", "xychart-beta", `x-axis ["single", "ko"]`, "bar [300.00, 9.00]", "y-axis \"MB\" 0 --> 500", "different outcome"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if !strings.HasPrefix(svg.String(), "<svg") || !strings.Contains(svg.String(), "300.00 MB") {
		t.Errorf("svg: %s", svg.String())
	}
	if !strings.Contains(js.String(), `"sameOutcome": false`) {
		t.Errorf("json: %s", js.String())
	}
}

func TestBuildDiff(t *testing.T) {
	tests := []struct {
		name string
		a, b []string
		want string
	}{
		{"not Go binaries", nil, nil, ""},
		{"ldflags differ", []string{"go=go1.26.8", "-ldflags=-s -w"}, []string{"go=go1.26.8", "-ldflags=-X v=1"}, "-ldflags: -s -w | -X v=1"},
		{"VCS stamp only on one", []string{"go=go1.26.8"}, []string{"go=go1.26.8", "vcs.revision=abc"}, "vcs.revision: (none) | abc"},
		{"same settings", []string{"go=go1.26.8"}, []string{"go=go1.26.8"}, "(same toolchain and settings; the difference is elsewhere, e.g. sources)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildDiff(tc.a, tc.b); got != tc.want {
				t.Errorf("buildDiff = %q, want %q", got, tc.want)
			}
		})
	}
}
