package doccheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// This file holds the rules; docs_test.go says what they are and runs them
// on the real docs, and rules_test.go on small samples.

// The rules, each a subtest of TestDocs.
const (
	ruleLinks  = "links"  // relative link targets and their #anchors
	rulePaths  = "paths"  // files and directories named in commands
	ruleProse  = "prose"  // files and directories named in prose, as one-word code spans
	ruleGo     = "go"     // go run/build/test/vet packages and go tool names
	ruleEnv    = "env"    // environment variables set or expanded
	ruleBlocks = "blocks" // code blocks that hold commands but are not tagged as shell
)

// A finding is one thing a doc gets wrong.
type finding struct {
	rule string
	file string // slash path from the repository root
	line int
	msg  string
}

func (f finding) String() string { return fmt.Sprintf("%s:%d: %s", f.file, f.line, f.msg) }

// externalVars are the environment variables the docs may set or expand
// that belong to other programs: each is read by the program named beside it.
var externalVars = map[string]bool{
	// The shell's own.
	"HOME": true, "PATH": true, "PWD": true,
	// The C library's and git's time zone (git show --date=format-local).
	"TZ": true,
	// The go command's and the Go runtime's.
	"GOTOOLCHAIN": true, "GOOS": true, "GOARCH": true, "GOFLAGS": true, "GOPROXY": true,
	"GOMODCACHE": true, "CGO_ENABLED": true, "GODEBUG": true,
	// ko's: where to push, the base image instead of .ko.yaml's, and the
	// cache that lets it skip relinking an unchanged binary.
	"KO_DOCKER_REPO": true, "KO_DEFAULTBASEIMAGE": true, "KOCACHE": true,
	// docker build's switch to BuildKit.
	"DOCKER_BUILDKIT": true,
	// Renovate's (its local dry run in testing.md).
	"RENOVATE_ONBOARDING": true,
	// CI systems set it; testenv.Need reads it to fail instead of skip.
	"CI": true,
}

// goDistTools are the tools of the Go distribution, which `go tool NAME`
// runs. Since Go 1.24 most are built on first use, so `go tool` alone does
// not list them; TestGoDistTools checks each is in GOROOT/src/cmd.
var goDistTools = []string{
	"addr2line", "asm", "buildid", "cgo", "compile", "covdata", "cover", "fix",
	"link", "nm", "objdump", "pack", "pprof", "preprofile", "test2json", "trace", "vet",
}

// commandNames are the programs whose code spans in prose are read as
// commands, as are spans that start with NAME=value and a command. A code
// block that is not tagged as shell and starts with one of these is
// reported (ruleBlocks).
var commandNames = map[string]bool{
	"go": true, "bash": true, "sh": true, "sudo": true, "time": true, "export": true, "cd": true,
	"git": true, "docker": true, "kubectl": true, "kind": true, "curl": true, "cosign": true,
	"promtool": true, "npm": true,
}

// A checker checks docs against one repository.
type checker struct {
	root     string          // the repository (module) root
	settings map[string]bool // the service's environment variables
	ownVars  map[string]bool // HELLO_* variables named in files other than Markdown
	tools    map[string]bool // what `go tool NAME` may name
	listed   map[string]goListResult
	counted  map[string]int // what was checked, by kind, for the test's log
}

type goListResult struct {
	pkgs []goPackage
	err  error
}

// goPackage is what the checks need of `go list -json`.
type goPackage struct {
	Name                               string
	GoFiles, TestGoFiles, XTestGoFiles []string
	Error                              *struct{ Err string }
}

func (c *checker) count(kind string) {
	if c.counted != nil {
		c.counted[kind]++
	}
}

func (c *checker) knownVar(n string) bool {
	return c.settings[n] || externalVars[n] || c.ownVars[n]
}

