// Package doccheck keeps README.md and docs/ true to the repository: its
// test reads every shell command and link in them and fails, with file:line,
// on a path, package, go tool, environment variable or link target that does
// not exist. The rules are written at the top of docs_test.go.
//
// The package has only tests; this file holds its documentation.
package doccheck
