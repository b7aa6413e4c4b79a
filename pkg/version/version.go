// Package version reports what build of hello is running.
//
// The release pipeline stamps Version, Commit and Date with -ldflags -X (see
// .ko.yaml and Dockerfile.reference); a plain `go build` or `go run` leaves
// them empty and Get falls back to what the Go toolchain recorded in the
// binary.
package version

import (
	"runtime"
	"runtime/debug"
)

// Stamped at link time, for example:
//
//	-X github.com/kobuilt/hello/pkg/version.Version=v1.2.3
//	-X github.com/kobuilt/hello/pkg/version.Commit=<full sha>
//	-X github.com/kobuilt/hello/pkg/version.Date=<RFC 3339 commit date>
var (
	Version string
	Commit  string
	Date    string
)

// Info is what /version serves.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"goVersion"`
	Module    string `json:"module,omitempty"`
}

// Get returns the stamped values, completed from the binary's build info.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if info.Version == "" {
			info.Version = "(devel)"
		}
		return info
	}
	info.Module = bi.Main.Path
	if info.Version == "" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.Commit == "" {
				info.Commit = s.Value
			}
		case "vcs.time":
			if info.Date == "" {
				info.Date = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	return info
}
