package proc

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestProcessStop(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs sh and SIGTERM")
	}
	for _, tc := range []struct {
		name, script string
		wantErr      string // "" for a clean stop
	}{
		{"exits on SIGTERM", "echo started; exec sleep 30", ""},
		{"ignores SIGTERM", "trap '' TERM; echo started; while :; do sleep 0.1; done", "ignored SIGTERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "sh.log")
			p, err := Start("sh", exec.Command("sh", "-c", tc.script), log)
			if err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(TailFile(log, 100), "started"); {
				if time.Now().After(deadline) {
					t.Fatalf("no output in the log: %q", TailFile(log, 100))
				}
				time.Sleep(10 * time.Millisecond)
			}
			err = p.Stop(500 * time.Millisecond)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Stop = %v, want an error containing %q", err, tc.wantErr)
			}
			if !p.Exited() {
				t.Error("still running after Stop")
			}
			if _, err := os.Stat(log); err != nil {
				t.Error(err)
			}
		})
	}
}
