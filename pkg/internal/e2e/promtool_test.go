package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// TestMetricsPassPromtool: Prometheus's own lint, `promtool check metrics`,
// finds nothing to say about the image's /metrics, whether it is served on
// the service port or on a metrics port of its own (METRICS_ADDR).
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	testenv.Need(t, err == nil, "promtool", "apt-get install prometheus")
	bin := imageBinary(t)
	for _, separate := range []bool{false, true} {
		service := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		metrics := service
		args := []string{"--addr", service}
		if separate {
			metrics = fmt.Sprintf("127.0.0.1:%d", freePort(t))
			args = append(args, "--metrics-addr", metrics)
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = os.Environ()
		startService(t, cmd, service)
		get(t, "http://"+service+"/hello")

		check := exec.Command(promtool, "check", "metrics")
		check.Stdin = strings.NewReader(get(t, "http://"+metrics+"/metrics"))
		var out bytes.Buffer
		check.Stdout, check.Stderr = &out, &out
		err := check.Run()
		if err != nil || out.Len() != 0 {
			t.Errorf("METRICS_ADDR separate=%v: promtool check metrics: %v\n%s", separate, err, out.String())
		}
	}
}
