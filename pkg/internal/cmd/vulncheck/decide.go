package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// message is one value of govulncheck's -format json stream (protocol
// v1.0.0, golang.org/x/vuln/internal/govulncheck); only the fields the
// decision reads.
type message struct {
	Config  *scanConfig `json:"config,omitempty"`
	Finding *finding    `json:"finding,omitempty"`
}

type scanConfig struct {
	ProtocolVersion string `json:"protocol_version"`
	ScannerVersion  string `json:"scanner_version"`
	DB              string `json:"db"`
	GoVersion       string `json:"go_version"`
	ScanLevel       string `json:"scan_level"`
}

type finding struct {
	OSV          string   `json:"osv"`
	FixedVersion string   `json:"fixed_version"`
	Trace        []*frame `json:"trace"`
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
}

// scan is what one govulncheck run reported.
type scan struct {
	config   scanConfig
	findings []*finding
}

// parseScan reads govulncheck's JSON stream: a sequence of objects, not an
// array, so it is decoded value by value.
func parseScan(r io.Reader) (*scan, error) {
	dec := json.NewDecoder(r)
	s := &scan{}
	sawConfig := false
	for {
		var m message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read govulncheck output: %w", err)
		}
		if m.Config != nil {
			s.config, sawConfig = *m.Config, true
		}
		if m.Finding != nil {
			if m.Finding.OSV == "" || len(m.Finding.Trace) == 0 {
				return nil, fmt.Errorf("read govulncheck output: finding without an OSV ID or trace")
			}
			s.findings = append(s.findings, m.Finding)
		}
	}
	if !sawConfig {
		return nil, errors.New("read govulncheck output: no config message (is it the -format json stream?)")
	}
	return s, nil
}

// Levels at which govulncheck places a finding, from the least to the most
// precise: the module is required, a vulnerable package is imported, a
// vulnerable symbol is called. An OSV entry that lists no symbols (echo v4's
// GO-2026-6872 and GO-2026-6875) counts every symbol of the module, so it
// shows at the symbol level as soon as anything of the module is called.
const (
	levelModule  = "module"
	levelPackage = "package"
	levelSymbol  = "symbol"
)

func levelOf(f *finding) string {
	switch t := f.Trace[0]; {
	case t.Function != "":
		return levelSymbol
	case t.Package != "":
		return levelPackage
	default:
		return levelModule
	}
}

func rank(level string) int {
	return slices.Index([]string{levelModule, levelPackage, levelSymbol}, level)
}

// vuln is every finding of one OSV entry, folded together.
type vuln struct {
	ID      string
	Module  string // module@version it was found in
	Level   string // the most precise level of any of its findings
	Fixed   string // the version that fixes it, "" if none
	Example string // the symbol or package a trace reaches, for the report
}

