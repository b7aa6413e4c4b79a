package airgap

import (
	"context"
	"fmt"
)

// GonewModule is the gonew the template test copies this module with (golang.org/x/tools/cmd/gonew, the
// tool Go teams start a service from a template with), built from the Go module proxy like cosign.
const GonewModule = "golang.org/x/tools/cmd/gonew@v0.47.0"

// Gonew returns the path of the pinned gonew binary, building it with `go install` into the user cache dir
// the first time (25 CPU-seconds with an empty Go build cache, no .ci/run step needed).
func Gonew(ctx context.Context) (string, error) {
	bin, err := goInstall(ctx, "HELLO_GONEW_CACHE", "gonew", GonewModule)
	if err != nil {
		return "", fmt.Errorf("airgap: gonew: %w", err)
	}
	return bin, nil
}
