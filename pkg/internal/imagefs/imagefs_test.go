package imagefs

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func layer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"app/", "app/hello", "app/old", "app/.wh.old"} {
		body, ok := files[name]
		if !ok {
			continue
		}
		hdr := &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeReg, Size: int64(len(body))}
		if name[len(name)-1] == '/' {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestWalkAndReadFileSeeTheFlattenedFilesystem(t *testing.T) {
	img, err := mutate.AppendLayers(empty.Image,
		layer(t, map[string]string{"app/": "", "app/hello": "v1", "app/old": "gone"}),
		layer(t, map[string]string{"app/hello": "v2", "app/.wh.old": ""}),
	)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := Walk(img, func(name string, _ *tar.Header, _ io.Reader) error {
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == "/app/old" {
			t.Errorf("whited-out /app/old is listed: %q", names)
		}
	}
	got, err := ReadFile(img, "/app/hello")
	if err != nil || string(got) != "v2" {
		t.Errorf("ReadFile(/app/hello) = %q, %v; want the upper layer's v2", got, err)
	}
	if _, err := ReadFile(img, "/app/old"); !errors.Is(err, ErrNotExist) {
		t.Errorf("ReadFile(/app/old) = %v, want ErrNotExist", err)
	}
	stop := errors.New("stop")
	if err := Walk(img, func(string, *tar.Header, io.Reader) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Walk returned %v, want fn's error", err)
	}
}
