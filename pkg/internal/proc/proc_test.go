package proc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEnviron(t *testing.T) {
	t.Setenv("PROC_TEST_KEEP", "1")
	t.Setenv("PROC_TEST_DROP", "1")
	t.Setenv("PROC_TEST_SET", "old")
	env := Environ([]string{"PROC_TEST_DROP", "PROC_TEST_UNSET"}, "PROC_TEST_SET=new", "PROC_TEST_EMPTY=")
	count := func(key string) int {
		n := 0
		for _, kv := range env {
			if strings.HasPrefix(kv, key+"=") {
				n++
			}
		}
		return n
	}
	for _, tt := range []struct {
		key  string
		want int
	}{{"PROC_TEST_KEEP", 1}, {"PROC_TEST_DROP", 0}, {"PROC_TEST_SET", 1}, {"PROC_TEST_EMPTY", 1}} {
		if got := count(tt.key); got != tt.want {
			t.Errorf("%s appears %d times, want %d", tt.key, got, tt.want)
		}
	}
	if !slices.Contains(env, "PROC_TEST_SET=new") || slices.Contains(env, "PROC_TEST_SET=old") {
		t.Errorf("PROC_TEST_SET not replaced: %q", env)
	}
}

func TestTail(t *testing.T) {
	if got := Tail("abcdef", 3); got != "...def" {
		t.Errorf("Tail = %q", got)
	}
	if got := Tail("abc", 3); got != "abc" {
		t.Errorf("Tail of a short string = %q", got)
	}
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("line 1\nline 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := TailFile(p, 7); got != "...line 2\n" {
		t.Errorf("TailFile = %q", got)
	}
	if got := TailFile(filepath.Join(t.TempDir(), "none"), 7); !strings.HasPrefix(got, "(no log: ") {
		t.Errorf("TailFile of a missing file = %q", got)
	}
}
