package doccheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// This file splits shell snippets into simple commands, as far as the checks
// need: words with their quotes removed, the $NAME references a command
// expands, and the subshells it runs in. Here-documents are not supported
// (their lines would be read as commands); the docs have none.

// A word is one shell word.
type word struct {
	// text is the word with quotes and backslashes removed and expansions
	// ($NAME, ${NAME}, $(...), `...`) kept as written.
	text string
	// raw is the word as written.
	raw string
}

// dynamic reports whether the word's value depends on an expansion, so
// that it cannot be checked as written.
func (w word) dynamic() bool { return strings.ContainsAny(w.text, "$`") }

// A command is one simple command: what runs between two of \n ; & && | ||
// ( and ).
type command struct {
	line   int      // line of its first word, from 1
	words  []word   // assignments, the command's name and its arguments
	in     []word   // files read through < redirections
	refs   []string // names of the variables it expands, in order
	scopes []int    // the subshells it runs in, outermost first, each by a number of its own
}

// parseShell splits a snippet (the text of a code block, or one line) into
// its simple commands. A backslash at the end of a line joins the next one,
// and # starts a comment where a word could start.
func parseShell(src string) []command {
	p := &shellParser{src: src, line: 1}
	return p.list(false)
}

type shellParser struct {
	src      string
	i        int
	line     int
	open     []int     // the subshells the parser is in
	subshell int       // subshells opened so far
	pending  []command // the commands of $(...) in the word just read
}

func (p *shellParser) peek(k int) byte {
	if p.i+k < len(p.src) {
		return p.src[p.i+k]
	}
	return 0
}

// list reads commands until the end of the input or, for a command
// substitution (sub), until the parenthesis that closes it.
func (p *shellParser) list(sub bool) []command {
	var cmds []command
	var cur command
	flush := func() {
		if len(cur.words) > 0 || len(cur.in) > 0 || len(cur.refs) > 0 {
			cmds = append(cmds, cur)
		}
		cur = command{}
	}
	depth := 0          // parentheses opened in this list
	var redirect string // the redirection operator before the next word
	for p.i < len(p.src) {
		switch c := p.src[p.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			p.i++
		case c == '\\' && p.peek(1) == '\n':
			p.i += 2
			p.line++
		case c == '\n':
			flush()
			p.i++
			p.line++
		case c == '#':
			for p.i < len(p.src) && p.src[p.i] != '\n' {
				p.i++
			}
		case c == '&' && p.peek(1) == '>':
			p.i += 2
			redirect = ">"
		case c == ';' || c == '&' || c == '|':
			flush()
			p.i++
			if n := p.peek(0); n == c || (c == '|' && n == '&') {
				p.i++
			}
		case c == '(':
			flush()
			p.i++
			depth++
			p.subshell++
			p.open = append(p.open, p.subshell)
		case c == ')':
			flush()
			p.i++
			if depth == 0 {
				if sub {
					return cmds
				}
				continue // unbalanced: ignore it
			}
			depth--
			p.open = p.open[:len(p.open)-1]
		case c == '<' || c == '>':
			start := p.i
			for p.i < len(p.src) && p.i-start < 3 && strings.IndexByte("<>&|", p.src[p.i]) >= 0 {
				p.i++
			}
			redirect = p.src[start:p.i]
		default:
			line := p.line
			w, refs := p.word()
			// A file descriptor before a redirection, as in 2>/dev/null.
			if isDigits(w.raw) && (p.peek(0) == '<' || p.peek(0) == '>') {
				continue
			}
			// A command substitution runs before the command it is in.
			cmds = append(cmds, p.pending...)
			p.pending = nil
			if cur.line == 0 {
				cur.line = line
				cur.scopes = slices.Clone(p.open)
			}
			cur.refs = append(cur.refs, refs...)
			switch redirect {
			case "":
				cur.words = append(cur.words, w)
			case "<":
				cur.in = append(cur.in, w)
			}
			// Other redirections write their word, or (<<<) read it as text.
			redirect = ""
		}
	}
	flush()
	return cmds
}

