package controlplane

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

// ErrNotBuilt means the binaries for the pinned versions are not in the cache.
var ErrNotBuilt = errors.New("control plane binaries are not built")

// BuildHint tells a developer how to get the binaries; tests print it when
// they skip.
const BuildHint = "go run ./pkg/internal/controlplane/testdata/prebuild (builds etcd and the Kubernetes binaries " +
	"from the Go module proxy into the user cache dir; about 30 minutes on an idle 2-core machine, once)"

// The scratch modules under testdata pin what gets built. Their go.mod files
// are the single source of truth for the versions: nothing here repeats them.
const (
	etcdModule       = "etcd"
	kubernetesModule = "kubernetes"
)

// What each scratch module builds, and the binary name it produces.
var (
	etcdPackages = []string{"go.etcd.io/etcd/server/v3"} // builds "v3"; renamed to etcd
	// One go build for every Kubernetes binary, the node's included: they
	// share most of their packages, and pkg/internal/node must run the
	// kubelet and kube-proxy of the very release the API server is.
	kubePackages = []string{
		"k8s.io/kubernetes/cmd/kube-apiserver",
		"k8s.io/kubernetes/cmd/kube-controller-manager",
		"k8s.io/kubernetes/cmd/kube-scheduler",
		"k8s.io/kubernetes/cmd/kubectl",
		"k8s.io/kubernetes/cmd/kubelet",
		"k8s.io/kubernetes/cmd/kube-proxy",
	}
)

// Binaries are the built executables for one pair of pinned versions.
type Binaries struct {
	Dir               string // holds etcd and the Kubernetes binaries (binaryNames)
	KubernetesVersion string // e.g. v1.37.2
	EtcdVersion       string // e.g. v3.6.16
}

func (b *Binaries) path(name string) string { return filepath.Join(b.Dir, name) }

// Etcd is the etcd server binary.
func (b *Binaries) Etcd() string { return b.path("etcd") }

// KubeAPIServer is the kube-apiserver binary.
func (b *Binaries) KubeAPIServer() string { return b.path("kube-apiserver") }

// KubeControllerManager is the kube-controller-manager binary.
func (b *Binaries) KubeControllerManager() string { return b.path("kube-controller-manager") }

// KubeScheduler is the kube-scheduler binary.
func (b *Binaries) KubeScheduler() string { return b.path("kube-scheduler") }

// Kubectl is the kubectl binary.
func (b *Binaries) Kubectl() string { return b.path("kubectl") }

// Kubelet is the kubelet binary (run by pkg/internal/node).
func (b *Binaries) Kubelet() string { return b.path("kubelet") }

// KubeProxy is the kube-proxy binary (run by pkg/internal/node).
func (b *Binaries) KubeProxy() string { return b.path("kube-proxy") }

var binaryNames = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy"}

// recipe is what the scratch modules pin, read from them with the go command.
type recipe struct {
	dir               string // the testdata directory holding both modules
	kubernetesVersion string
	kubernetesTime    time.Time // release time, used as the reproducible build date
	etcdVersion       string
	key               string // cache directory name
}

// readRecipe resolves the versions pinned in dir's scratch modules and the
// cache key that identifies their build.
func readRecipe(ctx context.Context, dir string) (*recipe, error) {
	r := &recipe{dir: dir}
	kv, kt, err := buildcache.ModuleVersion(ctx, filepath.Join(dir, kubernetesModule), "k8s.io/kubernetes")
	if err != nil {
		return nil, err
	}
	ev, _, err := buildcache.ModuleVersion(ctx, filepath.Join(dir, etcdModule), "go.etcd.io/etcd/server/v3")
	if err != nil {
		return nil, err
	}
	r.kubernetesVersion, r.kubernetesTime, r.etcdVersion = kv, kt, ev

	// Any change to either module (a bumped dependency, a new replace) or
	// to what is built from them must give a new cache entry, not reuse
	// binaries built from the old recipe.
	h := sha256.New()
	fmt.Fprintf(h, "binaries %s\n", strings.Join(binaryNames, " "))
	for _, m := range []string{kubernetesModule, etcdModule} {
		for _, f := range []string{"go.mod", "go.sum"} {
			b, err := os.ReadFile(filepath.Join(dir, m, f))
			if err != nil {
				return nil, fmt.Errorf("read scratch module: %w", err)
			}
			fmt.Fprintf(h, "%s/%s %d\n", m, f, len(b))
			h.Write(b)
		}
	}
	r.key = fmt.Sprintf("kubernetes-%s_etcd-%s_%s-%s_%s", kv, ev, runtime.GOOS, runtime.GOARCH, hex.EncodeToString(h.Sum(nil))[:12])
	return r, nil
}

