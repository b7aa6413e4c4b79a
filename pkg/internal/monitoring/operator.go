package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kobuilt/hello/pkg/internal/buildcache"
	"github.com/kobuilt/hello/pkg/internal/proc"
)

// OperatorModule carries the Prometheus Operator's CustomResourceDefinitions
// (example/prometheus-operator-crd), the schemas the API server checks a
// PodMonitor and a PrometheusRule against. Downloaded from the Go module
// proxy, not listed in go.mod: nothing here imports it.
const OperatorModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

// OperatorCRDs returns the files of the CRDs named (e.g. "podmonitors"),
// downloading OperatorModule into the module cache the first time (about
// 4 MB).
func OperatorCRDs(ctx context.Context, names ...string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", OperatorModule)
	// Outside any module, so neither this module's go.mod nor a vendor
	// setting is involved.
	cmd.Dir = os.TempDir()
	cmd.Env = proc.Environ([]string{"GOFLAGS"}, "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download %s: %w%s", OperatorModule, err, buildcache.Stderr(err))
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("go mod download %s: %w", OperatorModule, err)
	}
	if m.Error != "" || m.Dir == "" {
		return nil, fmt.Errorf("go mod download %s: %s", OperatorModule, m.Error)
	}
	var files []string
	for _, n := range names {
		files = append(files, filepath.Join(m.Dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_"+n+".yaml"))
	}
	return files, nil
}
