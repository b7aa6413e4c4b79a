// Package version reports what build of hello is running.
//
// A release build stamps the tag, commit and date into package main with
// -ldflags -X (see .ko.yaml and Dockerfile.reference), and main passes them
// to Stamped. A plain `go build` or `go run` stamps nothing, and the build
// info the Go toolchain recorded in the binary fills in what it can.
package version

import (
	"runtime"
	"runtime/debug"
)

// Info is what /version serves.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"goVersion"`
	Module    string `json:"module,omitempty"`
}

// Get returns what the binary's build info says, for a binary that was not
// stamped.
func Get() Info { return Stamped("", "", "") }

// Stamped returns the tag, full commit hash and RFC 3339 commit date stamped
// at link time (empty when not stamped), completed from the binary's build
// info.
func Stamped(version, commit, date string) Info {
	bi, _ := debug.ReadBuildInfo() // nil without build info
	return complete(Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}, bi)
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
