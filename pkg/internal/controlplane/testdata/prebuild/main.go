// Command prebuild builds (or finds in the cache) the control plane that the
// end-to-end tests run, so `go test` does not spend minutes compiling it.
// .ci/run calls it; on a laptop: go run ./pkg/internal/controlplane/testdata/prebuild
//
// It lives under testdata so that `go build ./...` and `go test ./...` leave
// it alone; it is a test tool, not part of the product.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kobuilt/hello/pkg/internal/buildcache"
	"github.com/kobuilt/hello/pkg/internal/controlplane"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	recipe, err := buildcache.RecipeDir("pkg/internal/controlplane/testdata", "kubernetes/go.mod")
	if err != nil {
		fmt.Fprintf(os.Stderr, "prebuild: %v\n", err)
		os.Exit(1)
	}
	start := time.Now()
	bins, err := controlplane.Build(ctx, recipe, controlplane.WithBuildLog(os.Stderr))
	if err != nil {
		fmt.Fprintf(os.Stderr, "prebuild: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("Kubernetes %s and etcd %s ready in %s (%s)\n", bins.KubernetesVersion, bins.EtcdVersion, bins.Dir, time.Since(start).Round(time.Second))
}
