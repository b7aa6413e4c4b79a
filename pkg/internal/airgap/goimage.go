package airgap

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// GoImageGOROOT is where the stand-in (like the official golang image) keeps the toolchain.
const GoImageGOROOT = "/usr/local/go"

// goImagePath is the official golang image's PATH.
const goImagePath = "/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// PushGoImage builds the offline stand-in for the official golang:1.27 image and pushes it to repo (e.g.
// r.Host()+"/golang"), returning "repo@sha256:...". It holds what a Dockerfile's build stage needs and nothing
// pulled from the internet:
//   - this machine's Go toolchain ($(go env GOROOT)) at /usr/local/go, with GOTOOLCHAIN=local so `go` never tries
//     to download another one;
//   - a static shell for RUN lines: Debian's busybox-static at /bin/busybox, /bin/sh and its other applets linked
//     to it;
//   - this machine's CA bundle at /etc/ssl/certs/ca-certificates.crt: TLS to the Go module proxy from here is
//     only trusted with it (Debian's stock bundle is refused);
//   - root's /etc/passwd, /tmp (1777), GOPATH=/go, WORKDIR /go, as in the official image.
//
// Every timestamp is fixed, so the same toolchain, busybox and bundle give the same digest.
func PushGoImage(ctx context.Context, repo string) (string, error) {
	goroot, goversion, goarch, err := hostToolchain(ctx)
	if err != nil {
		return "", err
	}
	busybox, applets, err := hostBusybox(ctx)
	if err != nil {
		return "", err
	}
	certs, err := os.ReadFile(CertFile)
	if err != nil {
		return "", fmt.Errorf("airgap: the Go stand-in needs this machine's CA bundle: %w", err)
	}
	tmp, err := os.MkdirTemp("", "goimage")
	if err != nil {
		return "", fmt.Errorf("airgap: temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	system, err := gzipLayer(filepath.Join(tmp, "system.tar.gz"), func(tw *tar.Writer) error {
		return writeSystem(tw, busybox, applets, certs)
	})
	if err != nil {
		return "", fmt.Errorf("airgap: Go stand-in system layer: %w", err)
	}
	toolchain, err := gzipLayer(filepath.Join(tmp, "go.tar.gz"), func(tw *tar.Writer) error {
		return writeTree(ctx, tw, goroot, strings.TrimPrefix(GoImageGOROOT, "/"))
	})
	if err != nil {
		return "", fmt.Errorf("airgap: Go stand-in toolchain layer: %w", err)
	}

	img, err := mutate.AppendLayers(empty.Image, system, toolchain)
	if err != nil {
		return "", fmt.Errorf("airgap: Go stand-in layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("airgap: Go stand-in config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goarch
	cf.Created = v1.Time{Time: baseEpoch}
	cf.Config.Env = []string{
		"PATH=" + goImagePath,
		"GOLANG_VERSION=" + strings.TrimPrefix(goversion, "go"),
		"GOTOOLCHAIN=local",
		"GOPATH=/go",
	}
	cf.Config.WorkingDir = "/go"
	cf.Config.Cmd = []string{"sh"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.description": "offline stand-in for golang:1.27 (" + goversion + " from this machine), built by the test harness in pkg/internal/airgap",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return "", fmt.Errorf("airgap: Go stand-in config: %w", err)
	}
	return pushByDigest(ctx, repo, img)
}

func hostToolchain(ctx context.Context) (goroot, version, arch string, err error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOROOT", "GOVERSION", "GOHOSTARCH").Output()
	if err != nil {
		return "", "", "", fmt.Errorf("airgap: go env: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return "", "", "", fmt.Errorf("airgap: go env printed %q", out)
	}
	return f[0], f[1], f[2], nil
}

// hostBusybox finds a statically linked busybox (Debian: busybox-static) and the applets it provides.
func hostBusybox(ctx context.Context) (string, []string, error) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", nil, fmt.Errorf("airgap: the Go and busybox stand-ins need a static busybox: install busybox-static (%w)", err)
	}
	ef, err := elf.Open(p)
	if err != nil {
		return "", nil, fmt.Errorf("airgap: reading %s: %w", p, err)
	}
	defer ef.Close()
	for _, prog := range ef.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", nil, fmt.Errorf("airgap: %s is dynamically linked; install busybox-static", p)
		}
	}
	out, err := exec.CommandContext(ctx, p, "--list").Output()
	if err != nil {
		return "", nil, fmt.Errorf("airgap: busybox --list: %w", err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	sort.Strings(applets)
	return p, applets, nil
}

// gzipLayer writes a tar through fill, gzips it to path once and returns the layer (digest read from the file).
func gzipLayer(path string, fill func(*tar.Writer) error) (v1.Layer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		f.Close()
		return nil, err
	}
	tw := tar.NewWriter(zw)
	err = fill(tw)
	err = errors.Join(err, tw.Close(), zw.Close(), f.Close())
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromFile(path)
}

