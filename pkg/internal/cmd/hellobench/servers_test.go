package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The servers' paths name main packages of this module, wherever the test
// runs from: a move that leaves them behind fails here, not after a build
// in the middle of a benchmark.
func TestServersAreCommands(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	hello, echo, bare := newServers()
	for _, s := range []*server{hello, echo, bare} {
		cmd := exec.Command("go", "list", "-f", "{{.Name}} {{.Module.Main}}", s.pkg)
		cmd.Dir = root
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: go list %s: %v\n%s", s.name, s.pkg, err, b)
		}
		if got := strings.TrimSpace(string(b)); got != "main true" {
			t.Errorf("%s: %s is %q, want a command of the main module", s.name, s.pkg, got)
		}
	}
}
