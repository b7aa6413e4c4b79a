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

// Stamped at link time with -X, as .ko.yaml does: the tag, the full commit
// hash and its RFC 3339 date.
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
	bi, _ := debug.ReadBuildInfo() // nil without build info
	return complete(Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version()}, bi)
}

// complete fills what the link stamp left empty from bi, which is nil when
// the binary carries no build info.
func complete(info Info, bi *debug.BuildInfo) Info {
	if bi != nil {
		info.Module = bi.Main.Path
		if info.Version == "" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && info.Commit == "":
				info.Commit = s.Value
			case s.Key == "vcs.time" && info.Date == "":
				info.Date = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	return info
}
