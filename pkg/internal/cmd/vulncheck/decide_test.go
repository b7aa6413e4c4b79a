package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testdata/scan.json is govulncheck v1.9.0's -format json output for this
// module (go1.27.3, vulndb e22db6528018), cut to three entries: x/crypto's
// GO-2026-5932 (module level, fixed), klauspost/compress's GO-2026-6865
// (called, fixed) and echo's GO-2026-6875 (called, no fix, no symbols in
// its OSV entry for v4), each at every level it was reported.
func readScan(t *testing.T) *scan {
	t.Helper()
	f, err := os.Open("testdata/scan.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := parseScan(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseAndFoldRealOutput(t *testing.T) {
	s := readScan(t)
	if s.config.GoVersion != "go1.27.3" || s.config.ScanLevel != "symbol" || s.config.ScannerVersion != "v1.9.0" {
		t.Errorf("config = %+v", s.config)
	}
	if len(s.findings) != 7 {
		t.Errorf("got %d findings, want 7 (osv, progress and SBOM messages are not findings)", len(s.findings))
	}
	got := fold(s.findings)
	want := []vuln{
		{ID: "GO-2026-5932", Module: "golang.org/x/crypto@v0.57.0", Level: levelModule, Fixed: "v0.58.1-0.20261009181718-2f1f834330b2"},
		{ID: "GO-2026-6865", Module: "github.com/klauspost/compress@v1.20.1", Level: levelSymbol, Fixed: "v1.20.2",
			Example: "github.com/klauspost/compress/huff0.Compress1X"},
		{ID: "GO-2026-6875", Module: "github.com/labstack/echo/v4@v4.16.0", Level: levelSymbol,
			Example: "github.com/labstack/echo/v4/middleware.ignorableWriter.Write"},
	}
	if len(got) != len(want) {
		t.Fatalf("fold gave %d vulnerabilities, want %d", len(got), len(want))
	}
	for i := range want {
		if *got[i] != want[i] {
			t.Errorf("vuln %d:\n got %+v\nwant %+v", i, *got[i], want[i])
		}
	}
}

func TestParseScanRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":             "",
		"text output":       "=== Symbol Results ===\n",
		"no config":         `{"finding":{"osv":"GO-2026-6875","trace":[{"module":"github.com/labstack/echo/v4"}]}}`,
		"finding, no trace": `{"config":{"go_version":"go1.27.3"}}{"finding":{"osv":"GO-2026-6875"}}`,
	} {
		if _, err := parseScan(strings.NewReader(in)); err == nil {
			t.Errorf("%s: parseScan accepted it", name)
		}
	}
}

func TestDecide(t *testing.T) {
	vulns := fold(readScan(t).findings)
	yes, no := true, false
	tests := []struct {
		name   string
		review map[string]reviewed
		fail   []string // IDs whose line must fail
		pass   []string // IDs whose line must pass
	}{{
		name: "nothing reviewed: fixed and unfixed all fail",
		fail: []string{"GO-2026-5932", "GO-2026-6865", "GO-2026-6875"},
	}, {
		name:   "a reviewed entry with no fix passes, whether or not it reaches",
		review: map[string]reviewed{"GO-2026-6875": {ID: "GO-2026-6875", Reaches: &no, Why: "x"}},
		fail:   []string{"GO-2026-5932", "GO-2026-6865"},
		pass:   []string{"GO-2026-6875"},
	}, {
		name:   "a review does not excuse a finding that has a fix",
		review: map[string]reviewed{"GO-2026-6865": {ID: "GO-2026-6865", Reaches: &yes, Why: "x"}},
		fail:   []string{"GO-2026-5932", "GO-2026-6865", "GO-2026-6875"},
	}, {
		name:   "a fix for a module that is only required can be held back by a review",
		review: map[string]reviewed{"GO-2026-5932": {ID: "GO-2026-5932", Reaches: &no, Why: "x"}},
		fail:   []string{"GO-2026-6865", "GO-2026-6875"},
		pass:   []string{"GO-2026-5932"},
	}, {
		name: "a review that matches no finding is stale and fails",
		review: map[string]reviewed{
			"GO-2026-6875": {ID: "GO-2026-6875", Reaches: &no, Why: "x"},
			"GO-2026-6872": {ID: "GO-2026-6872", Reaches: &no, Why: "x"},
		},
		fail: []string{"GO-2026-5932", "GO-2026-6865", "GO-2026-6872"},
		pass: []string{"GO-2026-6875"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := decide(vulns, tt.review)
			if n := len(tt.fail) + len(tt.pass); len(lines) != n {
				t.Errorf("%d lines, want %d:\n%s", len(lines), n, format(lines))
			}
			for _, l := range lines {
				switch {
				case slices.Contains(tt.fail, l.ID) && !l.Fail:
					t.Errorf("%s passed, want it to fail: %s", l.ID, l.Verdict)
				case slices.Contains(tt.pass, l.ID) && l.Fail:
					t.Errorf("%s failed, want it to pass: %s", l.ID, l.Verdict)
				}
			}
		})
	}
}

func TestParseReviewed(t *testing.T) {
	for name, in := range map[string]string{
		"misspelt key":  "reviewed:\n- id: GO-1\n  module: m\n  reaches: false\n  wyh: x\n",
		"no why":        "reviewed:\n- id: GO-1\n  module: m\n  reaches: false\n",
		"blank why":     "reviewed:\n- id: GO-1\n  module: m\n  reaches: false\n  why: '  '\n",
		"no reaches":    "reviewed:\n- id: GO-1\n  module: m\n  why: x\n",
		"no id":         "reviewed:\n- module: m\n  reaches: false\n  why: x\n",
		"no module":     "reviewed:\n- id: GO-1\n  reaches: false\n  why: x\n",
		"listed twice":  "reviewed:\n- {id: GO-1, module: m, reaches: false, why: x}\n- {id: GO-1, module: m, reaches: true, why: y}\n",
		"not a mapping": "- id: GO-1\n",
	} {
		if _, err := parseReviewed([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r, err := parseReviewed([]byte("reviewed:\n- {id: GO-1, module: m, reaches: false, why: x}\n"))
	if err != nil || len(r) != 1 || *r["GO-1"].Reaches {
		t.Errorf("valid file: %v, %+v", err, r)
	}
}

// The repository's own review file must parse, or CI's scan fails before
// it starts. It is found as run finds it, so the test does not depend on
// how deep this package sits.
func TestRepositoryReviewFile(t *testing.T) {
	root, err := moduleRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r, err := readReviewed(filepath.Join(root, ".govulncheck.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for id, e := range r {
		if !strings.HasPrefix(id, "GO-") {
			t.Errorf("%s: not a Go vulnerability ID", id)
		}
		if len(e.Why) < 80 {
			t.Errorf("%s: why is %d characters; say which symbols the advisory is about and whether this module calls them", id, len(e.Why))
		}
	}
}
