package airgap

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Users and groups of the debug image: root, and nonroot with distroless's
// uid, so `ps` and `ls -l` in a debug container name the service's user.
const (
	busyboxPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	busyboxGroup = "root:x:0:\n" +
		"nonroot:x:65532:\n"
)

// Busybox builds the offline stand-in for docker.io/library/busybox that
// `kubectl debug` attaches to a shell-less Pod: this machine's static
// busybox (Debian's busybox-static) at /bin/busybox with every applet
// linked to it in /bin, an /etc/passwd and /etc/group with root and
// nonroot (65532), and /tmp. Like the real image it sets no USER: the
// Pod's securityContext decides who it runs as. Every timestamp is fixed,
// so the same busybox binary gives the same digest.
func Busybox(ctx context.Context) (v1.Image, error) {
	bin, applets, err := hostBusybox(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := busyboxTar(bin, applets)
	if err != nil {
		return nil, err
	}
	return layerImage(raw, v1.History{
		CreatedBy: "pkg/internal/airgap.Busybox",
		Comment:   "offline stand-in for busybox: Debian's busybox-static",
	}, func(cfg *v1.ConfigFile) {
		// The host's binary, so the host's architecture.
		cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
		cfg.Config.Env = []string{"PATH=" + BasePath}
		cfg.Config.Cmd = []string{"sh"}
	})
}

// busyboxTar writes the layer in name order (parents first), so its bytes
// depend only on the busybox binary and its applet list.
func busyboxTar(bin string, applets []string) ([]byte, error) {
	prog, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("airgap: read busybox: %w", err)
	}
	type file struct {
		h    *tar.Header
		body []byte
	}
	files := []file{
		{hdr("bin/", tar.TypeDir, 0o755, 0, ""), nil},
		{hdr("bin/busybox", tar.TypeReg, 0o755, int64(len(prog)), ""), prog},
		{hdr("etc/", tar.TypeDir, 0o755, 0, ""), nil},
		{hdr("etc/group", tar.TypeReg, 0o644, int64(len(busyboxGroup)), ""), []byte(busyboxGroup)},
		{hdr("etc/passwd", tar.TypeReg, 0o644, int64(len(busyboxPasswd)), ""), []byte(busyboxPasswd)},
		{hdr("root/", tar.TypeDir, 0o700, 0, ""), nil},
		{hdr("tmp/", tar.TypeDir, 0o1777, 0, ""), nil},
	}
	for _, a := range applets {
		files = append(files, file{hdr("bin/"+a, tar.TypeSymlink, 0o777, 0, "busybox"), nil})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].h.Name < files[j].h.Name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(f.h); err != nil {
			return nil, fmt.Errorf("airgap: tar header %s: %w", f.h.Name, err)
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, fmt.Errorf("airgap: tar body %s: %w", f.h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("airgap: close busybox tar: %w", err)
	}
	return buf.Bytes(), nil
}

// PushBusybox pushes Busybox to repo (for example r.Host()+"/busybox") by
// digest and returns "<repo>@sha256:...", the reference to give
// `kubectl debug --image`.
func PushBusybox(ctx context.Context, repo string) (string, error) {
	img, err := Busybox(ctx)
	if err != nil {
		return "", err
	}
	return pushByDigest(ctx, repo, img)
}
