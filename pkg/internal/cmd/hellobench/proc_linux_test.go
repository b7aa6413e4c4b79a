//go:build linux

package main

import (
	"os"
	"testing"
	"time"
)

// The /proc/<pid>/stat lines were read on Linux 6.18: a shell (14 ticks of
// CPU), a copy of bash named "a) b (c) d" that had spun for 74 ticks, and
// kthreadd.
func TestParseProcessCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{
			name: "plain name",
			stat: "29211 (bash) S 29210 29211 29211 0 -1 4194560 11054 1601869 0 262 6 8 4653 1942 20 0 1 0 210566 5255168 1003 18446744073709551615 94047069831168 94047070620573 140730063188176 0 0 0 65536 4 1132560123 1 0 0 17 0 0 0 0 0 0 94047070853872 94047070902116 94047963795456 140730063190876 140730063190891 140730063190891 140730063192042 0\n",
			want: 140 * time.Millisecond,
		},
		{
			name: "name with spaces and parentheses",
			stat: "7212 (a) b (c) d) S 7210 7210 29211 0 -1 4194304 225 0 0 0 74 0 0 0 20 0 1 0 236867 4464640 767 18446744073709551615 93970250420224 93970251209629 140731433408496 0 0 0 65536 6 65536 1 0 0 17 0 0 0 0 0 0 93970251442928 93970251491172 93970606891008 140731433417334 140731433417420 140731433417420 140731433418731 0\n",
			want: 740 * time.Millisecond,
		},
		{
			name: "kernel thread",
			stat: "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 23 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			want: 0,
		},
		{name: "cut before stime", stat: "29211 (bash) S 29210 29211 29211 0 -1 4194560 11054 1601869 0 262 6", wantErr: true},
		{name: "no closing parenthesis", stat: "29211 (bash S 29210 29211 29211 0 -1 4194560 11054 1601869 0 262 6 8 4653", wantErr: true},
		{name: "not a number", stat: "29211 (bash) S 29210 29211 29211 0 -1 4194560 11054 1601869 0 262 six 8 4653\n", wantErr: true},
		{name: "empty", stat: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcessCPU([]byte(tc.stat))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestParseMachineCPU(t *testing.T) {
	// testdata/proc-stat is a whole /proc/stat of a 2-CPU machine; its
	// first line is "cpu  318766 43780 95125 13942 391 0 1383 412 0 0".
	captured, err := os.ReadFile("testdata/proc-stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		stat        string
		busy, total int64
		wantErr     bool
	}{
		{name: "real", stat: string(captured), busy: 473799 - 13942 - 391, total: 473799},
		// Kernels before 2.6 had only user, nice, system and idle.
		{name: "four columns", stat: "cpu  10 20 30 40\n", busy: 60, total: 100},
		{name: "per-CPU line first", stat: "cpu0 161077 20874 46832 7611 60 0 244 191 0 0\n", wantErr: true},
		{name: "too few columns", stat: "cpu  10 20 30\n", wantErr: true},
		{name: "not a number", stat: "cpu  10 20 x 40 50\n", wantErr: true},
		{name: "empty", stat: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			busy, total, err := parseMachineCPU([]byte(tc.stat))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got busy %d, total %d; want an error", busy, total)
				}
				return
			}
			if err != nil || busy != tc.busy || total != tc.total {
				t.Fatalf("got busy %d, total %d, %v; want %d, %d", busy, total, err, tc.busy, tc.total)
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	for _, tc := range []struct {
		file    string
		want    int
		wantErr bool
	}{
		{file: "testdata/proc-pid-status", want: 3184}, // "VmRSS:\t    3184 kB"
		// A kernel thread has no memory of its own and no Vm lines.
		{file: "testdata/proc-pid-status-kthread", wantErr: true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseRSS(b)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %d, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	if _, err := parseRSS([]byte("VmRSS:\t    many kB\n")); err == nil {
		t.Error("VmRSS that is not a number: no error")
	}
}

// The readers work on this process: it has used some CPU, the machine more,
// and it is resident.
func TestReadOwnProc(t *testing.T) {
	pid := os.Getpid()
	s, err := sampleCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if s.process < 0 || s.busy <= 0 || s.total < s.busy {
		t.Errorf("sampleCPU: %+v", s)
	}
	kb, err := rssKB(pid)
	if err != nil || kb <= 0 {
		t.Errorf("rssKB: %d, %v", kb, err)
	}
}
