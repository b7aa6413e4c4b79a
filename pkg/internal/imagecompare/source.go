// Package imagecompare puts container images side by side: what a user pulls (sizes, layers), what runs (user,
// entrypoint, env, the entrypoint binary's bytes) and what an attacker would find (shell, setuid files), then says
// whether two images deliver the same runtime contract even though they were built differently.
package imagecompare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Kind says where an image was read from; it decides what can be known about it (only a registry has SBOM tags,
// only stored blobs have a real compressed size).
type Kind string

// The image sources the package understands.
const (
	KindRegistry      Kind = "registry"
	KindOCILayout     Kind = "oci-layout"
	KindDockerArchive Kind = "docker-archive"
)

// Subject is one opened image, ready to inspect.
type Subject struct {
	Name   string // short display name
	Source string // what the user passed
	Kind   Kind
	Image  v1.Image
	// IndexDigest is set when the image was picked out of an index for a platform; ko attaches its SBOM to both.
	IndexDigest string
	Platform    string
	ref         name.Reference
	options     *options
}

type options struct {
	platform    v1.Platform
	insecure    bool
	resolveBase bool
	gzipLevel   int
	remote      []remote.Option
}

// Option tunes Open and Inspect.
type Option func(*options)

// WithPlatform picks the image out of an index (default linux/<this machine's arch>).
func WithPlatform(p v1.Platform) Option { return func(o *options) { o.platform = p } }

// WithInsecure allows plain HTTP for registries other than loopback (which go-containerregistry already allows).
func WithInsecure(insecure bool) Option { return func(o *options) { o.insecure = insecure } }

// WithBaseResolution controls whether the base image named in annotations or labels is fetched to check that its
// layers really are the bottom of the inspected image (default on; off for fully offline use).
func WithBaseResolution(on bool) Option { return func(o *options) { o.resolveBase = on } }

// WithRecompression also gzips every layer's content at one level (1-9) and reports the total, so images written by
// tools with different encoder settings (ko: level 1; docker push: its default) can be compared on content alone.
// It costs a compression pass over every layer.
func WithRecompression(level int) Option { return func(o *options) { o.gzipLevel = level } }

// WithRemoteOptions adds go-containerregistry remote options (transport, auth).
func WithRemoteOptions(ro ...remote.Option) Option {
	return func(o *options) { o.remote = append(o.remote, ro...) }
}

func newOptions(opts []Option) *options {
	o := &options{
		platform:    v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		resolveBase: true,
	}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

func (o *options) remoteOptions(ctx context.Context) []remote.Option {
	ro := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithPlatform(o.platform)}
	return append(ro, o.remote...)
}

func (o *options) nameOptions() []name.Option {
	if o.insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// A display name is a short word; references and paths have characters a name does not, so "ko=reg/img" is
// unambiguous.
var displayName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

// SplitArg splits "NAME=SOURCE" into its parts; without a name the source itself is the name.
func SplitArg(arg string) (label, source string) {
	if i := strings.Index(arg, "="); i > 0 && displayName.MatchString(arg[:i]) {
		return arg[:i], arg[i+1:]
	}
	return arg, arg
}

// Open resolves "NAME=SOURCE" where SOURCE is an existing OCI layout directory, an existing `docker save` (or
// `ko build --tarball`) file, or else a registry reference.
func Open(ctx context.Context, arg string, opts ...Option) (*Subject, error) {
	o := newOptions(opts)
	label, src := SplitArg(arg)
	if src == "" {
		return nil, fmt.Errorf("%q: empty image source", arg)
	}
	s := &Subject{Name: label, Source: src, options: o, Platform: o.platform.String()}
	fi, statErr := os.Stat(src)
	switch {
	case statErr == nil && fi.IsDir():
		return s, s.openLayout()
	case statErr == nil:
		return s, s.openArchive()
	case looksLikePath(src):
		return nil, fmt.Errorf("%q: no such file or directory (and it is not an image reference): %w", src, statErr)
	}
	return s, s.openRemote(ctx)
}

// looksLikePath catches typos in file names before they are misread as registry references.
func looksLikePath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		strings.HasSuffix(s, ".tar") || strings.HasSuffix(s, ".tar.gz") || strings.HasSuffix(s, ".tgz")
}

func (s *Subject) openLayout() error {
	s.Kind = KindOCILayout
	if _, err := os.Stat(filepath.Join(s.Source, "oci-layout")); err != nil {
		return fmt.Errorf("%q is a directory but not an OCI image layout (no oci-layout file): %w", s.Source, err)
	}
	idx, err := layout.ImageIndexFromPath(s.Source)
	if err != nil {
		return fmt.Errorf("reading OCI layout %q: %w", s.Source, err)
	}
	img, indexDigest, err := pickImage(idx, s.options.platform, 0)
	if err != nil {
		return fmt.Errorf("OCI layout %q: %w", s.Source, err)
	}
	s.Image, s.IndexDigest = img, indexDigest
	return nil
}

func (s *Subject) openArchive() error {
	s.Kind = KindDockerArchive
	img, err := tarball.ImageFromPath(s.Source, nil)
	if err != nil {
		return fmt.Errorf("reading %q as a `docker save` archive (it must hold exactly one image): %w", s.Source, err)
	}
	if _, err := img.Manifest(); err != nil {
		return fmt.Errorf("reading %q as a `docker save` archive: %w", s.Source, err)
	}
	s.Image = img
	return nil
}

func (s *Subject) openRemote(ctx context.Context) error {
	s.Kind = KindRegistry
	ref, err := name.ParseReference(s.Source, s.options.nameOptions()...)
	if err != nil {
		return fmt.Errorf("%q is neither an existing file or directory nor a valid image reference: %w", s.Source, err)
	}
	s.ref = ref
	desc, err := remote.Get(ref, s.options.remoteOptions(ctx)...)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", ref, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return fmt.Errorf("reading index %s: %w", ref, err)
		}
		img, _, err := pickImage(idx, s.options.platform, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		s.Image, s.IndexDigest = img, desc.Digest.String()
		return nil
	}
	img, err := desc.Image()
	if err != nil {
		return fmt.Errorf("reading image %s: %w", ref, err)
	}
	s.Image = img
	return nil
}

