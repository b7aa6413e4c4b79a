// Package testonly has only a test file: `go build` of it fails, which
// TestShellRulesFail expects the go rule to report.
package testonly
