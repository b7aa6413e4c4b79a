package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	versioninfo "github.com/kobuilt/hello/pkg/version"
)

// The release build's -X main.version, main.commit and main.date (.ko.yaml,
// Dockerfile.reference) reach /version. The linker ignores -X for a symbol
// that does not exist, so renamed variables would otherwise go unnoticed
// until an image served an empty commit.
func TestLinkStampReachesVersion(t *testing.T) {
	want := versioninfo.Info{Version: "v1.2.3", Commit: strings.Repeat("ab", 20), Date: "2026-11-27T12:00:00Z"}
	bin := filepath.Join(t.TempDir(), "hello")
	ldflags := "-X main.version=" + want.Version + " -X main.commit=" + want.Commit + " -X main.date=" + want.Date
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	p := startCommand(t, exec.Command(bin), nil)
	_, body := get(t, "http://"+p.addr+"/version")
	var got versioninfo.Info
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/version: %v: %s", err, body)
	}
	if got.Version != want.Version || got.Commit != want.Commit || got.Date != want.Date {
		t.Errorf("/version = %s, want version %s, commit %s, date %s", body, want.Version, want.Commit, want.Date)
	}
}