// pickImage walks (possibly nested) indexes down to the image for the platform. An OCI layout whose index holds a
// single image of unknown platform (as `crane pull --format=oci` writes) yields that image.
func pickImage(idx v1.ImageIndex, want v1.Platform, depth int) (v1.Image, string, error) {
	if depth > 4 {
		return nil, "", errors.New("indexes nested too deeply")
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", fmt.Errorf("reading index manifest: %w", err)
	}
	d, err := idx.Digest()
	if err != nil {
		return nil, "", fmt.Errorf("index digest: %w", err)
	}
	var seen []string
	for _, m := range im.Manifests {
		if m.Platform != nil {
			seen = append(seen, m.Platform.String())
		}
		match := m.Platform == nil && len(im.Manifests) == 1 || m.Platform != nil && m.Platform.Satisfies(want)
		if !match {
			continue
		}
		switch {
		case m.MediaType.IsImage():
			img, err := idx.Image(m.Digest)
			if err != nil {
				return nil, "", fmt.Errorf("reading image %s: %w", m.Digest, err)
			}
			return img, d.String(), nil
		case m.MediaType.IsIndex():
			child, err := idx.ImageIndex(m.Digest)
			if err != nil {
				return nil, "", fmt.Errorf("reading index %s: %w", m.Digest, err)
			}
			img, _, err := pickImage(child, want, depth+1)
			return img, d.String(), err
		}
	}
	return nil, "", fmt.Errorf("no image for platform %s in index %s (platforms: %s)", want, d, strings.Join(seen, ", "))
}
