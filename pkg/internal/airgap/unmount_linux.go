package airgap

import "syscall"

// unmountDetach lazily unmounts p, even while something still uses it.
func unmountDetach(p string) error { return syscall.Unmount(p, syscall.MNT_DETACH) }