func hdr(name string, typ byte, mode int64, size int64, link string) *tar.Header {
	return &tar.Header{
		Name: name, Typeflag: typ, Mode: mode, Size: size, Linkname: link,
		ModTime: baseEpoch, Uname: "root", Gname: "root", Format: tar.FormatPAX,
	}
}

func writeSystem(tw *tar.Writer, busybox string, applets []string, certs []byte) error {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	files := []struct {
		h    *tar.Header
		body []byte
	}{
		{hdr("bin/", tar.TypeDir, 0o755, 0, ""), nil},
		{hdr("bin/busybox", tar.TypeReg, 0o755, int64(len(bb)), ""), bb},
		{hdr("etc/", tar.TypeDir, 0o755, 0, ""), nil},
		{hdr("etc/group", tar.TypeReg, 0o644, int64(len("root:x:0:\n")), ""), []byte("root:x:0:\n")},
		{hdr("etc/passwd", tar.TypeReg, 0o644, int64(len("root:x:0:0:root:/root:/bin/sh\n")), ""), []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{hdr("etc/ssl/", tar.TypeDir, 0o755, 0, ""), nil},
		{hdr("etc/ssl/certs/", tar.TypeDir, 0o755, 0, ""), nil},
		{hdr("etc/ssl/certs/ca-certificates.crt", tar.TypeReg, 0o644, int64(len(certs)), ""), certs},
		{hdr("go/", tar.TypeDir, 0o777, 0, ""), nil},
		{hdr("go/bin/", tar.TypeDir, 0o777, 0, ""), nil},
		{hdr("go/src/", tar.TypeDir, 0o777, 0, ""), nil},
		{hdr("root/", tar.TypeDir, 0o700, 0, ""), nil},
		{hdr("tmp/", tar.TypeDir, 0o1777, 0, ""), nil},
		{hdr("usr/", tar.TypeDir, 0o755, 0, ""), nil},
		{hdr("usr/local/", tar.TypeDir, 0o755, 0, ""), nil},
	}
	for _, f := range files {
		if err := tw.WriteHeader(f.h); err != nil {
			return err
		}
		if _, err := tw.Write(f.body); err != nil {
			return err
		}
	}
	for _, a := range applets {
		if err := tw.WriteHeader(hdr("bin/"+a, tar.TypeSymlink, 0o777, 0, "busybox")); err != nil {
			return err
		}
	}
	return nil
}

// writeTree copies dir into the tar under prefix in lexical order, owned by root, with fixed times.
func writeTree(ctx context.Context, tw *tar.Writer, dir, prefix string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		nameInTar := filepath.ToSlash(filepath.Join(prefix, rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := int64(info.Mode().Perm())
		switch {
		case d.IsDir():
			return tw.WriteHeader(hdr(nameInTar+"/", tar.TypeDir, mode, 0, ""))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return tw.WriteHeader(hdr(nameInTar, tar.TypeSymlink, 0o777, 0, target))
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := tw.WriteHeader(hdr(nameInTar, tar.TypeReg, mode, info.Size(), "")); err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			return err
		}
		return nil // sockets, devices: not part of a toolchain
	})
}

// ModuleProxy serves this machine's Go module download cache ($(go env GOMODCACHE)/cache/download, which has the
// GOPROXY protocol's layout) on 127.0.0.1, so a Docker build's `go mod download` stays on loopback for every
// module this machine already has. Pair it with a fallback: GOPROXY=<URL>,https://proxy.golang.org.
type ModuleProxy struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// StartModuleProxy starts the proxy on a free loopback port.
func StartModuleProxy(ctx context.Context) (*ModuleProxy, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil {
		return nil, fmt.Errorf("airgap: go env GOMODCACHE: %w", err)
	}
	dir := filepath.Join(string(bytes.TrimSpace(out)), "cache", "download")
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("airgap: module download cache: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("airgap: listen for module proxy: %w", err)
	}
	p := &ModuleProxy{
		srv:  &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 30 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { p.done <- p.srv.Serve(ln) }()
	return p, nil
}

// URL is the GOPROXY entry, "http://127.0.0.1:PORT".
func (p *ModuleProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops the proxy.
func (p *ModuleProxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if serr := <-p.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("airgap: stop module proxy: %w", err)
	}
	return nil
}
