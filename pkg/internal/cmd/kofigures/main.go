// Command kofigures measures what the ko build costs and produces, offline:
// the image's compressed size against the binary's and the base's, and
// `go tool ko build` time against a plain `go build` of the same package,
// cold (empty build caches) and warm, in the same run.
//
//	go run ./pkg/internal/cmd/kofigures            # from the module root; cold + warm
//	go run ./pkg/internal/cmd/kofigures -cold=false # warm only, using your GOCACHE
//
// It starts the same loopback registry and distroless stand-in as the
// end-to-end tests (pkg/internal/airgap), so it needs no network and no Docker.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kobuilt/hello/pkg/internal/airgap"
	"github.com/kobuilt/hello/pkg/internal/imagefs"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kofigures:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("kofigures", flag.ContinueOnError)
	dir := fs.String("dir", ".", "module root holding .ko.yaml")
	pkg := fs.String("package", "./cmd/hello", "package to build")
	cold := fs.Bool("cold", true, "also time builds with empty GOCACHEs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if _, err := os.Stat(filepath.Join(*dir, ".ko.yaml")); err != nil {
		return fmt.Errorf("-dir %s: %w (run from the module root)", *dir, err)
	}

	reg, err := airgap.StartRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	base, err := airgap.PushBase(ctx, reg.Host()+"/distroless/static")
	if err != nil {
		return err
	}
	// Resolve ko once with the normal cache: `go tool ko` under an empty
	// GOCACHE would spend minutes recompiling ko itself, which is not part
	// of building the app.
	koBin, err := airgap.ToolPath(ctx, *dir)
	if err != nil {
		return err
	}
	// What `go tool ko` adds on top of ko itself: the go command checking
	// that the cached ko binary is up to date.
	toolStart := time.Now()
	if _, err := airgap.ToolPath(ctx, *dir); err != nil {
		return err
	}
	toolOverhead := time.Since(toolStart)
	tmp, err := os.MkdirTemp("", "kofigures")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	ko := airgap.Ko{Dir: *dir, DockerRepo: reg.Host() + "/kobuilt/hello", BaseImage: base, Bin: koBin}
	var builds atomic.Int64
	goBuild := func(env []string) (time.Duration, error) {
		// A new output path every time: like ko (without KOCACHE), go
		// build then always links. Into an existing up-to-date file it
		// would skip the link and time only its staleness check.
		out := filepath.Join(tmp, fmt.Sprintf("hello-%d", builds.Add(1)))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, *pkg)
		cmd.Dir, cmd.Env = *dir, append(os.Environ(), env...)
		return timed(cmd)
	}
	// goBuildAll times plain go builds for several platforms run
	// concurrently, as ko builds its platforms.
	goBuildAll := func(env []string, platforms ...string) (time.Duration, error) {
		start := time.Now()
		errs := make(chan error, len(platforms))
		for _, p := range platforms {
			goos, goarch, _ := strings.Cut(p, "/")
			go func() {
				_, err := goBuild(append(env, "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch))
				errs <- err
			}()
		}
		var err error
		for range platforms {
			err = errors.Join(err, <-errs)
		}
		return time.Since(start), err
	}
	var ref string
	koBuild := func(env []string, extra ...string) (time.Duration, error) {
		k := ko
		k.Env = env
		cmd := k.Command(ctx, append(append([]string{"build", "--bare"}, extra...), *pkg)...)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		d, err := timed(cmd)
		ref = strings.TrimSpace(stdout.String())
		return d, err
	}

	type timing struct {
		what           string
		goTime, koTime time.Duration
	}
	// Each side gets its own cache: ko builds with -trimpath and different
	// flags, so sharing one would not make either warmer.
	cacheEnv := func(kind string) []string { return []string{"GOCACHE=" + filepath.Join(tmp, "cache-"+kind)} }
	phases := []string{"cold (empty GOCACHE)", "warm (same GOCACHE, no change)"}
	if !*cold {
		cacheEnv = func(string) []string { return nil }
		phases = []string{"prime (your GOCACHE, not reported)", "warm (your GOCACHE)"}
	}
	var timings []timing
	for _, what := range phases {
		fmt.Fprintf(os.Stderr, "kofigures: timing %s builds...\n", what)
		g, err := goBuild(cacheEnv("go"))
		if err != nil {
			return err
		}
		k, err := koBuild(cacheEnv("ko"))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(what, "prime") {
			timings = append(timings, timing{what, g, k})
		}
	}
	// The same warm build narrowed to go build's one platform separates
	// ko's own overhead from the second platform's compile and link.
	imageRef := ref
	g, err := goBuild(cacheEnv("go"))
	if err != nil {
		return err
	}
	k, err := koBuild(cacheEnv("ko"), "--platform=linux/amd64")
	if err != nil {
		return err
	}
	timings = append(timings, timing{"warm, ko --platform=linux/amd64 only", g, k})
	// And the like-for-like row: the same two binaries ko builds by
	// default, from plain go build, both at once as ko runs them. The
	// first round only warms the cache for the second platform.
	for range 2 {
		if g, err = goBuildAll(cacheEnv("go"), "linux/amd64", "linux/arm64"); err != nil {
			return err
		}
	}
	k, err = koBuild(cacheEnv("ko"))
	if err != nil {
		return err
	}
	timings = append(timings, timing{"warm, go build for both platforms at once", g, k})
	// ko's own binary cache, the inner-loop setting the README suggests:
	// with KOCACHE, ko lets go build skip relinking an unchanged binary
	// (the digest does not change). The first run fills it.
	kocache := append(cacheEnv("ko"), "KOCACHE="+filepath.Join(tmp, "kocache"))
	for range 2 {
		if k, err = koBuild(kocache); err != nil {
			return err
		}
	}
	if g, err = goBuild(cacheEnv("go")); err != nil {
		return err
	}
	timings = append(timings, timing{"warm, KOCACHE set", g, k})
	ref = imageRef

	sizes, err := measureSizes(ctx, ref)
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	load, _ := os.ReadFile("/proc/loadavg") // other work on the machine skews times
	fmt.Fprintf(tw, "load average\t%s (at the end; %d CPUs)\n", strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "), runtime.NumCPU())
	if head, err := exec.Command("git", "-C", *dir, "rev-parse", "HEAD").Output(); err == nil {
		fmt.Fprintf(tw, "commit\t%s, %s\n", strings.TrimSpace(string(head)), runtime.Version())
	}
	fmt.Fprintf(tw, "image\t%s\n", ref)
	fmt.Fprintf(tw, "base\t%s (offline stand-in for distroless static)\n\n", base)
	fmt.Fprintln(tw, "platform\timage (compressed)\tbinary (gzip)\tbase (compressed)\timage / (binary+base)")
	for _, s := range sizes {
		ratio := float64(s.image) / float64(s.binary+s.base)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\n", s.platform, kb(s.image), kb(s.binary), kb(s.base), ratio)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "build of %s\tgo build (linux/amd64 unless noted)\tko build + push (linux/amd64+arm64 unless noted)\tko / go\n", *pkg)
	for _, tm := range timings {
		ratio := tm.koTime.Seconds() / tm.goTime.Seconds()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\n", tm.what, tm.goTime.Round(10*time.Millisecond), tm.koTime.Round(10*time.Millisecond), ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n`go tool ko` adds %s per run before ko starts (go tool -n ko: the go command's staleness check of the ko binary); the ko times above exclude it.\n", toolOverhead.Round(10*time.Millisecond))
	return nil
}

func timed(cmd *exec.Cmd) (time.Duration, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return d, nil
}

type sizeRow struct {
	platform            string
	image, binary, base int64
}

// measureSizes reports, per platform, the sum of the image's compressed
// layers, the app binary gzipped the way ko compresses its layer
// (gzip.BestSpeed), and the sum of the base's compressed layers.
func measureSizes(ctx context.Context, ref string) ([]sizeRow, error) {
	d, err := name.NewDigest(ref)
	if err != nil {
		return nil, fmt.Errorf("ko printed %q: %w", ref, err)
	}
	idx, err := remote.Index(d, remote.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	baseIdx, err := airgap.Base(ctx)
	if err != nil {
		return nil, err
	}
	var rows []sizeRow
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, err
		}
		row := sizeRow{platform: desc.Platform.String()}
		if row.image, err = layerBytes(img); err != nil {
			return nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		baseImg, err := baseImageByDigest(baseIdx, m.Annotations["org.opencontainers.image.base.digest"])
		if err != nil {
			return nil, err
		}
		if row.base, err = layerBytes(baseImg); err != nil {
			return nil, err
		}
		if row.binary, err = gzippedApp(img); err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func baseImageByDigest(idx v1.ImageIndex, digest string) (v1.Image, error) {
	im, err := idx.IndexManifest() // also makes idx.Image find its children
	if err != nil {
		return nil, err
	}
	for _, desc := range im.Manifests {
		if desc.Digest.String() == digest {
			return idx.Image(desc.Digest)
		}
	}
	return nil, fmt.Errorf("base digest %q is not in the stand-in index", digest)
}

func layerBytes(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return 0, err
		}
		n += s
	}
	return n, nil
}

func gzippedApp(img v1.Image) (int64, error) {
	bin, err := imagefs.ReadFile(img, "/ko-app/hello")
	if err != nil {
		return 0, err
	}
	var cw countWriter
	zw, err := gzip.NewWriterLevel(&cw, gzip.BestSpeed)
	if err != nil {
		return 0, err
	}
	if _, err := zw.Write(bin); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return int64(cw), nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func kb(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }
