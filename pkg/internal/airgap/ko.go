package airgap

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/kobuilt/hello/pkg/internal/proc"
)

// Ko runs the real ko CLI, `go tool ko`, the way a user does: from Dir (a
// checkout of this module, so go.mod's tool directive picks the pinned ko),
// with only the target repository and the base image overridden. Everything
// else (build flags, ldflags, platforms, SBOM) comes from Dir's .ko.yaml.
type Ko struct {
	Dir        string   // module root to run in
	DockerRepo string   // KO_DOCKER_REPO, e.g. "127.0.0.1:5000/hello" or "ko.local"
	BaseImage  string   // KO_DEFAULTBASEIMAGE; empty keeps .ko.yaml's defaultBaseImage
	Env        []string // extra KEY=VALUE entries, applied last
	// Bin is a ko binary to run instead of `go tool ko`, e.g. the path
	// `go tool -n ko` prints. Timing runs with an empty GOCACHE need it:
	// `go tool ko` would first recompile ko itself into that cache.
	Bin string
}

// overridden are the variables Ko sets itself; inherited values are dropped
// so that a developer's shell cannot silently change what the tests build.
var overridden = []string{"KO_DOCKER_REPO", "KO_DEFAULTBASEIMAGE", "KO_CONFIG_PATH"}

// Command returns `go tool ko args...` (or `Bin args...`), ready to run.
func (k Ko) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "ko"}, args...)...)
	if k.Bin != "" {
		cmd = exec.CommandContext(ctx, k.Bin, args...)
	}
	cmd.Dir = k.Dir
	var set []string
	if k.DockerRepo != "" {
		set = append(set, "KO_DOCKER_REPO="+k.DockerRepo)
	}
	if k.BaseImage != "" {
		set = append(set, "KO_DEFAULTBASEIMAGE="+k.BaseImage)
	}
	cmd.Env = proc.Environ(overridden, append(set, k.Env...)...)
	return cmd
}

// ToolPath builds ko if needed and returns the path of the binary `go tool
// ko` runs in dir, so it can be timed or run without the go command.
func ToolPath(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", "ko")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("airgap: go tool -n ko: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
