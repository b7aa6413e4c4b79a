package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kobuilt/hello/pkg/internal/imagecompare"
)

// imageDir writes a one-binary image as an OCI layout and returns the directory.
func imageDir(t *testing.T, binary, user string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "ko-app/hello", Mode: 0o755, Size: int64(len(binary)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(binary))
	tw.Close()
	layer := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{User: user, Entrypoint: []string{"/ko-app/hello"},
		Labels: map[string]string{imagecompare.AnnotationBaseName: "example.com/base@sha256:" + strings.Repeat("a", 64)}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRun(t *testing.T) {
	a, same, other := imageDir(t, "bin", "65532"), imageDir(t, "bin", "65532"), imageDir(t, "other bin", "65532")
	out := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   string
		wantFile []string
	}{
		{"same outcome, markdown and files", []string{"-resolve-base=false", "-svg", filepath.Join(out, "s.svg"), "-json", filepath.Join(out, "r.json"), "ko=" + a, "df=" + same},
			0, []string{"| | ko | df |", "Verdict: same outcome", "xychart-beta"}, "", []string{"s.svg", "r.json"}},
		{"different binary, strict", []string{"-resolve-base=false", "-strict", "-format", "json", "ko=" + a, "df=" + other},
			exitDifferent, []string{`"sameOutcome": false`, "entrypoint binary sha256"}, "", nil},
		{"different binary, not strict", []string{"-resolve-base=false", "ko=" + a, "df=" + other}, 0, []string{"different outcome"}, "", nil},
		{"one image", []string{a}, exitError, nil, "at least two images", nil},
		{"missing file", []string{a, filepath.Join(out, "nope.tar")}, exitError, nil, "no such file", nil},
		{"bad format", []string{"-format", "xml", a, same}, exitError, nil, "-format must be", nil},
		{"bad regzip level", []string{"-regzip", "12", a, same}, exitError, nil, "-regzip must be", nil},
		{"regzip row", []string{"-resolve-base=false", "-regzip", "1", a, same}, 0, []string{"layers re-gzipped at level 1"}, "", nil},
		{"bad platform", []string{"-platform", "linux/amd64/v1/x/y", a, same}, exitError, nil, "-platform", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q: %s", tc.stderr, stderr.String())
			}
			for _, f := range tc.wantFile {
				b, err := os.ReadFile(filepath.Join(out, f))
				if err != nil || len(b) == 0 {
					t.Errorf("%s not written: %v", f, err)
				}
				if strings.HasSuffix(f, ".json") && !json.Valid(b) {
					t.Errorf("%s is not JSON", f)
				}
			}
		})
	}
}
