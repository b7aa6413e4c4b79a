package node

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// pushPause pushes an image holding only the pause program to ref, for
// containerd's pinned sandbox image, and returns ref.
func pushPause(ctx context.Context, bin, ref string) (string, error) {
	prog, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("read pause program: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(prog)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := tw.Write(prog); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	})
	if err != nil {
		return "", fmt.Errorf("pause layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", fmt.Errorf("pause image: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("pause image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	// Kubernetes' pause image runs as 65535 too.
	cfg.Config = v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return "", fmt.Errorf("pause image config: %w", err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("pause image reference: %w", err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("push pause image to %s: %w", ref, err)
	}
	return ref, nil
}
