// Package testenv says what a test may do when a tool it needs is missing:
// skip on a developer's machine, fail in CI.
package testenv

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the CI environment variable is set to a true value,
// as GitHub Actions and .ci/run do.
func InCI() bool {
	ok, _ := strconv.ParseBool(os.Getenv("CI"))
	return ok
}

// Need stops the test when a prerequisite is missing: on a laptop it skips
// and says what to install; in CI it fails, because CI must never pass by
// skipping the end-to-end tests.
func Need(t testing.TB, ok bool, what, install string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("%s is missing and CI=true, so this cannot be skipped; install: %s", what, install)
	}
	t.Skipf("%s is missing; install it to run this test: %s", what, install)
}
