// Package imagefs reads the filesystem an image's layers add up to, as a
// container would see it.
package imagefs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Walk calls fn for every entry of img's flattened filesystem (whiteouts
// applied), with the entry's absolute path and a reader of its contents.
// Returning an error from fn stops the walk with that error.
func Walk(img v1.Image, fn func(name string, hdr *tar.Header, r io.Reader) error) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("imagefs: read image filesystem: %w", err)
		}
		if err := fn(path.Join("/", hdr.Name), hdr, tr); err != nil {
			return err
		}
	}
}

// ErrNotExist is returned by ReadFile for a path the image does not hold.
var ErrNotExist = errors.New("imagefs: no such file in the image")

// ReadFile returns the contents of the regular file at the absolute path p.
func ReadFile(img v1.Image, p string) ([]byte, error) {
	var body []byte
	found := errors.New("found")
	err := Walk(img, func(name string, hdr *tar.Header, r io.Reader) error {
		if name != p || hdr.Typeflag != tar.TypeReg {
			return nil
		}
		var err error
		if body, err = io.ReadAll(r); err != nil {
			return fmt.Errorf("imagefs: read %s: %w", p, err)
		}
		return found
	})
	switch {
	case errors.Is(err, found):
		return body, nil
	case err != nil:
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s", ErrNotExist, p)
}