// checkDoc checks one Markdown file, name being its slash path from the
// repository root.
func (c *checker) checkDoc(name, text string) []finding {
	var out []finding
	add := func(rule string, line int, format string, args ...any) {
		out = append(out, finding{rule: rule, file: name, line: line, msg: fmt.Sprintf(format, args...)})
	}
	blocks, prose := splitFences(text)
	// The variables each shell block sets, by the line of its fence, so
	// that a command in the prose after it may expand them.
	type setBy struct {
		line int
		vars map[string]bool
	}
	var sets []setBy
	for _, b := range blocks {
		switch b.lang {
		case "sh", "bash", "shell", "console":
			c.count("shell blocks")
			vars := map[string]bool{}
			// The block's text starts on the line after its fence.
			for _, f := range c.checkShell(shellText(b.lang, b.text), vars) {
				add(f.rule, b.line+f.line, "%s", f.msg)
			}
			sets = append(sets, setBy{b.line, vars})
		case "":
			first, _, _ := strings.Cut(strings.TrimSpace(b.text), "\n")
			if w := strings.Fields(first); len(w) > 0 && (commandNames[w[0]] || w[0] == "$") {
				add(ruleBlocks, b.line, "untagged code block starts with the command %q: tag it ```sh so its commands are checked (or ```text if it is output)", first)
			}
		}
	}
	spans, rest := codeSpans(prose)
	for _, s := range spans {
		switch {
		case isCommand(s.text):
			c.count("commands in prose")
			vars := map[string]bool{}
			for _, set := range sets {
				if set.line < s.line {
					maps.Copy(vars, set.vars)
				}
			}
			for _, f := range c.checkShell(s.text, vars) {
				add(f.rule, s.line, "`%s`: %s", s.text, f.msg)
			}
		case !strings.ContainsAny(s.text, " \t"):
			if msg := c.pathProblem("", s.text, true); msg != "" {
				add(ruleProse, s.line, "`%s`: %s", s.text, msg)
			}
		}
	}
	self := anchors(prose)
	for _, l := range links(rest) {
		c.count("links")
		if msg := c.linkProblem(name, l.dest, self); msg != "" {
			add(ruleLinks, l.line, "link %q: %s", l.dest, msg)
		}
	}
	return out
}

// isCommand reports whether a code span of prose is a command: it runs a
// program of commandNames, or sets variables for a command.
func isCommand(s string) bool {
	cmds := parseShell(s)
	if len(cmds) == 0 {
		return false
	}
	assigns, name, _ := split(cmds[0])
	return commandNames[name] || (len(assigns) > 0 && name != "" && !strings.HasPrefix(name, "-"))
}

// An assignment is NAME=value before a command or on its own.
type assignment struct {
	name  string
	value word
}

var assignPrefix = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// split returns a command's leading assignments, the name of the program it
// runs and its arguments, past the shell keywords and the wrappers (sudo -E,
// time, env) that run the program.
func split(cmd command) (assigns []assignment, name string, args []word) {
	for i := 0; i < len(cmd.words); i++ {
		w := cmd.words[i]
		switch {
		case assignPrefix.MatchString(w.raw):
			n, v, _ := strings.Cut(w.text, "=")
			assigns = append(assigns, assignment{name: n, value: word{text: v, raw: v}})
		case slices.Contains([]string{"!", "{", "}", "do", "done", "then", "else", "elif", "fi", "if", "while", "until", "time"}, w.text):
		case slices.Contains([]string{"sudo", "env", "exec", "nohup", "command"}, w.text):
			for i+1 < len(cmd.words) && strings.HasPrefix(cmd.words[i+1].text, "-") {
				i++
			}
		default:
			return assigns, w.text, cmd.words[i+1:]
		}
	}
	return assigns, "", nil
}

