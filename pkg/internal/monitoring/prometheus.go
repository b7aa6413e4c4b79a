package monitoring

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kobuilt/hello/pkg/internal/buildcache"
	"github.com/kobuilt/hello/pkg/internal/proc"
)

// PrometheusModule is the Prometheus server the node test scrapes the Pods
// with. Debian's prometheus package cannot: it is built without Kubernetes
// service discovery ("kubernetes_sd_configs not found"), so this is built
// from the Go module proxy (module version v0.X.Y is Prometheus 3.X.Y), not
// listed in go.mod, where its dependencies would reach every user's module
// graph.
const PrometheusModule = "github.com/prometheus/prometheus/cmd/prometheus@v0.316.0"

// prometheusTags leave out every service discovery but Kubernetes's (the
// cloud providers' SDKs are most of the build), and the web UI's assets.
const prometheusTags = "remove_all_sd,enable_kubernetes_sd"

// PrometheusInstallHint is what to run when Prometheus fails.
const PrometheusInstallHint = "go run ./pkg/internal/cmd/prometheus --version (builds " + PrometheusModule + " into the user cache dir, once)"

// Prometheus returns the path of the pinned prometheus binary, building it
// with `go install` into the user cache dir the first time (with the
// toolchain the go command on PATH selects).
func Prometheus(ctx context.Context) (string, error) {
	root, err := buildcache.Root("HELLO_PROMETHEUS_CACHE", "prometheus")
	if err != nil {
		return "", fmt.Errorf("monitoring: prometheus: %w", err)
	}
	key := filepath.Base(PrometheusModule) + "-" + strings.ReplaceAll(prometheusTags, ",", "-")
	bin := filepath.Join(root, key, "prometheus")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	err = buildcache.Fill(root, key, func(dir string) error {
		cmd := exec.CommandContext(ctx, "go", "install", "-tags="+prometheusTags, PrometheusModule)
		cmd.Env = proc.Environ([]string{"GOFLAGS"}, "GOBIN="+dir, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go install %s: %w\n%s", PrometheusModule, err, proc.Tail(string(out), 4000))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("monitoring: prometheus: %w", err)
	}
	return bin, nil
}