// cacheRoot is where built binaries live, one directory per recipe key.
func cacheRoot() (string, error) { return buildcache.Root("HELLO_CONTROLPLANE_CACHE", "controlplane") }

// Find returns the cached binaries built from the scratch modules in
// recipeDir (pkg/internal/controlplane/testdata), or an error wrapping ErrNotBuilt.
func Find(ctx context.Context, recipeDir string) (*Binaries, error) {
	r, err := readRecipe(ctx, recipeDir)
	if err != nil {
		return nil, err
	}
	return r.find()
}

func (r *recipe) binaries(dir string) *Binaries {
	return &Binaries{Dir: dir, KubernetesVersion: r.kubernetesVersion, EtcdVersion: r.etcdVersion}
}

func (r *recipe) find() (*Binaries, error) {
	root, err := cacheRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, r.key)
	for _, n := range binaryNames {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return nil, fmt.Errorf("%w: %s missing in %s", ErrNotBuilt, n, dir)
		}
	}
	return r.binaries(dir), nil
}

// BuildOption configures Build.
type BuildOption func(*buildOptions)

type buildOptions struct{ log io.Writer }

// WithBuildLog sends the go command's output and progress lines to w.
func WithBuildLog(w io.Writer) BuildOption { return func(o *buildOptions) { o.log = w } }

// Build returns the cached binaries, building them first if the cache has
// none for the versions pinned in recipeDir. Building needs the Go module
// proxy and takes minutes; a cache hit takes about as long as `go list`.
func Build(ctx context.Context, recipeDir string, opts ...BuildOption) (*Binaries, error) {
	o := buildOptions{log: io.Discard}
	for _, opt := range opts {
		opt(&o)
	}
	r, err := readRecipe(ctx, recipeDir)
	if err != nil {
		return nil, err
	}
	if b, err := r.find(); err == nil {
		fmt.Fprintf(o.log, "control plane binaries cached in %s\n", b.Dir)
		return b, nil
	}
	root, err := cacheRoot()
	if err != nil {
		return nil, err
	}
	err = buildcache.Fill(root, r.key, func(tmp string) error {
		start := time.Now()
		fmt.Fprintf(o.log, "building etcd %s and Kubernetes %s into %s\n", r.etcdVersion, r.kubernetesVersion, root)
		etcd := append([]string{"build", "-mod=readonly", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tmp, "etcd")}, etcdPackages...)
		if err := buildcache.RunGo(ctx, o.log, filepath.Join(recipeDir, etcdModule), etcd...); err != nil {
			return fmt.Errorf("build etcd %s: %w", r.etcdVersion, err)
		}
		fmt.Fprintf(o.log, "etcd built after %s\n", time.Since(start).Round(time.Second))
		kube := append([]string{"build", "-mod=readonly", "-trimpath", "-ldflags=" + r.kubeLDFlags(), "-o", tmp + string(filepath.Separator)}, kubePackages...)
		if err := buildcache.RunGo(ctx, o.log, filepath.Join(recipeDir, kubernetesModule), kube...); err != nil {
			return fmt.Errorf("build Kubernetes %s: %w", r.kubernetesVersion, err)
		}
		fmt.Fprintf(o.log, "Kubernetes built after %s\n", time.Since(start).Round(time.Second))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r.find()
}

// kubeLDFlags stamps the version the way Kubernetes' own build does
// (hack/lib/version.sh): without it the binaries report v0.0.0-master and
// kubectl and the API server's compatibility checks misbehave.
func (r *recipe) kubeLDFlags() string {
	v := strings.TrimPrefix(r.kubernetesVersion, "v")
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	date := r.kubernetesTime.Format(time.RFC3339)
	if r.kubernetesTime.IsZero() {
		date = "1970-01-01T00:00:00Z"
	}
	flags := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		for _, kv := range [][2]string{
			{"gitVersion", r.kubernetesVersion},
			{"gitMajor", major},
			{"gitMinor", minor},
			{"gitTreeState", "clean"},
			{"buildDate", date},
		} {
			flags = append(flags, fmt.Sprintf("-X %s.%s=%s", pkg, kv[0], kv[1]))
		}
	}
	return strings.Join(flags, " ")
}
