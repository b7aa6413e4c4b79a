//go:build !(linux || darwin)

package main

// openFileLimit reports no limit where there is no RLIMIT_NOFILE to read.
func openFileLimit() uint64 { return 0 }
