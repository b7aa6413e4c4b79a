// Package e2e holds the end-to-end tests: they build the real image with
// `go tool ko` against an air-gapped registry and base (pkg/internal/airgap), look
// inside it, run it under qemu and Docker, and deploy it to Kubernetes.
//
// All of them live in this one package so that a `go test ./...` run starts
// one registry and at most one Docker daemon, shared through the lazily
// started fixtures in fixtures_test.go and torn down by TestMain.
//
// Missing tools make a test skip with an install hint on a laptop and fail
// when CI=true.
package e2e