// fold groups findings by OSV ID, in ID order.
func fold(findings []*finding) []*vuln {
	byID := map[string]*vuln{}
	for _, f := range findings {
		t := f.Trace[0]
		v := byID[f.OSV]
		if v == nil {
			v = &vuln{ID: f.OSV, Module: t.Module + "@" + t.Version, Level: levelModule}
			byID[f.OSV] = v
		}
		if f.FixedVersion != "" {
			v.Fixed = f.FixedVersion
		}
		if l := levelOf(f); rank(l) > rank(v.Level) || v.Example == "" && l != levelModule {
			v.Level = l
			v.Example = t.Package
			if t.Function != "" {
				fn := t.Function
				if t.Receiver != "" {
					fn = strings.TrimPrefix(t.Receiver, "*") + "." + fn
				}
				v.Example = t.Package + "." + fn
			}
		}
	}
	out := make([]*vuln, 0, len(byID))
	for _, v := range byID {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *vuln) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// reviewed is one entry of .govulncheck.yaml: a vulnerability that someone
// has read and judged against this service.
type reviewed struct {
	ID      string `json:"id"`
	Module  string `json:"module"`
	Reaches *bool  `json:"reaches"`
	Why     string `json:"why"`
}

type reviewFile struct {
	Reviewed []reviewed `json:"reviewed"`
}

// parseReviewed reads .govulncheck.yaml strictly: a misspelt key must not
// quietly drop a review.
func parseReviewed(b []byte) (map[string]reviewed, error) {
	var f reviewFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, fmt.Errorf("parse reviewed findings: %w", err)
	}
	out := map[string]reviewed{}
	for i, r := range f.Reviewed {
		switch {
		case r.ID == "":
			return nil, fmt.Errorf("reviewed finding #%d: no id", i+1)
		case r.Module == "":
			return nil, fmt.Errorf("reviewed finding %s: no module", r.ID)
		case r.Reaches == nil:
			return nil, fmt.Errorf("reviewed finding %s: say whether it reaches the service (reaches: true or false)", r.ID)
		case strings.TrimSpace(r.Why) == "":
			return nil, fmt.Errorf("reviewed finding %s: no why", r.ID)
		}
		if _, dup := out[r.ID]; dup {
			return nil, fmt.Errorf("reviewed finding %s: listed twice", r.ID)
		}
		out[r.ID] = r
	}
	return out, nil
}

// Verdicts for one vulnerability.
const (
	verdictFixable  = "FAIL fixed in %s: upgrade"
	verdictUnlisted = "FAIL no fix and not reviewed: add it to .govulncheck.yaml with why it does or does not reach the service"
	verdictReviewed = "ok   no fix; reviewed: reaches the service: %t"
	verdictHeld     = "ok   fixed in %s, only required, never imported; reviewed: upgrade held back"
	verdictStale    = "FAIL listed in .govulncheck.yaml but no longer found: remove the entry"
)

// line is one row of the report.
type line struct {
	ID, Module, Level, Verdict string
	Example                    string // what a trace reaches, "" at module level
	Fail                       bool
}

// decide judges every vulnerability of a scan. A fix for a package the
// module imports always fails: upgrading costs a go get. A fix for a module
// that is only required fails too, unless reviewed: a fix can be the removal
// of a package some tool's dependency still imports (x/crypto dropped
// openpgp, which ko needs through cosign), and then the review says why the
// upgrade is held back. Without a fix, only a reviewed entry lets a finding
// pass; a reviewed entry that matches nothing fails, so the file never keeps
// reasons for code that is gone.
func decide(vulns []*vuln, review map[string]reviewed) []line {
	var out []line
	for _, v := range vulns {
		l := line{ID: v.ID, Module: v.Module, Level: v.Level, Example: v.Example}
		r, listed := review[v.ID]
		switch {
		case v.Fixed != "" && listed && v.Level == levelModule:
			l.Verdict = fmt.Sprintf(verdictHeld, v.Fixed)
		case v.Fixed != "":
			l.Verdict, l.Fail = fmt.Sprintf(verdictFixable, v.Fixed), true
		case !listed:
			l.Verdict, l.Fail = verdictUnlisted, true
		default:
			l.Verdict = fmt.Sprintf(verdictReviewed, *r.Reaches)
		}
		out = append(out, l)
	}
	var stale []string
	for id := range review {
		if !slices.ContainsFunc(vulns, func(v *vuln) bool { return v.ID == id }) {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	for _, id := range stale {
		out = append(out, line{ID: id, Module: review[id].Module, Level: "-", Verdict: verdictStale, Fail: true})
	}
	return out
}

// format renders the report as aligned columns.
func format(lines []line) string {
	var b bytes.Buffer
	for _, l := range lines {
		fmt.Fprintf(&b, "%-14s %-48s %-8s %s\n", l.ID, l.Module, l.Level, l.Verdict)
		if l.Example != "" {
			fmt.Fprintf(&b, "%14s e.g. %s\n", "", l.Example)
		}
	}
	return b.String()
}
