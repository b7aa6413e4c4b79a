package imagecompare

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The OCI annotation keys (also used as labels) that name the image an image was built on.
const (
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// Facts is what Inspect finds out about one image. Sizes are bytes.
type Facts struct {
	Name     string `json:"name"`
	Source   string `json:"source"`
	Kind     Kind   `json:"kind"`
	Digest   string `json:"digest"`
	Platform string `json:"platform"`

	CompressedBytes int64 `json:"compressedBytes"`
	// CompressedNote says whether the compressed size is what is stored (registry, layout) or recomputed (a
	// `docker save` archive holds uncompressed layers; go-containerregistry gzips them at level 1 to size them).
	CompressedNote    string `json:"compressedNote"`
	UncompressedBytes int64  `json:"uncompressedBytes"`
	// GzipBytes is every layer gzipped at GzipLevel by this command (WithRecompression): same content, same
	// encoder, so it compares images from different tools fairly. Zero when not asked for.
	GzipBytes int64 `json:"gzipBytes,omitempty"`
	GzipLevel int   `json:"gzipLevel,omitempty"`
	Layers    int   `json:"layers"`

	Base Base `json:"base"`

	User string `json:"user"`
	// UserResolved is User as uid:gid, looked up in the image's /etc/passwd and /etc/group the way the runtime
	// does, so "65532" (gid from passwd) and "65532:65532" compare equal.
	UserResolved string            `json:"userResolved"`
	Entrypoint   []string          `json:"entrypoint"`
	Cmd          []string          `json:"cmd"`
	Env          []string          `json:"env"`
	WorkingDir   string            `json:"workingDir"`
	ExposedPorts []string          `json:"exposedPorts"`
	Labels       map[string]string `json:"labels,omitempty"`
	// Healthcheck is the image's HEALTHCHECK test (Docker's extension of the OCI config); ko cannot set one.
	Healthcheck []string `json:"healthcheck,omitempty"`

	Files  int      `json:"files"`
	Shells []string `json:"shells"`
	Setuid []string `json:"setuidOrSetgid"`

	// EntrypointPath is the file the kernel would execute (symlinks followed); EntrypointSHA256 its content hash.
	EntrypointPath   string `json:"entrypointPath"`
	EntrypointSHA256 string `json:"entrypointSha256"`
	EntrypointBytes  int64  `json:"entrypointBytes"`
	// GoBuild is the entrypoint's Go build information (`go version -m`): toolchain, main package, settings.
	GoBuild []string `json:"goBuild,omitempty"`

	SBOM string `json:"sbom"`
}

// Base is the image this one was declared to be built on.
type Base struct {
	Name string `json:"name,omitempty"`
	// Digest is the declared digest: ko records the platform image's, a Dockerfile label the pinned reference's
	// (often an index).
	Digest string `json:"digest,omitempty"`
	// PlatformDigest is the digest of the platform image the layers came from, when the base could be fetched.
	PlatformDigest string `json:"platformDigest,omitempty"`
	// LayersVerified says the base's layers were fetched and are the bottom layers of this image.
	LayersVerified bool   `json:"layersVerified"`
	Note           string `json:"note,omitempty"`
}

// Identity is what base equality is judged on: the resolved platform image if known, else the declared digest.
func (b Base) Identity() string {
	if b.PlatformDigest != "" {
		return b.PlatformDigest
	}
	return b.Digest
}

// Inspect reads the image's manifest, config and every layer once (twice if the entrypoint is reached through a
// symlink it could not predict).
func Inspect(ctx context.Context, s *Subject) (*Facts, error) {
	img := s.Image
	f := &Facts{Name: s.Name, Source: s.Source, Kind: s.Kind, Platform: s.Platform}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("%s: digest: %w", s.Name, err)
	}
	f.Digest = d.String()
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", s.Name, err)
	}
	if cf.OS != "" {
		f.Platform = cf.Platform().String()
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", s.Name, err)
	}
	f.Layers = len(m.Layers)
	f.CompressedBytes = m.Config.Size
	for _, l := range m.Layers {
		f.CompressedBytes += l.Size
	}
	f.CompressedNote = "as stored"
	if s.Kind == KindDockerArchive {
		f.CompressedNote = "recomputed (gzip -1)"
	}

	c := cf.Config
	f.User, f.Entrypoint, f.Cmd, f.WorkingDir = c.User, c.Entrypoint, c.Cmd, c.WorkingDir
	f.Env = append([]string(nil), c.Env...)
	for p := range c.ExposedPorts {
		f.ExposedPorts = append(f.ExposedPorts, p)
	}
	sort.Strings(f.ExposedPorts)
	f.Labels = c.Labels
	if c.Healthcheck != nil {
		f.Healthcheck = c.Healthcheck.Test
	}

	f.Base = declaredBase(m.Annotations, c.Labels)
	if f.Base.Name != "" && s.options.resolveBase {
		resolveBase(ctx, s, cf, &f.Base)
	}

	if err := scanFilesystem(ctx, s, f); err != nil {
		return nil, err
	}
	f.SBOM = sbomPresence(ctx, s)
	return f, nil
}