// word reads one word at p.i and returns it with the variables it expands.
func (p *shellParser) word() (word, []string) {
	var b strings.Builder
	var refs []string
	start := p.i
	double := false // inside "..."
	for p.i < len(p.src) {
		c := p.src[p.i]
		if !double && strings.IndexByte(" \t\r\n;&|()<>", c) >= 0 {
			break
		}
		switch c {
		case '\'':
			if double {
				b.WriteByte(c)
				p.i++
				continue
			}
			end := strings.IndexByte(p.src[p.i+1:], '\'')
			if end < 0 {
				end = len(p.src) - p.i - 1 // unterminated: to the end
			}
			lit := p.src[p.i+1 : p.i+1+end]
			b.WriteString(lit)
			p.line += strings.Count(lit, "\n")
			p.i = min(p.i+end+2, len(p.src))
		case '"':
			double = !double
			p.i++
		case '\\':
			next := p.peek(1)
			switch {
			case next == '\n':
				p.line++
			case double && strings.IndexByte("$`\"\\", next) < 0:
				b.WriteByte('\\') // kept inside "..." before other characters
				p.i++
				continue
			case next != 0:
				b.WriteByte(next)
			}
			p.i += 2
		case '$':
			text, r := p.dollar()
			b.WriteString(text)
			refs = append(refs, r...)
		case '`':
			// The old form of $(...): only the variables it expands are
			// kept, not its commands.
			end := strings.IndexByte(p.src[p.i+1:], '`')
			if end < 0 {
				end = len(p.src) - p.i - 1
			}
			inner := p.src[p.i+1 : p.i+1+end]
			for _, cmd := range parseShell(inner) {
				refs = append(refs, cmd.refs...)
			}
			b.WriteString("`" + inner + "`")
			p.line += strings.Count(inner, "\n")
			p.i = min(p.i+end+2, len(p.src))
		default:
			if c == '\n' {
				p.line++
			}
			b.WriteByte(c)
			p.i++
		}
	}
	return word{text: b.String(), raw: p.src[start:p.i]}, refs
}

var name = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// dollar reads an expansion at p.i (a $) and returns it as written, with the
// variables it expands; the commands of a $(...) go to p.pending. Special
// parameters ($?, $!, $1, ...) name no variable; a $ before anything else is
// a plain character.
func (p *shellParser) dollar() (string, []string) {
	start := p.i
	switch next := p.peek(1); {
	case next == '(':
		// Its commands run in a subshell of their own; the list returned
		// holds those of the substitutions nested in it, before it.
		p.i += 2
		p.subshell++
		p.open = append(p.open, p.subshell)
		p.pending = append(p.pending, p.list(true)...)
		p.open = p.open[:len(p.open)-1]
		return p.src[start:p.i], nil
	case next == '{':
		end := strings.IndexByte(p.src[p.i:], '}')
		if end < 0 {
			end = len(p.src) - p.i - 1
		}
		p.i += end + 1
		n := name.FindString(p.src[start+2 : p.i])
		if n == "" {
			return p.src[start:p.i], nil
		}
		return p.src[start:p.i], []string{n}
	case strings.IndexByte("?!@*#$-0123456789", next) >= 0 && next != 0:
		p.i += 2
		return p.src[start:p.i], nil
	}
	n := name.FindString(p.src[p.i+1:])
	if n == "" {
		p.i++
		return "$", nil
	}
	p.i += 1 + len(n)
	return "$" + n, []string{n}
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// shellText returns the commands of a code block in a form parseShell
// reads, line for line: in a console block only the lines after a "$ "
// prompt (and the lines they continue onto) are commands, the rest is
// output; elsewhere a leading "$ " is dropped.
func shellText(lang, text string) string {
	lines := strings.Split(text, "\n")
	continued := false
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " \t")
		prompt := strings.HasPrefix(trimmed, "$ ")
		switch {
		case continued:
		case prompt:
			lines[i] = trimmed[2:]
		case lang == "console":
			lines[i] = ""
		}
		continued = (continued || prompt || lang != "console") && strings.HasSuffix(line, "\\")
	}
	return strings.Join(lines, "\n")
}

