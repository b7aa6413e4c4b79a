package doccheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The rules on small samples, against this repository for paths, packages,
// tools and settings (files that are not docs, so that rewriting the docs
// does not change these tests), and against a made-up one for links.

// want is one expected finding: its rule, line and a part of its message.
type want struct {
	rule string
	line int
	msg  string
}

func checkSample(t *testing.T, c *checker, name, text string, wants []want) {
	t.Helper()
	got := c.checkDoc(name, text)
	for _, w := range wants {
		found := false
		for i, f := range got {
			if f.rule == w.rule && f.line == w.line && strings.Contains(f.msg, w.msg) {
				got = append(got[:i], got[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no %s finding at line %d with %q", w.rule, w.line, w.msg)
		}
	}
	for _, f := range got {
		t.Errorf("unexpected finding: [%s] %s", f.rule, f)
	}
}

func TestShellRulesPass(t *testing.T) {
	c := newChecker(t)
	doc := "# Sample\n\n```sh\n" + `go run ./cmd/hello --help
KO_DOCKER_REPO=ko.local go tool ko build -B ./cmd/hello   # a comment with $NOT_CHECKED and ./nosuch
go test -count=1 -run TestX ./pkg/... ./cmd/hello
go test ./pkg/server -run XXX -bench . -benchmem
go vet -tags figures ./pkg/internal/e2e && go build -o /tmp/hello ./cmd/hello
go tool pprof http://localhost:9090/debug/pprof/heap
go run golang.org/x/tools/cmd/gonew@v0.47.0 example.com/a example.com/b
PORT=8080 METRICS_ADDR=127.0.0.1:9090 /tmp/hello >out.txt 2>&1 &
export IMAGE=ghcr.io/you/hello@sha256:x KO_DEFAULTBASEIMAGE=mirror/base
cosign verify "$IMAGE" --certificate-identity "${IMAGE}"
POD=$(kubectl -n hello get pod -o jsonpath='{.items[0].metadata.name}')
kubectl -n hello exec "$POD" -- sh -c 'echo $INSIDE_THE_POD'
kubectl -n hello set env deployment/hello PPROF=true LOG_LEVEL-
docker run --rm -e PORT=9000 --env=LOG_FORMAT=text -e SHUTDOWN_TIMEOUT ko.local/hello
(cd config/monitoring/prometheus && promtool check rules rules.yml)
(cd /tmp && ls ./anything)
ls ./go.mod config/ .ko.yaml pkg/config/config.go < go.sum
HELLO_FIGURES_DIR=$PWD/pkg/internal/e2e go test -tags figures ./pkg/internal/e2e
for d in /tmp/a /tmp/b; do echo "$d" "$HOME"; done
sudo -E go test -run TestNode ./pkg/internal/e2e
` + "```\n\n" +
		"Prose: `go run ./cmd/hello`, `cmd/hello`, `./api` and `api/cmd/hello` and `pkg/server`'s,\n" +
		"`GOOS=linux go vet ./...` and `$IMAGE` alone.\n\n" +
		"```\nplain output ./nosuch\n```\n\n```console\n$ go run ./cmd/hello\n./nosuch is output\n```\n"
	checkSample(t, c, "docs/sample.md", doc, nil)
}

func TestShellRulesFail(t *testing.T) {
	c := newChecker(t)
	doc := "# Sample\n\n```sh\n" + `go run ./pkg/internal/vulncheck
go run ./pkg/config
go build ./pkg/internal/doccheck/testdata/testonly
go test ./nosuch/...
go tool nosuchtool
cosign verify "$IMAGE"
IMAGE=x
cosign verify "$IMAGE"
NOSUCH_SETTING=1 go run ./cmd/hello
docker run -e NOSUCH_DOCKER=1 ko.local/hello
kubectl set env deployment/hello NOSUCH_KUBECTL-
export NOSUCH_EXPORT=1
ls ./nosuch.txt config/nosuch.yaml
HELLO_NOSUCH_CACHE=/tmp go test ./cmd/hello
(cd config && ls ./deployment.yaml) && ls ./deployment.yaml
cd config && ls ./deployment.yaml ./nosuch.yaml
ls ../../outside
` + "```\n\n" +
		"Prose: `go run ./pkg/internal/vulncheck` and `cmd/hellobench/bareecho`\n" +
		"and `GODEBUG=inittrace=1 ./hello`.\n\n" +
		"```\ngo test ./...\n```\n\n```console\n$ go run \\\n  ./nosuch\noutput\n```\n"
	checkSample(t, c, "docs/sample.md", doc, []want{
		{ruleGo, 4, "go run ./pkg/internal/vulncheck: stat pkg/internal/vulncheck: directory not found"},
		{ruleGo, 5, "not a command"},
		{ruleGo, 6, "has only test files"},
		{ruleGo, 7, "go test ./nosuch/...: pattern ./nosuch/..."},
		{ruleGo, 8, "go tool nosuchtool: neither a tool directive"},
		{ruleEnv, 9, "$IMAGE is expanded but not set before it"},
		{ruleEnv, 12, "NOSUCH_SETTING is neither a setting"},
		{ruleEnv, 13, "NOSUCH_DOCKER is neither"},
		{ruleEnv, 14, "NOSUCH_KUBECTL is neither"},
		{ruleEnv, 15, "NOSUCH_EXPORT is neither"},
		{rulePaths, 16, "./nosuch.txt does not exist in the repository"},
		{rulePaths, 16, "config/nosuch.yaml does not exist"},
		{ruleEnv, 17, "HELLO_NOSUCH_CACHE is neither"},
		{rulePaths, 18, "./deployment.yaml does not exist in the repository (commands run from its root)"},
		{rulePaths, 19, "./nosuch.yaml does not exist in config (where the cd before it went)"},
		{rulePaths, 20, "../../outside is outside the repository"},
		{ruleGo, 23, "`go run ./pkg/internal/vulncheck`: go run ./pkg/internal/vulncheck: stat"},
		{ruleProse, 23, "`cmd/hellobench/bareecho`: cmd/hellobench/bareecho does not exist"},
		{rulePaths, 24, "./hello does not exist"},
		{ruleBlocks, 26, `starts with the command "go test ./..."`},
		{ruleGo, 31, "go run ./nosuch: stat nosuch: directory not found"},
	})
}

func TestLinkRule(t *testing.T) {
	root := t.TempDir()
	for name, text := range map[string]string{
		"README.md":        "# Hello\n\n## Run it\n\n```sh\n# not a heading\n```\n",
		"docs/other.md":    "# Other\n\n## How `config/` is tested\n\n## Usage\n\n## Usage\n",
		"docs/img/x.svg":   "<svg/>",
		"pkg/a/a.go":       "package a\n",
		"pkg/a/has space":  "",
		"docs/unlinked.md": "",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &checker{root: root}
	doc := "# Sample doc\n\n" +
		"[readme](../README.md#run-it), [other](other.md#how-config-is-tested), [again](other.md#usage-1), ![img](img/x.svg),\n" +
		"[dir](../pkg/a) [dir/](../pkg/a/) [code](../pkg/a/a.go#L1) [root-relative](/pkg/a/a.go) [escaped](../pkg/a/has%20space)\n" +
		"[self](#sample-doc) [web](https://example.com/nosuch.md) [mail](mailto:a@example.com) `[code](nosuch.md)`\n" +
		"[missing](nosuch.md) [bad anchor](other.md#usage-2) [bad self](#nosuch)\n" +
		"[out](../../outside.md) [rooted](/docs/nosuch)\n" +
		"[ref]: ../README.md#no-such-heading\n" +
		"```sh\n[in code](nosuch.md)\n```\n"
	checkSample(t, c, "docs/sample.md", doc, []want{
		{ruleLinks, 6, `link "nosuch.md": docs/nosuch.md does not exist`},
		{ruleLinks, 6, `link "other.md#usage-2": docs/other.md has no heading with the anchor #usage-2`},
		{ruleLinks, 6, `link "#nosuch": docs/sample.md has no heading with the anchor #nosuch`},
		{ruleLinks, 7, `link "../../outside.md": points outside the repository`},
		{ruleLinks, 7, `link "/docs/nosuch": docs/nosuch does not exist`},
		{ruleLinks, 8, `README.md has no heading with the anchor #no-such-heading`},
	})
}
