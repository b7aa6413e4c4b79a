// Package airgap brings up, on loopback only, everything the end-to-end tests
// would otherwise fetch from the internet: an OCI registry, an offline
// stand-in for the distroless base image, a Docker daemon, and a way to run
// the real ko CLI against them.
//
// It is ordinary (non-test) code so that measurement commands such as
// pkg/internal/cmd/kofigures can share it with the tests in pkg/internal/e2e.
package airgap
