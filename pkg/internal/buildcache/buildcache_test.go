package buildcache

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRootFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HELLO_TEST_CACHE", dir)
	got, err := Root("HELLO_TEST_CACHE", "node")
	if err != nil || got != dir {
		t.Fatalf("Root = %q, %v; want %q", got, err, dir)
	}
}

func TestFill(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cache")

	// A failed build leaves nothing that could be taken for an entry.
	boom := errors.New("boom")
	if err := Fill(root, "k", func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "half"), nil, 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	if err := Fill(root, "broken", func(dir string) error {
		if err := os.WriteFile(filepath.Join(dir, "half"), nil, 0o644); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Fill with a failing build = %v, want %v", err, boom)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "k" {
		t.Errorf("cache holds %v, want only the entry k", entries)
	}
	if _, err := os.Stat(filepath.Join(root, "k", "half")); err != nil {
		t.Errorf("entry k: %v", err)
	}

	// A second build of an existing entry (another process won the race)
	// is not an error, and the first entry stays.
	if err := Fill(root, "k", func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "second"), nil, 0o644)
	}); err != nil {
		t.Fatalf("second Fill: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "k", "half")); err != nil {
		t.Errorf("entry k after a second Fill: %v", err)
	}
}