// checkShell checks a shell snippet, run from the repository root, and
// returns findings with lines counted from 1 at the snippet's first line.
// defined holds the variables set before the snippet; checkShell adds
// those the snippet sets.
func (c *checker) checkShell(src string, defined map[string]bool) []finding {
	var out []finding
	add := func(rule string, line int, format string, args ...any) {
		out = append(out, finding{rule: rule, line: line, msg: fmt.Sprintf(format, args...)})
	}
	// dirs holds, for the top level and each subshell the current command
	// runs in, the directory there ("" is the root), or unknown after a cd
	// out of the repository.
	type place struct {
		scope int
		dir   string
		known bool
	}
	dirs := []place{{dir: "", known: true}}
	cmds := parseShell(src)
	expanded := map[string]bool{} // every variable the snippet expands
	for _, cmd := range cmds {
		for _, r := range cmd.refs {
			expanded[r] = true
		}
	}
	for _, cmd := range cmds {
		c.count("simple commands")
		// Leave the subshells the command is not in, enter those it is.
		keep := 1
		for keep < len(dirs) && keep-1 < len(cmd.scopes) && dirs[keep].scope == cmd.scopes[keep-1] {
			keep++
		}
		dirs = dirs[:keep]
		for _, s := range cmd.scopes[keep-1:] {
			p := dirs[len(dirs)-1]
			p.scope = s
			dirs = append(dirs, p)
		}
		here := &dirs[len(dirs)-1]

		seen := map[string]bool{}
		for _, r := range cmd.refs {
			if !defined[r] && !c.knownVar(r) && !seen[r] {
				seen[r] = true
				add(ruleEnv, cmd.line, "$%s is expanded but not set before it in its code block, and is neither a setting of the service (go run ./cmd/hello --help) nor a known variable", r)
			}
		}

		assigns, name, args := split(cmd)
		checkEnv := func(n string) {
			if !c.knownVar(n) {
				add(ruleEnv, cmd.line, "%s is neither a setting of the service (go run ./cmd/hello --help) nor a known variable", n)
			}
		}
		var pathWords []word // words that name files if anything does
		for _, a := range assigns {
			pathWords = append(pathWords, a.value)
			if name == "" {
				defined[a.name] = true // a shell variable
			} else {
				checkEnv(a.name) // the command's environment
			}
		}
		if name != "" {
			pathWords = append(pathWords, word{text: name})
		}
		pkgs := map[int]bool{} // args that are package patterns, checked as such
		switch name {
		case "export":
			// An exported variable is for the programs run after it, or for
			// the snippet itself (export IMAGE=... and then "$IMAGE").
			for _, a := range args {
				n, v, _ := strings.Cut(a.text, "=")
				if !strings.HasPrefix(n, "-") {
					if !expanded[n] {
						checkEnv(n)
					}
					defined[n] = true
					pathWords = append(pathWords, word{text: v})
				}
			}
			args = nil // checked here
		case "for":
			if len(args) > 0 {
				defined[args[0].text] = true
			}
		case "docker":
			for _, n := range envFlags(args) {
				checkEnv(n)
			}
		case "kubectl":
			for i := 0; i+1 < len(args); i++ {
				if args[i].text == "set" && args[i+1].text == "env" {
					for _, a := range args[i+2:] {
						if m := kubectlEnv.FindStringSubmatch(a.text); m != nil {
							checkEnv(m[1])
						}
					}
					for _, n := range envFlags(args[i+2:]) {
						checkEnv(n)
					}
				}
			}
		case "go":
			if len(args) > 0 {
				switch sub := args[0].text; sub {
				case "run", "build", "test", "vet":
					for _, p := range goPatterns(sub, args[1:]) {
						pkgs[p.arg+1] = true
						if !here.known || !isLocalPattern(p.pattern) {
							continue
						}
						if msg := c.packageProblem(path.Join(here.dir, p.dir), sub, p.pattern); msg != "" {
							add(ruleGo, cmd.line, "go %s %s: %s", sub, p.pattern, msg)
						}
					}
				case "tool":
					// The first argument that is not a flag names the tool.
					i := slices.IndexFunc(args[1:], func(a word) bool { return !strings.HasPrefix(a.text, "-") })
					if i >= 0 && !c.tools[args[1+i].text] {
						add(ruleGo, cmd.line, "go tool %s: neither a tool directive of go.mod nor a tool of the Go distribution", args[1+i].text)
					}
				}
			}
		}
		for i, a := range args {
			if pkgs[i] {
				continue
			}
			if strings.HasPrefix(a.text, "-") {
				// --flag=value and -f=value name what value names.
				if _, v, ok := strings.Cut(a.text, "="); ok {
					pathWords = append(pathWords, word{text: v})
				}
				continue
			}
			pathWords = append(pathWords, a)
		}
		pathWords = append(pathWords, cmd.in...)
		if here.known {
			for _, w := range pathWords {
				if msg := c.pathProblem(here.dir, w.text, false); msg != "" {
					add(rulePaths, cmd.line, "%s", msg)
				}
			}
		}
		if name == "cd" {
			if len(args) == 0 || !here.known {
				here.known = false // cd alone goes home
			} else {
				here.dir, here.known = c.cdTarget(here.dir, args[0])
			}
		}
	}
	return out
}

// cdTarget returns where `cd w` from dir goes, when that is a directory of
// the repository.
func (c *checker) cdTarget(dir string, w word) (string, bool) {
	if w.dynamic() || path.IsAbs(w.text) || strings.HasPrefix(w.text, "~") {
		return "", false
	}
	d := path.Join(dir, w.text)
	if d == ".." || strings.HasPrefix(d, "../") {
		return "", false
	}
	if fi, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(d))); err != nil || !fi.IsDir() {
		return "", false
	}
	if d == "." {
		d = ""
	}
	return d, true
}

