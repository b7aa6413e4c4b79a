// Command prebuild builds (or finds in the cache) the node that the
// end-to-end tests run: containerd and its runc shim, the CNI plugins and
// the pause program. .ci/run calls it after the control plane's prebuild,
// which builds the kubelet and kube-proxy; on a laptop:
//
//	go run ./pkg/internal/node/testdata/prebuild
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
	"github.com/kobuilt/hello/pkg/internal/node"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	recipe, err := buildcache.RecipeDir("pkg/internal/node/testdata", "containerd/go.mod")
	if err != nil {
		fmt.Fprintf(os.Stderr, "prebuild: %v\n", err)
		os.Exit(1)
	}
	start := time.Now()
	bins, err := node.Build(ctx, recipe, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "prebuild: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("containerd %s and CNI plugins %s ready in %s (%s)\n", bins.ContainerdVersion, bins.CNIVersion, bins.Dir, time.Since(start).Round(time.Second))
}
