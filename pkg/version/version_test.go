package version

import (
	"runtime/debug"
	"testing"
)

func TestCompleteFallsBackToBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/kobuilt/hello", Version: "v0.3.0"},
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
			Info{Version: "v0.3.0", Commit: "0123abc", Date: "2026-11-27T12:00:00Z", GoVersion: "go1.27.3", Module: "github.com/kobuilt/hello"}},
		{"stamped by the release build: the stamp wins", Info{Version: "v1.2.3", Commit: "fff", Date: "2026-01-01T00:00:00Z", GoVersion: "go1.27.3"}, bi,
			Info{Version: "v1.2.3", Commit: "fff", Date: "2026-01-01T00:00:00Z", GoVersion: "go1.27.3", Module: "github.com/kobuilt/hello"}},
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

// A test binary has build info, so Get reports the module and Go version.
func TestGet(t *testing.T) {
	got := Get()
	if got.GoVersion == "" || got.Version == "" {
		t.Errorf("Get() = %+v: no Go version or version", got)
	}
}
