package airgap

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The contract of gcr.io/distroless/static-debian13:nonroot that the stand-in
// reproduces. Tests assert against these too, so they are exported.
const (
	NonrootUID  = 65532
	NonrootHome = "/home/nonroot"
	CertFile    = "/etc/ssl/certs/ca-certificates.crt"
	BasePath    = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// ZoneinfoDir is where Debian's tzdata (and, from Debian 13 on,
	// tzdata-legacy for names such as US/Eastern) puts the time zones; Go's
	// time.LoadLocation looks there.
	ZoneinfoDir = "/usr/share/zoneinfo"
)

// BasePlatforms are the platforms of the stand-in's index, the same ones
// .ko.yaml builds for.
var BasePlatforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
}

// baseEpoch is every timestamp in the stand-in; distroless uses the Unix
// epoch too, and any fixed value keeps the digest stable.
var baseEpoch = time.Unix(0, 0).UTC()

// The files below are distroless's own (GoogleContainerTools/distroless:
// common/BUILD.bazel for passwd and group, static/nsswitch.conf,
// common/variables.bzl for os-release), byte for byte.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nobody:x:65534:\n" +
		"tty:x:5:\n" +
		"staff:x:50:\n" +
		"nonroot:x:65532:\n"
	nsswitch = "# /etc/nsswitch.conf\n" +
		"#\n" +
		"# Example configuration of GNU Name Service Switch functionality.\n" +
		"# If you have the `glibc-doc-reference' and `info' packages installed, try:\n" +
		"# `info libc \"Name Service Switch\"' for information about this file.\n" +
		"\n" +
		"passwd:         compat\n" +
		"group:          compat\n" +
		"shadow:         compat\n" +
		"gshadow:        files\n" +
		"\n" +
		"hosts:          files dns\n" +
		"networks:       files\n" +
		"\n" +
		"protocols:      db files\n" +
		"services:       db files\n" +
		"ethers:         db files\n" +
		"rpc:            db files\n" +
		"\n" +
		"netgroup:       nis\n"
	// Debian 13 (trixie). The real file lives at /usr/lib/os-release and
	// /etc/os-release links to it, as in Debian's base-files.
	osRelease = `PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="13"
VERSION="Debian GNU/Linux 13 (trixie)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"
BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"
`
)

// entry is one file, directory or symlink of the base's layer.
type entry struct {
	name     string // relative, no leading slash; directories end in "/"
	mode     int64
	uid, gid int
	body     string
	link     string // symlink target; makes the entry a symlink
}

// baseEntries lists arch's layer in the order it is written: sorted by
// name, so parents come before children and the tar bytes never depend on
// map order or walk order. zones is the tz database, name to TZif bytes.
func baseEntries(arch string, zones map[string]string) ([]entry, error) {
	certs, err := caBundle()
	if err != nil {
		return nil, err
	}
	entries := []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, body: group},
		{name: "etc/nsswitch.conf", mode: 0o644, body: nsswitch},
		{name: "etc/os-release", mode: 0o777, link: "../usr/lib/os-release"},
		{name: "etc/passwd", mode: 0o644, body: passwd},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: certs},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: NonrootUID, gid: NonrootUID},
		{name: "root/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
		{name: "usr/", mode: 0o755},
		{name: "usr/lib/os-release", mode: 0o644, body: osRelease},
		{name: "usr/share/", mode: 0o755},
	}
	// Debian 13 merges /usr: its base-files ships /bin, /lib and /sbin, and
	// /lib64 on amd64, as links into /usr (Debian 12's were directories).
	merged := []string{"bin", "lib", "sbin"}
	if arch == "amd64" {
		merged = append(merged, "lib64")
	}
	for _, d := range merged {
		entries = append(entries,
			entry{name: d, mode: 0o777, link: "usr/" + d},
			entry{name: "usr/" + d + "/", mode: 0o755})
	}
	entries = append(entries, zoneEntries(zones)...)
	slices.SortFunc(entries, func(a, b entry) int {
		return strings.Compare(strings.TrimSuffix(a.name, "/"), strings.TrimSuffix(b.name, "/"))
	})
	return entries, nil
}

// zoneEntries lays the zones out under ZoneinfoDir, with every directory
// they need.
func zoneEntries(zones map[string]string) []entry {
	root := strings.TrimPrefix(ZoneinfoDir, "/")
	entries := []entry{{name: root + "/", mode: 0o755}}
	dirs := map[string]bool{}
	for n, body := range zones {
		for d := path.Dir(n); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			entries = append(entries, entry{name: root + "/" + d + "/", mode: 0o755})
		}
		entries = append(entries, entry{name: root + "/" + n, mode: 0o644, body: body})
	}
	return entries
}

