//go:build !linux

package main

import "errors"

// errNoProc is what every measurement that reads /proc returns off Linux:
// process CPU, machine CPU and RSS come from /proc/<pid>/stat, /proc/stat
// and /proc/<pid>/status. -target needs none of them and runs anywhere.
var errNoProc = errors.New("hellobench reads process CPU, machine CPU and RSS from /proc, which only Linux has; run it on Linux, or use -target")

func sampleCPU(int) (cpuSample, error) { return cpuSample{}, errNoProc }

func rssKB(int) (int, error) { return 0, errNoProc }