func declaredBase(annotations, labels map[string]string) Base {
	var b Base
	for _, kv := range []map[string]string{annotations, labels} {
		if b.Name == "" {
			b.Name = kv[AnnotationBaseName]
		}
		if b.Digest == "" {
			b.Digest = kv[AnnotationBaseDigest]
		}
	}
	if b.Digest == "" && b.Name != "" {
		// A digest-pinned base reference ("repo:tag@sha256:...") carries its digest in the name.
		if i := strings.LastIndex(b.Name, "@"); i >= 0 {
			b.Digest = b.Name[i+1:]
		}
	}
	if b.Name == "" && b.Digest == "" {
		b.Note = "not declared (no " + AnnotationBaseName + " annotation or label)"
	}
	return b
}

// resolveBase fetches the declared base for the image's platform and checks that its layers are this image's bottom
// layers, so "same base" means the same bytes rather than the same spelling.
func resolveBase(ctx context.Context, s *Subject, cf *v1.ConfigFile, b *Base) {
	refStr := b.Name
	if !strings.Contains(refStr, "@") && b.Digest != "" {
		// ko writes name=the reference as given (maybe a tag) and digest=the platform image's digest.
		repo := refStr
		if r, err := name.ParseReference(refStr, s.options.nameOptions()...); err == nil {
			repo = r.Context().String()
		}
		refStr = repo + "@" + b.Digest
	}
	ref, err := name.ParseReference(refStr, s.options.nameOptions()...)
	if err != nil {
		b.Note = fmt.Sprintf("base reference unparsable: %v", err)
		return
	}
	if b.Digest != "" && !strings.HasSuffix(ref.Identifier(), b.Digest) {
		// Name pins one digest and the digest annotation says another: fetch by the annotation.
		ref = ref.Context().Digest(b.Digest)
	}
	desc, err := remote.Get(ref, s.options.remoteOptions(ctx)...)
	if err != nil {
		b.Note = fmt.Sprintf("base not fetched: %v", err)
		return
	}
	var base v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err == nil {
			want := s.options.platform
			if cf.OS != "" {
				want = *cf.Platform()
			}
			base, _, err = pickImage(idx, want, 0)
		}
		if err != nil {
			b.Note = fmt.Sprintf("base index: %v", err)
			return
		}
	} else if base, err = desc.Image(); err != nil {
		b.Note = fmt.Sprintf("base image: %v", err)
		return
	}
	bd, err := base.Digest()
	if err != nil {
		b.Note = fmt.Sprintf("base digest: %v", err)
		return
	}
	b.PlatformDigest = bd.String()
	bcf, err := base.ConfigFile()
	if err != nil {
		b.Note = fmt.Sprintf("base config: %v", err)
		return
	}
	want, have := bcf.RootFS.DiffIDs, cf.RootFS.DiffIDs
	if len(want) > len(have) {
		b.Note = "base has more layers than the image"
		return
	}
	for i := range want {
		if want[i] != have[i] {
			b.Note = fmt.Sprintf("layer %d differs from the base's", i)
			return
		}
	}
	b.LayersVerified = true
}

