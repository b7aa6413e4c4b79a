package airgap

import (
	"context"
	"fmt"
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
	bin, err := goInstall(ctx, "HELLO_COSIGN_CACHE", "cosign", CosignModule)
	if err != nil {
		return "", fmt.Errorf("airgap: cosign: %w", err)
	}
	return bin, nil
}
