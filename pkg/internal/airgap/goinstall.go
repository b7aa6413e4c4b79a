package airgap

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/kobuilt/hello/pkg/internal/buildcache"
	"github.com/kobuilt/hello/pkg/internal/proc"
)

// goInstall returns the path of the command module (PATH@VERSION) built with `go install` into the cache
// directory name of the user cache dir ($env if set), building it the first time. Tools the tests run but
// the service does not import are built this way rather than listed in go.mod, where they would join every
// user's module graph.
func goInstall(ctx context.Context, env, name, module string) (string, error) {
	root, err := buildcache.Root(env, name)
	if err != nil {
		return "", err
	}
	key := path.Base(module) // "cosign@v3.1.3": a new pin is a new entry
	bin := filepath.Join(root, key, path.Base(strings.Split(module, "@")[0]))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	err = buildcache.Fill(root, key, func(dir string) error {
		cmd := exec.CommandContext(ctx, "go", "install", module)
		cmd.Env = proc.Environ([]string{"GOFLAGS"}, "GOBIN="+dir, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go install %s: %w\n%s", module, err, proc.Tail(string(out), 4000))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return bin, nil
}
