package main

import versioninfo "github.com/kobuilt/hello/pkg/version"

// Stamped at link time by .ko.yaml and Dockerfile.reference with
// -X main.version=... (the names GoReleaser uses too). They live in main
// because main is the one package whose -X name does not change when the
// module is copied under a new path (gonew), and the linker silently
// ignores -X for a symbol that does not exist.
var version, commit, date string

// stampedVersion is what /version serves: the link stamp, completed from
// the binary's build info.
func stampedVersion() versioninfo.Info { return versioninfo.Stamped(version, commit, date) }
