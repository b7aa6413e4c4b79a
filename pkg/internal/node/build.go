package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kobuilt/hello/pkg/internal/buildcache"
)

// ErrNotBuilt means the node's binaries for the pinned versions are not in
// the cache.
var ErrNotBuilt = errors.New("node binaries are not built")

// BuildHint tells a developer how to get the binaries; tests print it when
// they skip.
const BuildHint = "go run ./pkg/internal/node/testdata/prebuild (builds containerd, its runc shim, the CNI plugins " +
	"and the pause program from the Go module proxy into the user cache dir; about 2 minutes on an idle 2-core machine, once); " +
	"the kubelet and kube-proxy come with the control plane's prebuild"

// The scratch modules under testdata pin what gets built; their go.mod
// files are the single source of truth for the versions.
type build struct {
	module   string // directory under testdata
	out      string // in the cache entry: a directory if it ends in "/", else a file
	tags     string
	ldflags  func(r *recipe) string
	packages []string
}

var builds = []build{
	{
		module:  "containerd",
		out:     "./",
		tags:    "urfave_cli_no_docs no_btrfs no_devmapper no_zfs osusergo netgo static_build",
		ldflags: containerdLDFlags,
		packages: []string{
			"github.com/containerd/containerd/v2/cmd/containerd",
			"github.com/containerd/containerd/v2/cmd/ctr",
		},
	},
	{
		// The shim is a separate process per Pod that only speaks ttrpc.
		module:   "containerd",
		out:      "./",
		tags:     "urfave_cli_no_docs no_btrfs no_devmapper no_zfs osusergo netgo static_build no_grpc",
		ldflags:  containerdLDFlags,
		packages: []string{"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"},
	},
	{
		module: "cni",
		out:    "cni/",
		packages: []string{
			"github.com/containernetworking/plugins/plugins/main/bridge",
			"github.com/containernetworking/plugins/plugins/main/loopback",
			"github.com/containernetworking/plugins/plugins/ipam/host-local",
			"github.com/containernetworking/plugins/plugins/meta/portmap",
		},
	},
	{module: "pause", out: "pause", packages: []string{"."}},
}

var (
	binaryNames = []string{"containerd", "ctr", "containerd-shim-runc-v2", "pause"}
	cniNames    = []string{"bridge", "loopback", "host-local", "portmap"}
)

// Binaries are the built node executables for one recipe.
type Binaries struct {
	Dir               string // containerd, ctr, containerd-shim-runc-v2, pause
	CNIDir            string // bridge, loopback, host-local, portmap
	ContainerdVersion string // e.g. v2.4.2
	CNIVersion        string // e.g. v1.10.0
}

func (b *Binaries) path(name string) string { return filepath.Join(b.Dir, name) }

// Containerd is the containerd daemon.
func (b *Binaries) Containerd() string { return b.path("containerd") }

// Ctr is containerd's own client.
func (b *Binaries) Ctr() string { return b.path("ctr") }

// Pause is the sandbox container's program.
func (b *Binaries) Pause() string { return b.path("pause") }

type recipe struct {
	dir               string
	containerdVersion string
	cniVersion        string
	key               string
}

func readRecipe(ctx context.Context, dir string) (*recipe, error) {
	r := &recipe{dir: dir}
	var err error
	if r.containerdVersion, _, err = buildcache.ModuleVersion(ctx, filepath.Join(dir, "containerd"), "github.com/containerd/containerd/v2"); err != nil {
		return nil, err
	}
	if r.cniVersion, _, err = buildcache.ModuleVersion(ctx, filepath.Join(dir, "cni"), "github.com/containernetworking/plugins"); err != nil {
		return nil, err
	}
	// Any change to a module, to the pause source or to what is built
	// gives a new cache entry.
	h := sha256.New()
	for _, b := range builds {
		fmt.Fprintf(h, "%s %s %s\n", b.module, b.tags, strings.Join(b.packages, " "))
	}
	for _, f := range []string{"containerd/go.mod", "containerd/go.sum", "cni/go.mod", "cni/go.sum", "pause/go.mod", "pause/main.go"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("read node recipe: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	r.key = fmt.Sprintf("containerd-%s_cni-%s_%s-%s_%s", r.containerdVersion, r.cniVersion, runtime.GOOS, runtime.GOARCH, hex.EncodeToString(h.Sum(nil))[:12])
	return r, nil
}

func containerdLDFlags(r *recipe) string {
	return "-s -w -X github.com/containerd/containerd/v2/version.Version=" + r.containerdVersion +
		" -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2"
}

// cacheRoot is where built binaries live, one directory per recipe key,
// beside the control plane's.
func cacheRoot() (string, error) { return buildcache.Root("HELLO_NODE_CACHE", "node") }

// Find returns the cached binaries built from the recipe in recipeDir
// (pkg/internal/node/testdata), or an error wrapping ErrNotBuilt.
func Find(ctx context.Context, recipeDir string) (*Binaries, error) {
	r, err := readRecipe(ctx, recipeDir)
	if err != nil {
		return nil, err
	}
	return r.find()
}

func (r *recipe) find() (*Binaries, error) {
	root, err := cacheRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, r.key)
	b := &Binaries{Dir: dir, CNIDir: filepath.Join(dir, "cni"), ContainerdVersion: r.containerdVersion, CNIVersion: r.cniVersion}
	for _, n := range binaryNames {
		if _, err := os.Stat(b.path(n)); err != nil {
			return nil, fmt.Errorf("%w: %s missing in %s", ErrNotBuilt, n, dir)
		}
	}
	for _, n := range cniNames {
		if _, err := os.Stat(filepath.Join(b.CNIDir, n)); err != nil {
			return nil, fmt.Errorf("%w: CNI plugin %s missing in %s", ErrNotBuilt, n, b.CNIDir)
		}
	}
	return b, nil
}

// Build returns the cached binaries, building them first if the cache has
// none for the recipe in recipeDir. log gets the go command's output.
func Build(ctx context.Context, recipeDir string, log io.Writer) (*Binaries, error) {
	r, err := readRecipe(ctx, recipeDir)
	if err != nil {
		return nil, err
	}
	if b, err := r.find(); err == nil {
		fmt.Fprintf(log, "node binaries cached in %s\n", b.Dir)
		return b, nil
	}
	root, err := cacheRoot()
	if err != nil {
		return nil, err
	}
	err = buildcache.Fill(root, r.key, func(tmp string) error {
		start := time.Now()
		fmt.Fprintf(log, "building containerd %s and CNI plugins %s into %s\n", r.containerdVersion, r.cniVersion, root)
		for _, b := range builds {
			out := filepath.Join(tmp, b.out)
			if strings.HasSuffix(b.out, "/") {
				out += string(filepath.Separator)
			}
			args := []string{"build", "-mod=readonly", "-trimpath", "-o", out}
			if b.tags != "" {
				args = append(args, "-tags="+b.tags)
			}
			ldflags := "-s -w"
			if b.ldflags != nil {
				ldflags = b.ldflags(r)
			}
			args = append(args, "-ldflags="+ldflags)
			args = append(args, b.packages...)
			if err := buildcache.RunGo(ctx, log, filepath.Join(recipeDir, b.module), args...); err != nil {
				return fmt.Errorf("build %s: %w", strings.Join(b.packages, " "), err)
			}
			fmt.Fprintf(log, "%s built after %s\n", strings.Join(b.packages, " "), time.Since(start).Round(time.Second))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r.find()
}
