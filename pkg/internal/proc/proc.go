// Package proc holds what the test harness needs around the child processes
// it runs (dockerd, ko, docker, etcd, kube-apiserver, the service): their
// environment, the tail of their output for failure messages, and starting
// and stopping the long-running ones.
package proc

import (
	"fmt"
	"os"
	"strings"
)

// Environ returns this process's environment without the variables named in
// drop or set, followed by set ("KEY=VALUE" entries). Dropping before adding
// keeps a developer's shell from silently overriding what a harness sets: with
// a duplicated key, which value wins depends on the program reading it.
func Environ(drop []string, set ...string) []string {
	keys := make(map[string]bool, len(drop)+len(set))
	for _, k := range drop {
		keys[k] = true
	}
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	env := make([]string, 0, len(os.Environ())+len(set))
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !keys[k] {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}

// Tail returns the last n bytes of s, marked with "..." when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TailFile is Tail of a log file's contents, or why it could not be read.
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return Tail(string(b), n)
}
