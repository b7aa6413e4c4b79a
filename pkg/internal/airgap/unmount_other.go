//go:build !linux

package airgap

import "errors"

// The daemons this package starts (dockerd, runc) run only on Linux; on
// other systems the package compiles so the module builds, and the tests
// that need it skip before they get here.
func unmountDetach(string) error { return errors.New("airgap: unmount needs Linux") }