// goZoneinfo reads the tz database the Go toolchain ships
// ($GOROOT/lib/time/zoneinfo.zip), so the stand-in's zones are the same on
// every machine with the same toolchain. Unlike Debian's tzdata it holds
// the backward-compatible names (US/Eastern) as copies rather than links,
// and no right/ zones; Go programs read neither difference.
func goZoneinfo(ctx context.Context) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("airgap: go env GOROOT: %w", err)
	}
	file := filepath.Join(strings.TrimSpace(string(out)), "lib", "time", "zoneinfo.zip")
	zr, err := zip.OpenReader(file)
	if err != nil {
		return nil, fmt.Errorf("airgap: the stand-in's time zones come from the Go toolchain: %w", err)
	}
	defer zr.Close()
	zones := map[string]string{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("airgap: %s: %s: %w", file, f.Name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("airgap: %s: %s: %w", file, f.Name, err)
		}
		zones[f.Name] = string(b)
	}
	if zones["Etc/UTC"] == "" {
		return nil, fmt.Errorf("airgap: %s has no Etc/UTC", file)
	}
	return zones, nil
}

// caBundle renders the Mozilla roots that golang.org/x/crypto ships as PEM,
// in the bundle's own (stable) order.
func caBundle() (string, error) {
	var buf bytes.Buffer
	n := 0
	for root := range bundle.Roots() {
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return "", fmt.Errorf("airgap: encode CA certificate: %w", err)
		}
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("airgap: the x509roots fallback bundle is empty")
	}
	return buf.String(), nil
}

func baseTar(arch string, zones map[string]string) ([]byte, error) {
	entries, err := baseEntries(arch, zones)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: baseEpoch,
			Format:  tar.FormatUSTAR,
		}
		switch {
		case e.link != "":
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.link
		case e.name[len(e.name)-1] == '/':
			hdr.Typeflag = tar.TypeDir
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("airgap: tar header %s: %w", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			return nil, fmt.Errorf("airgap: tar body %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("airgap: close tar: %w", err)
	}
	return buf.Bytes(), nil
}

// Base builds the offline stand-in for gcr.io/distroless/static-debian13:nonroot:
// an OCI index for linux/amd64 and linux/arm64 whose bytes, and so digest,
// are the same on every call and every machine with the same Go toolchain
// (it also supplies the time zones) and x509roots bundle.
func Base(ctx context.Context) (v1.ImageIndex, error) {
	zones, err := goZoneinfo(ctx)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range BasePlatforms {
		raw, err := baseTar(p.Architecture, zones)
		if err != nil {
			return nil, err
		}
		img, err := layerImage(raw, v1.History{
			CreatedBy: "pkg/internal/airgap.Base",
			Comment:   "offline stand-in for gcr.io/distroless/static-debian13:nonroot",
		}, func(cfg *v1.ConfigFile) {
			cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
			cfg.Config.User = fmt.Sprint(NonrootUID)
			cfg.Config.WorkingDir = NonrootHome
			cfg.Config.Env = []string{"PATH=" + BasePath, "SSL_CERT_FILE=" + CertFile}
		})
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}

// layerImage is a one-layer OCI image of the tar raw, gzipped at one fixed
// level so its bytes depend on raw alone, created at baseEpoch with the
// history entry h and the config edit sets.
func layerImage(raw []byte, h v1.History, edit func(*v1.ConfigFile)) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithCompressionLevel(gzip.BestCompression),
		tarball.WithMediaType(types.OCILayer),
	)
	if err != nil {
		return nil, fmt.Errorf("airgap: %s layer: %w", h.CreatedBy, err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	h.Created = v1.Time{Time: baseEpoch}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: h})
	if err != nil {
		return nil, fmt.Errorf("airgap: %s: append layer: %w", h.CreatedBy, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("airgap: %s config: %w", h.CreatedBy, err)
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: baseEpoch}
	edit(cfg)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("airgap: %s: set config: %w", h.CreatedBy, err)
	}
	return img, nil
}

// pushByDigest pushes img to repo by its digest and returns
// "<repo>@sha256:...".
func pushByDigest(ctx context.Context, repo string, img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("airgap: digest: %w", err)
	}
	ref, err := name.NewDigest(repo + "@" + d.String())
	if err != nil {
		return "", fmt.Errorf("airgap: repository %q: %w", repo, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("airgap: push to %s: %w", ref, err)
	}
	return ref.String(), nil
}

// PushBase pushes Base to repo (for example r.Host()+"/distroless/static"),
// tagged "nonroot" like the real one, and returns the digest reference
// "<repo>@sha256:..." to use as KO_DEFAULTBASEIMAGE.
func PushBase(ctx context.Context, repo string) (string, error) {
	tag, err := name.NewTag(repo + ":nonroot")
	if err != nil {
		return "", fmt.Errorf("airgap: base repository %q: %w", repo, err)
	}
	idx, err := Base(ctx)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(tag, idx, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("airgap: push base to %s: %w", tag, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", fmt.Errorf("airgap: base digest: %w", err)
	}
	return tag.Context().Digest(d.String()).String(), nil
}