func TestParseShell(t *testing.T) {
	// Each command as "line: words [< in] [$refs] [scopes]".
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{"go run ./cmd/hello", []string{"1: go run ./cmd/hello"}},
		{"a && b; c | d || e & f", []string{"1: a", "1: b", "1: c", "1: d", "1: e", "1: f"}},
		{"go test \\\n  -v ./... # comment $NOPE\n\n# whole line\nls", []string{"1: go test -v ./...", "5: ls"}},
		{`echo "$IMAGE" '$NOT' \$NOT "a\$b" ${ID:-x} $1 $? $! $ x#y`, []string{`1: echo $IMAGE $NOT $NOT a$b ${ID:-x} $1 $? $! $ x#y $IMAGE $ID`}},
		{`POD=$(kubectl get pod -o "{.items[0]}" -l "$SEL") && kubectl exec "$POD" -- ps`, []string{"1: kubectl get pod -o {.items[0]} -l $SEL $SEL [1]", `1: POD=$(kubectl get pod -o "{.items[0]}" -l "$SEL")`, "1: kubectl exec $POD -- ps $POD"}},
		{`X="$(git describe 2>/dev/null || echo "v0 $V")" cmd`, []string{"1: git describe [1]", "1: echo v0 $V $V [1]", `1: X=$(git describe 2>/dev/null || echo "v0 $V") cmd`}},
		{"tar -c $(dirname $(git ls-files '*/go.mod')) | (cd x; tar -x)", []string{"1: git ls-files */go.mod [1 2]", "1: dirname $(git ls-files '*/go.mod') [1]", "1: tar -c $(dirname $(git ls-files '*/go.mod'))", "1: cd x [3]", "1: tar -x [3]"}},
		{"sort < ./in.txt > out.txt 2>&1 <<<\"$T\"", []string{"1: sort < ./in.txt $T"}},
		{"(cd /tmp && ls) | (cd a && ls)\nls", []string{"1: cd /tmp [1]", "1: ls [1]", "1: cd a [2]", "1: ls [2]", "2: ls"}},
		{"sh -c 'multi\nline $X'\nnext", []string{"1: sh -c multi\nline $X", "3: next"}},
		{"for d in a b; do echo \"$d\"; done", []string{"1: for d in a b", "1: do echo $d $d", "1: done"}},
		{"echo `echo $Y` done", []string{"1: echo `echo $Y` done $Y"}},
	} {
		var got []string
		for _, c := range parseShell(tc.src) {
			s := []string{}
			for _, w := range c.words {
				s = append(s, w.text)
			}
			for _, w := range c.in {
				s = append(s, "< "+w.text)
			}
			for _, r := range c.refs {
				s = append(s, "$"+r)
			}
			line := fmt.Sprintf("%d: %s", c.line, strings.Join(s, " "))
			if len(c.scopes) > 0 {
				line += fmt.Sprint(" ", c.scopes)
			}
			got = append(got, line)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("parseShell(%q) =\n%q\nwant\n%q", tc.src, got, tc.want)
		}
	}
}

func TestShellText(t *testing.T) {
	for _, tc := range []struct{ lang, text, want string }{
		{"sh", "$ go run ./x\ngo test \\\n  $ ./...", "go run ./x\ngo test \\\n  $ ./..."},
		{"console", "$ go build \\\n    ./cmd/hello\noutput line\n  $ ls\nmore output", "go build \\\n    ./cmd/hello\n\nls\n"},
	} {
		if got := shellText(tc.lang, tc.text); got != tc.want {
			t.Errorf("shellText(%q, %q) = %q, want %q", tc.lang, tc.text, got, tc.want)
		}
	}
}