// entry is one path of the flattened filesystem.
type entry struct {
	typ   byte
	mode  int64
	link  string // symlink or hardlink target
	layer int
	size  int64
}

// shells are file names that give an attacker (or a debugging human) an interpreter.
var shells = map[string]bool{"sh": true, "bash": true, "ash": true, "dash": true, "zsh": true, "ksh": true, "busybox": true}

func scanFilesystem(ctx context.Context, s *Subject, f *Facts) error {
	layers, err := s.Image.Layers()
	if err != nil {
		return fmt.Errorf("%s: layers: %w", s.Name, err)
	}
	fs := map[string]*entry{}
	argv := append(append([]string(nil), f.Entrypoint...), f.Cmd...)
	candidates := entrypointCandidates(argv, f.Env)
	hashes := map[string]fileHash{}
	accounts := map[string][]byte{"/etc/passwd": nil, "/etc/group": nil}
	var total int64
	for i, l := range layers {
		var sink *gzipCounter
		if s.options.gzipLevel != 0 {
			if sink, err = newGzipCounter(s.options.gzipLevel); err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
		}
		n, err := walkLayer(ctx, l, sink, func(h *tar.Header, r io.Reader) error {
			p := cleanPath(h.Name)
			dir, base := path.Split(p)
			switch {
			case base == ".wh..wh..opq":
				prefix := strings.TrimSuffix(dir, "/") + "/"
				for k, e := range fs {
					if strings.HasPrefix(k, prefix) && e.layer < i {
						delete(fs, k)
					}
				}
				return nil
			case strings.HasPrefix(base, ".wh."):
				gone := path.Join(dir, strings.TrimPrefix(base, ".wh."))
				delete(fs, gone)
				for k := range fs {
					if strings.HasPrefix(k, gone+"/") {
						delete(fs, k)
					}
				}
				return nil
			}
			e := &entry{typ: h.Typeflag, mode: h.Mode, layer: i, size: h.Size}
			if h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink {
				e.link = h.Linkname
				if h.Typeflag == tar.TypeLink {
					e.link = cleanPath(h.Linkname)
				}
			}
			fs[p] = e
			if _, ok := accounts[p]; ok && h.Typeflag == tar.TypeReg && h.Size < 1<<20 {
				b, err := io.ReadAll(r)
				if err != nil {
					return err
				}
				accounts[p] = b
			}
			if h.Typeflag == tar.TypeReg && candidates[p] {
				fh, err := readBinary(r)
				if err != nil {
					return err
				}
				fh.layer = i
				hashes[p] = fh
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: layer %d: %w", s.Name, i, err)
		}
		total += n
		if sink != nil {
			if err := sink.zw.Close(); err != nil {
				return fmt.Errorf("%s: recompressing layer %d: %w", s.Name, i, err)
			}
			f.GzipBytes += sink.n
			f.GzipLevel = s.options.gzipLevel
		}
	}
	f.UncompressedBytes = total
	passwd, group := accounts["/etc/passwd"], accounts["/etc/group"]
	if _, ok := fs["/etc/passwd"]; !ok {
		passwd = nil
	}
	if _, ok := fs["/etc/group"]; !ok {
		group = nil
	}
	f.UserResolved = resolveUser(f.User, passwd, group)

	for p, e := range fs {
		if e.typ == tar.TypeDir {
			continue
		}
		f.Files++
		dir, base := path.Split(p)
		if shells[base] && (strings.HasSuffix(dir, "/bin/") || strings.HasSuffix(dir, "/sbin/")) {
			f.Shells = append(f.Shells, p)
		}
		if e.typ == tar.TypeReg && e.mode&(04000|02000) != 0 {
			f.Setuid = append(f.Setuid, p)
		}
	}
	sort.Strings(f.Shells)
	sort.Strings(f.Setuid)

	target, err := resolveEntrypoint(fs, argv, f.Env)
	if err != nil {
		f.EntrypointPath = err.Error()
		return nil
	}
	f.EntrypointPath = target
	h, ok := hashes[target]
	if !ok || h.layer != fs[target].layer {
		// Reached through a link we did not predict: read the layers again for just that file.
		h, err = hashOne(ctx, layers, target, fs[target].layer)
		if err != nil {
			return fmt.Errorf("%s: hashing %s: %w", s.Name, target, err)
		}
	}
	f.EntrypointSHA256, f.EntrypointBytes, f.GoBuild = h.sum, h.size, h.goBuild
	return nil
}

type fileHash struct {
	sum     string
	size    int64
	layer   int
	goBuild []string
}

// readBinary hashes a file and, when it is a Go program, reads how it was built: when two binaries differ, the
// build settings usually say why (toolchain, -ldflags, VCS stamp).
func readBinary(r io.Reader) (fileHash, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return fileHash{}, err
	}
	sum := sha256.Sum256(b)
	fh := fileHash{sum: "sha256:" + hex.EncodeToString(sum[:]), size: int64(len(b))}
	if bi, err := buildinfo.Read(bytes.NewReader(b)); err == nil {
		fh.goBuild = append(fh.goBuild, "go="+bi.GoVersion, "path="+bi.Path)
		for _, s := range bi.Settings {
			fh.goBuild = append(fh.goBuild, s.Key+"="+s.Value)
		}
	}
	return fh, nil
}

func hashOne(ctx context.Context, layers []v1.Layer, p string, layer int) (fileHash, error) {
	var out fileHash
	found := false
	_, err := walkLayer(ctx, layers[layer], nil, func(h *tar.Header, r io.Reader) error {
		if cleanPath(h.Name) != p || h.Typeflag != tar.TypeReg {
			return nil
		}
		fh, err := readBinary(r)
		fh.layer = layer
		out, found = fh, err == nil
		return err
	})
	if err == nil && !found {
		err = errors.New("file vanished on second read")
	}
	return out, err
}

// walkLayer streams a layer's uncompressed tar and returns its byte length.
func walkLayer(ctx context.Context, l v1.Layer, sink *gzipCounter, fn func(*tar.Header, io.Reader) error) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, fmt.Errorf("opening: %w", err)
	}
	defer rc.Close()
	var in io.Reader = rc
	if sink != nil {
		in = io.TeeReader(rc, sink.zw)
	}
	cr := &countingReader{r: in}
	// tar.Reader reports the legacy TypeRegA as TypeReg (or TypeDir for a
	// name ending in /), so TypeReg is the one regular-file flag to test.
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("reading tar: %w", err)
		}
		if err := fn(h, tr); err != nil {
			return 0, err
		}
	}
	// Tar padding after the end marker counts toward the layer's size too.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return 0, fmt.Errorf("draining: %w", err)
	}
	return cr.n, nil
}