var kubectlEnv = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)(?:=|-$)`)

// envFlags returns the variable names given with -e/--env (docker run,
// kubectl set env): -e NAME=value, -e NAME, --env=NAME=value.
func envFlags(args []word) []string {
	var out []string
	for i, a := range args {
		var v string
		switch {
		case (a.text == "-e" || a.text == "--env") && i+1 < len(args):
			v = args[i+1].text
		case strings.HasPrefix(a.text, "--env="), strings.HasPrefix(a.text, "-e="):
			_, v, _ = strings.Cut(a.text, "=")
		default:
			continue
		}
		if n := name.FindString(v); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// goValueFlags are the go command's build and test flags that take a value
// in the next argument when written without =.
var goValueFlags = map[string]bool{
	"C": true, "o": true, "p": true, "tags": true, "ldflags": true, "gcflags": true, "asmflags": true,
	"mod": true, "modfile": true, "overlay": true, "pkgdir": true, "exec": true, "toolexec": true,
	"buildmode": true, "compiler": true, "installsuffix": true, "pgo": true, "covermode": true,
	"coverpkg": true, "coverprofile": true, "cpuprofile": true, "memprofile": true,
	"memprofilerate": true, "blockprofile": true, "blockprofilerate": true, "mutexprofile": true,
	"mutexprofilefraction": true, "outputdir": true, "trace": true, "run": true, "skip": true,
	"bench": true, "benchtime": true, "count": true, "cpu": true, "parallel": true, "timeout": true,
	"shuffle": true, "fuzz": true, "fuzztime": true, "fuzzminimizetime": true, "list": true, "vet": true,
}

// A goPattern is a package argument of go run/build/test/vet.
type goPattern struct {
	arg     int    // its index in the arguments goPatterns was given
	pattern string // as written
	dir     string // the directory -C names, "" for none
}

// goPatterns returns the package arguments of `go sub args...`: every
// argument that is neither a flag nor a flag's value, and for go run only
// the first (what follows goes to the program).
func goPatterns(sub string, args []word) []goPattern {
	var out []goPattern
	dir := ""
	for i := 0; i < len(args); i++ {
		a := args[i].text
		if strings.HasPrefix(a, "-") {
			flag, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !hasValue && goValueFlags[flag] && i+1 < len(args) {
				i++
				value = args[i].text
			}
			if flag == "C" {
				dir = value
			}
			continue
		}
		out = append(out, goPattern{arg: i, pattern: a, dir: dir})
		if sub == "run" {
			break
		}
	}
	return out
}

// isLocalPattern reports whether a package pattern names directories (.,
// ./x, ../x, with or without /...), rather than an import path or a
// module@version, which the module proxy resolves.
func isLocalPattern(p string) bool {
	return p == "." || p == ".." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../")
}

// packageProblem says what is wrong with the local package pattern of
// `go sub pattern` run in dir (slash path from the root), or "".
func (c *checker) packageProblem(dir, sub, pattern string) string {
	if strings.ContainsAny(pattern, "$`") {
		return ""
	}
	pkgs, err := c.goList(dir, pattern)
	if err != nil {
		return err.Error()
	}
	if len(pkgs) == 0 {
		return "matches no packages"
	}
	for _, p := range pkgs {
		switch {
		case p.Error != nil:
			return strings.ReplaceAll(p.Error.Err, c.root+string(filepath.Separator), "")
		case sub == "run" && p.Name != "main":
			return fmt.Sprintf("package %s is not a command (go run needs package main)", p.Name)
		case (sub == "run" || sub == "build") && len(p.GoFiles) == 0 && !strings.Contains(pattern, "..."):
			// go build ./... passes over test-only packages; named, it fails.
			return "has only test files"
		}
	}
	return ""
}

