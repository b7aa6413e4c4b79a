package doccheck

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// This file reads Markdown the way GitHub renders it, as far as the checks
// need: fenced code blocks, code spans, links and headings.

// A block is a fenced code block.
type block struct {
	lang string // the first word of the info string, lowercase: "sh", "yaml", "" when untagged
	line int    // line of the opening fence
	text string // the lines between the fences
}

// fence matches an opening or closing fence: up to any indentation (fences
// inside list items are indented), three or more backticks or tildes, and
// the info string.
var fence = regexp.MustCompile("^[ \t]*(```+|~~~+)[ \t]*([^`]*)$")

// splitFences returns the fenced code blocks of a Markdown text, and the
// text with every line of those blocks, fences included, emptied, so that
// offsets into it still give the original line numbers.
func splitFences(text string) (blocks []block, prose string) {
	lines := strings.Split(text, "\n")
	var open *block // the block being read, nil outside one
	var marker string
	var body []string
	for i, line := range lines {
		m := fence.FindStringSubmatch(line)
		switch {
		case open == nil && m != nil:
			marker = m[1]
			lang, _, _ := strings.Cut(strings.TrimSpace(m[2]), " ")
			open = &block{lang: strings.ToLower(lang), line: i + 1}
			body = nil
			lines[i] = ""
		case open != nil && m != nil && m[1][0] == marker[0] && len(m[1]) >= len(marker) && strings.TrimSpace(m[2]) == "":
			open.text = strings.Join(body, "\n")
			blocks = append(blocks, *open)
			open = nil
			lines[i] = ""
		case open != nil:
			body = append(body, line)
			lines[i] = ""
		}
	}
	if open != nil { // unclosed: CommonMark runs it to the end of the file
		open.text = strings.Join(body, "\n")
		blocks = append(blocks, *open)
	}
	return blocks, strings.Join(lines, "\n")
}

// A span is a code span (`...`) of the prose.
type span struct {
	line int    // line where it starts
	text string // its content, line breaks turned into spaces
}

// codeSpans returns the code spans of prose (text outside fenced blocks),
// and prose with each span blanked out (newlines kept), so that links and
// headings are not looked for inside code. A span closes at the next run of
// as many backticks, within its paragraph; a run with no partner is text.
func codeSpans(prose string) (spans []span, rest string) {
	out := []byte(prose)
	for i := 0; i < len(prose); {
		if prose[i] != '`' {
			i++
			continue
		}
		n := 1
		for i+n < len(prose) && prose[i+n] == '`' {
			n++
		}
		paragraph := len(prose)
		if p := strings.Index(prose[i+n:], "\n\n"); p >= 0 {
			paragraph = i + n + p
		}
		// The span ends at the next run of exactly n backticks.
		end := -1
		for j := i + n; j < paragraph && end < 0; {
			if prose[j] != '`' {
				j++
				continue
			}
			run := j
			for j < paragraph && prose[j] == '`' {
				j++
			}
			if j-run == n {
				end = run
			}
		}
		if end < 0 {
			i += n
			continue
		}
		content := strings.ReplaceAll(prose[i+n:end], "\n", " ")
		// CommonMark strips one space from each side when both are there,
		// so that `` `x` `` can show a backtick.
		if len(content) >= 2 && content[0] == ' ' && content[len(content)-1] == ' ' && strings.Trim(content, " ") != "" {
			content = content[1 : len(content)-1]
		}
		spans = append(spans, span{line: 1 + strings.Count(prose[:i], "\n"), text: content})
		for j := i; j < end+n; j++ {
			if out[j] != '\n' {
				out[j] = ' '
			}
		}
		i = end + n
	}
	return spans, string(out)
}

// A link is the destination of a Markdown link, image or link reference
// definition.
type link struct {
	line int
	dest string
}