// gzipCounter compresses what is written to zw and counts the compressed bytes.
type gzipCounter struct {
	zw *gzip.Writer
	n  int64
}

func newGzipCounter(level int) (*gzipCounter, error) {
	g := &gzipCounter{}
	zw, err := gzip.NewWriterLevel(g, level)
	if err != nil {
		return nil, fmt.Errorf("gzip level %d: %w", level, err)
	}
	g.zw = zw
	return g, nil
}

func (g *gzipCounter) Write(p []byte) (int, error) {
	g.n += int64(len(p))
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func cleanPath(p string) string {
	return path.Clean("/" + strings.TrimPrefix(p, "./"))
}

func pathDirs(env []string) []string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return strings.Split(v, ":")
		}
	}
	// What runc uses when the image sets no PATH.
	return []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}
}

// entrypointCandidates are the paths worth hashing during the first pass.
func entrypointCandidates(argv, env []string) map[string]bool {
	c := map[string]bool{}
	if len(argv) == 0 || argv[0] == "" {
		return c
	}
	if strings.Contains(argv[0], "/") {
		c[cleanPath(argv[0])] = true
		return c
	}
	for _, d := range pathDirs(env) {
		c[cleanPath(path.Join(d, argv[0]))] = true
	}
	return c
}

func resolveEntrypoint(fs map[string]*entry, argv, env []string) (string, error) {
	if len(argv) == 0 || argv[0] == "" {
		return "", errors.New("(no entrypoint or cmd)")
	}
	var tries []string
	if strings.Contains(argv[0], "/") {
		tries = []string{cleanPath(argv[0])}
	} else {
		for _, d := range pathDirs(env) {
			tries = append(tries, cleanPath(path.Join(d, argv[0])))
		}
	}
	for _, p := range tries {
		if t, ok := followLinks(fs, p); ok {
			return t, nil
		}
	}
	return "", fmt.Errorf("(%s not found in the image)", argv[0])
}

