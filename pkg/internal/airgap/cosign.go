package airgap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kobuilt/hello/pkg/internal/proc"
)

// CosignModule is the cosign the tests sign and verify with, the same release the workflow uses. It is built
// from the Go module proxy, not listed in go.mod: its few hundred dependencies would otherwise be in every
// user's module graph.
const CosignModule = "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3"

// CosignInstallHint is what to run when Cosign fails.
const CosignInstallHint = "go run ./pkg/internal/cmd/cosign version (builds " + CosignModule + " into the user cache dir; 12.7 CPU-minutes, once)"

// Cosign returns the path of the pinned cosign binary, building it with `go install` into the user cache dir
// the first time (with the toolchain the go command on PATH selects).
func Cosign(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("airgap: user cache dir: %w", err)
	}
	dir := filepath.Join(cache, "kobuilt-hello", "cosign", filepath.Base(CosignModule))
	bin := filepath.Join(dir, "cosign")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("airgap: cosign: %w", err)
	}
	// Install into a fresh directory and rename it into place, so an interrupted build never leaves a
	// half-written binary where the next run would take it for a good one.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("airgap: cosign: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return "", fmt.Errorf("airgap: cosign: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", CosignModule)
	cmd.Env = proc.Environ([]string{"GOFLAGS"}, "GOBIN="+tmp, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("airgap: go install %s: %w\n%s", CosignModule, err, proc.Tail(string(out), 4000))
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		// Another process may have finished first; its binary is as good as ours.
		if _, serr := os.Stat(bin); serr != nil {
			return "", fmt.Errorf("airgap: cosign: %w", err)
		}
	}
	return bin, nil
}