var (
	// inlineLink matches [text](dest) and ![alt](dest), with an optional
	// title; the text may hold one level of brackets.
	inlineLink = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	// refDefinition matches "[label]: dest" at the start of a line.
	refDefinition = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:[ \t]*(<[^>]*>|\S+)`)
)

// links returns the link destinations in rest, the prose with code spans
// blanked out (codeSpans).
func links(rest string) []link {
	var out []link
	for _, re := range []*regexp.Regexp{inlineLink, refDefinition} {
		for _, m := range re.FindAllStringSubmatchIndex(rest, -1) {
			dest := strings.TrimSuffix(strings.TrimPrefix(rest[m[2]:m[3]], "<"), ">")
			out = append(out, link{line: 1 + strings.Count(rest[:m[0]], "\n"), dest: dest})
		}
	}
	slices.SortStableFunc(out, func(a, b link) int { return a.line - b.line })
	return out
}

var atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)

// anchors returns the anchors GitHub gives the headings of prose (text
// outside fenced blocks): each heading's slug, and for a slug seen before,
// the slug with -1, -2, ... appended, as GitHub numbers repeated headings.
func anchors(prose string) map[string]bool {
	seen := map[string]bool{}
	for _, line := range strings.Split(prose, "\n") {
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := slug(m[1])
		for n := 1; seen[s]; n++ {
			s = slug(m[1]) + "-" + strconv.Itoa(n)
		}
		seen[s] = true
	}
	return seen
}

var (
	mdLink  = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag = regexp.MustCompile(`<[^>]+>`)
)

// slug is GitHub's anchor for a heading: the heading's rendered text (code
// spans and links reduced to their text, HTML tags dropped), lowercased,
// with every character that is not a letter, digit, mark, hyphen, underscore
// or space removed and each space turned into a hyphen.
func slug(heading string) string {
	text := mdLink.ReplaceAllString(heading, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"How `config/` is tested":                     "how-config-is-tested",
		"Debug a shell-less Pod":                      "debug-a-shell-less-pod",
		"Scraping and SLOs: config/monitoring":        "scraping-and-slos-configmonitoring",
		"Who can reach /metrics and /version":         "who-can-reach-metrics-and-version",
		"What v4's end of support means":              "what-v4s-end-of-support-means",
		"`Dockerfile.reference` and ko, side by side": "dockerfilereference-and-ko-side-by-side",
		"Go 1.26 → 1.27":                              "go-126--127",
		"snake_case and UPPER":                        "snake_case-and-upper",
		"See [the docs](docs/x.md) <em>now</em>":      "see-the-docs-now",
		"Ünïcode Straße":                              "ünïcode-straße",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestAnchors(t *testing.T) {
	_, prose := splitFences("# Title\n\n## Usage\n\n```sh\n# not a heading\n```\n\n## Usage ##\n\n#no-space is text\n   ### Indented three\n")
	got := anchors(prose)
	want := map[string]bool{"title": true, "usage": true, "usage-1": true, "indented-three": true}
	if !equalSets(got, want) {
		t.Errorf("anchors = %v, want %v", keys(got), keys(want))
	}
}

func TestSplitFences(t *testing.T) {
	text := "intro\n```sh\ngo run ./cmd/hello\n```\n\n- item\n\n  ~~~~ Console extra\n  $ ls\n  ```\n  ~~~~\nafter\n```\nuntagged\n```\n```yaml\nunclosed: true"
	blocks, prose := splitFences(text)
	want := []block{
		{lang: "sh", line: 2, text: "go run ./cmd/hello"},
		{lang: "console", line: 8, text: "  $ ls\n  ```"},
		{lang: "", line: 13, text: "untagged"},
		{lang: "yaml", line: 16, text: "unclosed: true"},
	}
	if !slices.Equal(blocks, want) {
		t.Errorf("blocks = %+v\nwant %+v", blocks, want)
	}
	if strings.Count(prose, "\n") != strings.Count(text, "\n") || !strings.HasPrefix(prose, "intro\n\n") || !strings.Contains(prose, "\nafter\n") || strings.Contains(prose, "go run") {
		t.Errorf("prose = %q: want the text with the blocks' lines emptied", prose)
	}
}

func TestCodeSpans(t *testing.T) {
	for _, tc := range []struct {
		prose string
		want  []span
		rest  string
	}{
		{"run `go test ./...` now", []span{{1, "go test ./..."}}, "run " + blank(15) + " now"},
		{"a\n`go run\n./cmd/hello` b", []span{{2, "go run ./cmd/hello"}}, "a\n" + blank(7) + "\n" + blank(12) + " b"},
		{"``a `tick` b`` and `c`", []span{{1, "a `tick` b"}, {1, "c"}}, blank(14) + " and " + blank(3)},
		{"`` ` `` x", []span{{1, "`"}}, blank(7) + " x"},
		{"no `close\n\nhere` x", nil, "no `close\n\nhere` x"},
		{"``one` x", nil, "``one` x"},
	} {
		spans, rest := codeSpans(tc.prose)
		if !slices.Equal(spans, tc.want) || rest != tc.rest {
			t.Errorf("codeSpans(%q) = %+v, %q\nwant %+v, %q", tc.prose, spans, rest, tc.want, tc.rest)
		}
	}
}

func TestLinks(t *testing.T) {
	text := "See [the docs](docs/a.md#top) and ![chart](images/x.svg \"title\").\n" +
		"Code `[not](a.md)` is not a link; [external](https://x.example/a.md).\n" +
		"```md\n[in a block](b.md)\n```\n" +
		"[`Dockerfile.reference`](<Dockerfile.reference>) and\n[a [nested] text](c.md)\n" +
		"[ref]: ../d.md\n"
	_, prose := splitFences(text)
	_, rest := codeSpans(prose)
	want := []link{{1, "docs/a.md#top"}, {1, "images/x.svg"}, {2, "https://x.example/a.md"}, {6, "Dockerfile.reference"}, {7, "c.md"}, {8, "../d.md"}}
	if got := links(rest); !slices.Equal(got, want) {
		t.Errorf("links = %+v\nwant %+v", got, want)
	}
}

// blank is n spaces: a code span's length blanked out.
func blank(n int) string { return strings.Repeat(" ", n) }

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