// followLinks resolves symlinks (in every path component) and hardlinks to a regular file.
func followLinks(fs map[string]*entry, p string) (string, bool) {
	for hops := 0; hops < 40; hops++ {
		p = resolveDirs(fs, p)
		e, ok := fs[p]
		if !ok {
			return "", false
		}
		switch e.typ {
		case tar.TypeReg:
			return p, true
		case tar.TypeSymlink:
			if strings.HasPrefix(e.link, "/") {
				p = cleanPath(e.link)
			} else {
				p = cleanPath(path.Join(path.Dir(p), e.link))
			}
		case tar.TypeLink:
			p = e.link
		default:
			return "", false
		}
	}
	return "", false
}

// resolveDirs follows symlinked parent directories (e.g. /bin -> usr/bin on merged-/usr systems).
func resolveDirs(fs map[string]*entry, p string) string {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := path.Join(cur, part)
		if i < len(parts)-1 {
			for hops := 0; hops < 40; hops++ {
				e, ok := fs[next]
				if !ok || e.typ != tar.TypeSymlink {
					break
				}
				if strings.HasPrefix(e.link, "/") {
					next = cleanPath(e.link)
				} else {
					next = cleanPath(path.Join(path.Dir(next), e.link))
				}
			}
		}
		cur = next
	}
	return cur
}

// sbomPresence answers honestly: only a registry can hold ko's `sha256-<digest>.sbom` tags.
func sbomPresence(ctx context.Context, s *Subject) string {
	if s.Kind != KindRegistry || s.ref == nil {
		return "unknown (" + string(s.Kind) + " holds no attached SBOM)"
	}
	var digests []string
	if d, err := s.Image.Digest(); err == nil {
		digests = append(digests, d.String())
	}
	if s.IndexDigest != "" {
		digests = append(digests, s.IndexDigest)
	}
	for _, d := range digests {
		tag := s.ref.Context().Tag(strings.Replace(d, ":", "-", 1) + ".sbom")
		if _, err := remote.Head(tag, s.options.remoteOptions(ctx)...); err == nil {
			return "yes (" + tag.TagStr() + ")"
		}
	}
	return "none"
}

// resolveUser turns a config User ("", "name", "uid", "name:group", "uid:gid") into uid:gid as runc does: names
// through /etc/passwd and /etc/group, a missing group from the user's passwd entry, else 0.
func resolveUser(user string, passwd, group []byte) string {
	u, g, hasGroup := strings.Cut(user, ":")
	if u == "" {
		u = "0"
	}
	uid, gid := u, "0"
	found := false
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 4 && (f[0] == u || f[2] == u) {
			uid, gid, found = f[2], f[3], true
			break
		}
	}
	if !found && !isNumber(u) {
		return user + " (unknown user)"
	}
	if hasGroup {
		gid = g
		if !isNumber(g) {
			gid = g + " (unknown group)"
			for _, line := range strings.Split(string(group), "\n") {
				f := strings.Split(line, ":")
				if len(f) >= 3 && f[0] == g {
					gid = f[2]
					break
				}
			}
		}
	}
	return uid + ":" + gid
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
