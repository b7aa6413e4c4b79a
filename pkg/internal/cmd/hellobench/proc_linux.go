//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func sampleCPU(pid int) (cpuSample, error) {
	var s cpuSample
	var err error
	if s.process, err = processCPU(pid); err != nil {
		return s, err
	}
	s.busy, s.total, err = machineCPU()
	return s, err
}

// clockTick is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports (reading it needs sysconf, which needs cgo).
const clockTick = 10 * time.Millisecond

// processCPU is the user+system CPU time pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	d, err := parseProcessCPU(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// parseProcessCPU reads utime + stime from the contents of /proc/<pid>/stat.
func parseProcessCPU(b []byte) (time.Duration, error) {
	// The command name in parentheses may hold spaces and parentheses of
	// its own, so the fields resume after the last ')': the state (field
	// 3) first, which puts utime (14) and stime (15) at 11 and 12.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// machineCPU is the busy and total CPU ticks of the whole machine so far.
func machineCPU() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	busy, total, err = parseMachineCPU(b)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/stat: %w", err)
	}
	return busy, total, nil
}

// parseMachineCPU reads the busy and total ticks from the first line of
// /proc/stat, the sum over all CPUs; idle and iowait are not busy.
func parseMachineCPU(b []byte) (busy, total int64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("no cpu line")
	}
	var idle int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return total - idle, total, nil
}

// rssKB is the resident memory of pid in KiB.
func rssKB(pid int) (int, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	kb, err := parseRSS(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return kb, nil
}

// parseRSS reads the VmRSS line of /proc/<pid>/status. A kernel thread or
// a process that has exited has none.
func parseRSS(b []byte) (int, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, errors.New("no VmRSS line")
}
