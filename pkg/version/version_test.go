package version

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"

	"golang.org/x/mod/modfile"
)

func TestCompleteFallsBackToBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		Main: debug.Module{Path: "example.com/svc", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abc"},
			{Key: "vcs.time", Value: "2026-11-27T12:00:00Z"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	tests := []struct {
		name  string
		stamp Info
		bi    *debug.BuildInfo
		want  Info
	}{
		{"go install of a tagged version: all from the build info", Info{GoVersion: "go1.27.3"}, bi,
			Info{Version: "v0.3.0", Commit: "0123abc", Date: "2026-11-27T12:00:00Z", GoVersion: "go1.27.3", Module: "example.com/svc"}},
		{"stamped by the release build: the stamp wins", Info{Version: "v1.2.3", Commit: "fff", Date: "2026-01-01T00:00:00Z", GoVersion: "go1.27.3"}, bi,
			Info{Version: "v1.2.3", Commit: "fff", Date: "2026-01-01T00:00:00Z", GoVersion: "go1.27.3", Module: "example.com/svc"}},
		{"no version anywhere", Info{GoVersion: "go1.27.3"}, &debug.BuildInfo{Main: debug.Module{Path: "m"}},
			Info{Version: "(devel)", GoVersion: "go1.27.3", Module: "m"}},
		{"no build info in the binary", Info{GoVersion: "go1.27.3"}, nil,
			Info{Version: "(devel)", GoVersion: "go1.27.3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := complete(tt.stamp, tt.bi); got != tt.want {
				t.Errorf("complete = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A test binary carries build info but no link stamp: Get reports this
// module, the Go that built it, and no version of its own.
func TestGet(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Version: "(devel)", GoVersion: runtime.Version(), Module: modfile.ModulePath(gomod)}
	got := Get()
	got.Commit, got.Date = "", "" // set when the test binary was built from a git checkout
	if got != want {
		t.Errorf("Get() = %+v, want %+v", got, want)
	}
}

// What main passes from its link stamp is served as stamped; the module and
// the Go version still come from the binary.
func TestStamped(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-11-27T12:00:00Z",
		GoVersion: runtime.Version(), Module: modfile.ModulePath(gomod)}
	if got := Stamped(want.Version, want.Commit, want.Date); got != want {
		t.Errorf("Stamped = %+v, want %+v", got, want)
	}
}