// goList lists the packages a pattern matches in dir, as Linux sees them:
// the docs' commands are for Linux, and the answer must not depend on the
// machine the test runs on. -find leaves dependencies alone: whether the
// package is there is the question, not whether it builds.
func (c *checker) goList(dir, pattern string) ([]goPackage, error) {
	key := dir + "\x00" + pattern
	if r, ok := c.listed[key]; ok {
		return r.pkgs, r.err
	}
	cmd := exec.Command("go", "list", "-find", "-e", "-json=Name,GoFiles,TestGoFiles,XTestGoFiles,Error", pattern)
	cmd.Dir = filepath.Join(c.root, filepath.FromSlash(dir))
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var pkgs []goPackage
	if err != nil {
		err = fmt.Errorf("go list %s in %s: %w: %s", pattern, cmd.Dir, err, strings.TrimSpace(stderr.String()))
	} else {
		for dec := json.NewDecoder(bytes.NewReader(out)); ; {
			var p goPackage
			if err = dec.Decode(&p); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				} else {
					err = fmt.Errorf("go list %s: decoding its output: %w", pattern, err)
				}
				break
			}
			pkgs = append(pkgs, p)
		}
	}
	c.listed[key] = goListResult{pkgs, err}
	return pkgs, err
}

// pathProblem says what is wrong with a word that names a file or directory
// of the repository, or "" when it is fine or names none. Commands run in
// dir (a slash path from the root, "" for the root). A word names a path
// when it starts with ./, ../ or $PWD/, or when its first element (up to the
// first /) is an entry of dir, such as config/ or .ko.yaml at the root;
// that whole path must then exist. A trailing /... (a package pattern) is
// dropped. Words with other expansions, globs, braces or ~ are not checked.
// In prose (a code span that is one word, not a command) only the second
// form counts: ./api there is a place the text talks about, not a file.
func (c *checker) pathProblem(dir, text string, prose bool) string {
	if rest, ok := strings.CutPrefix(text, "$PWD/"); ok && !prose {
		text = "./" + rest
	}
	if text == "" || strings.ContainsAny(text, "$`*?[{~") || strings.HasPrefix(text, "-") {
		return ""
	}
	relative := strings.HasPrefix(text, "./") || strings.HasPrefix(text, "../")
	if !relative || prose {
		first, _, _ := strings.Cut(text, "/")
		if first == "" || first == "." || first == ".." || first == ".git" {
			return ""
		}
		if _, err := os.Lstat(filepath.Join(c.root, filepath.FromSlash(dir), first)); err != nil {
			return ""
		}
	}
	full := path.Join(dir, strings.TrimSuffix(text, "/..."))
	if full == ".." || strings.HasPrefix(full, "../") {
		return fmt.Sprintf("%s is outside the repository", text)
	}
	if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(full))); err != nil {
		switch {
		case prose:
			return fmt.Sprintf("%s does not exist in the repository", text)
		case dir == "":
			return fmt.Sprintf("%s does not exist in the repository (commands run from its root)", text)
		default:
			return fmt.Sprintf("%s does not exist in %s (where the cd before it went)", text, dir)
		}
	}
	return ""
}

var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// linkProblem says what is wrong with a link destination in doc (a slash
// path from the root, whose own anchors are self), or "" when it is fine or
// leaves the repository (a URL). The target must exist; a #anchor into a
// Markdown file must be the anchor of one of its headings.
func (c *checker) linkProblem(doc, dest string, self map[string]bool) string {
	if scheme.MatchString(dest) || strings.HasPrefix(dest, "//") {
		return ""
	}
	p, anchor, _ := strings.Cut(dest, "#")
	p, err := url.PathUnescape(p)
	if err != nil {
		return fmt.Sprintf("bad escape: %v", err)
	}
	var target string
	switch {
	case p == "":
		if !self[anchor] {
			return fmt.Sprintf("%s has no heading with the anchor #%s", doc, anchor)
		}
		return ""
	case strings.HasPrefix(p, "/"): // GitHub resolves it from the repository root
		target = path.Clean(p[1:])
	default:
		target = path.Join(path.Dir(doc), p)
	}
	if target == ".." || strings.HasPrefix(target, "../") {
		return "points outside the repository"
	}
	src, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(target)))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("%s does not exist", target)
	case err != nil && !isDir(filepath.Join(c.root, filepath.FromSlash(target))):
		return err.Error()
	}
	if anchor == "" || err != nil || !strings.HasSuffix(target, ".md") {
		return "" // a directory, or no anchor to check, or a file GitHub anchors by line
	}
	_, prose := splitFences(string(src))
	if !anchors(prose)[anchor] {
		return fmt.Sprintf("%s has no heading with the anchor #%s", target, anchor)
	}
	return ""
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
