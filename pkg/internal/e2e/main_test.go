package e2e

import (
	"fmt"
	"os"
	"runtime"
	"testing"
)

func TestMain(m *testing.M) {
	if runtime.GOOS != "linux" {
		// One line instead of a page of skips: every test here drives
		// dockerd, runc, network namespaces or Linux binaries.
		fmt.Printf("e2e: skipped on %s: the end-to-end tests need Linux (dockerd, runc, the Kubernetes binaries)\n", runtime.GOOS)
		os.Exit(0)
	}
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e teardown:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
