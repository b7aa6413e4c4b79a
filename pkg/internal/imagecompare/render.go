package imagecompare

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
)

// Report is the whole comparison, as the JSON output shows it.
type Report struct {
	Images  []*Facts `json:"images"`
	Verdict Verdict  `json:"verdict"`
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// MB renders bytes as decimal megabytes, the unit `docker image ls` uses.
func MB(b int64) string {
	return fmt.Sprintf("%.2f MB", float64(b)/1e6)
}

// WriteMarkdown writes the side-by-side table, the verdict and the Mermaid size chart.
func WriteMarkdown(w io.Writer, r Report) error {
	var b strings.Builder
	b.WriteString("| |")
	for _, f := range r.Images {
		fmt.Fprintf(&b, " %s |", cell(f.Name))
	}
	b.WriteString("\n|---|")
	for range r.Images {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	row := func(label string, val func(*Facts) string) {
		fmt.Fprintf(&b, "| %s |", label)
		for _, f := range r.Images {
			fmt.Fprintf(&b, " %s |", cell(val(f)))
		}
		b.WriteString("\n")
	}
	row("source", func(f *Facts) string { return string(f.Kind) })
	row("digest", func(f *Facts) string { return short(f.Digest) })
	row("platform", func(f *Facts) string { return f.Platform })
	row("compressed size", func(f *Facts) string {
		if f.CompressedNote != "" && f.CompressedNote != "as stored" {
			return MB(f.CompressedBytes) + " (" + f.CompressedNote + ")"
		}
		return MB(f.CompressedBytes)
	})
	if len(r.Images) > 0 && r.Images[0].GzipLevel != 0 {
		row(fmt.Sprintf("layers re-gzipped at level %d", r.Images[0].GzipLevel), func(f *Facts) string { return MB(f.GzipBytes) })
	}
	row("uncompressed size", func(f *Facts) string { return MB(f.UncompressedBytes) })
	row("layers", func(f *Facts) string { return fmt.Sprint(f.Layers) })
	row("base", func(f *Facts) string {
		if f.Base.Identity() == "" {
			return "unknown: " + f.Base.Note
		}
		s := short(f.Base.Identity())
		if f.Base.LayersVerified {
			s += " (layers verified)"
		} else if f.Base.Note != "" {
			s += " (" + f.Base.Note + ")"
		}
		return s
	})
	row("user", func(f *Facts) string {
		if f.UserResolved != "" && f.UserResolved != f.User {
			return orNone(f.User) + " (" + f.UserResolved + ")"
		}
		return orNone(f.User)
	})
	row("entrypoint", func(f *Facts) string { return orNone(strings.Join(f.Entrypoint, " ")) })
	row("cmd", func(f *Facts) string { return orNone(strings.Join(f.Cmd, " ")) })
	row("env", func(f *Facts) string { return orNone(strings.Join(f.Env, " ")) })
	row("workdir", func(f *Facts) string { return orNone(f.WorkingDir) })
	row("exposed ports", func(f *Facts) string { return orNone(strings.Join(f.ExposedPorts, " ")) })
	row("labels", func(f *Facts) string {
		keys := make([]string, 0, len(f.Labels))
		for k := range f.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + f.Labels[k]
		}
		return orNone(strings.Join(keys, " "))
	})
	row("files", func(f *Facts) string { return fmt.Sprint(f.Files) })
	row("shell present", func(f *Facts) string {
		if len(f.Shells) == 0 {
			return "no"
		}
		return "yes: " + strings.Join(f.Shells, " ")
	})
	row("setuid/setgid files", func(f *Facts) string {
		if len(f.Setuid) == 0 {
			return "none"
		}
		return fmt.Sprintf("%d: %s", len(f.Setuid), strings.Join(f.Setuid, " "))
	})
	row("entrypoint binary", func(f *Facts) string { return f.EntrypointPath })
	row("binary sha256", func(f *Facts) string { return orNone(short(f.EntrypointSHA256)) })
	row("Go toolchain", func(f *Facts) string {
		for _, kv := range f.GoBuild {
			if v, ok := strings.CutPrefix(kv, "go="); ok {
				return v
			}
		}
		return "(not a Go binary)"
	})
	row("SBOM", func(f *Facts) string { return f.SBOM })

	b.WriteString("\n")
	switch {
	case len(r.Verdict.Outcomes) > 1:
		// Several images: one verdict each, against the first.
		fmt.Fprintf(&b, "**Verdict** (runtime contract: binary bytes, user, entrypoint, env, workdir, ports, base; each against %s):\n\n", r.Images[0].Name)
		for _, o := range r.Verdict.Outcomes {
			if o.SameOutcome {
				fmt.Fprintf(&b, "- %s: **same outcome**\n", o.Name)
				continue
			}
			fmt.Fprintf(&b, "- %s: **different outcome**\n", o.Name)
			for _, d := range o.Differences {
				fmt.Fprintf(&b, "  - %s\n", d)
			}
		}
	case r.Verdict.SameOutcome:
		b.WriteString("**Verdict: same outcome** (binary bytes, user, entrypoint, env, workdir, ports and base agree)\n")
	default:
		b.WriteString("**Verdict: different outcome**\n\n")
		for _, d := range r.Verdict.Differences {
			fmt.Fprintf(&b, "- %s\n", d)
		}
	}
	b.WriteString("\n")
	b.WriteString(Mermaid(r.Images))
	_, err := io.WriteString(w, b.String())
	return err
}

// short keeps digests readable in a table: the algorithm and 12 hex digits are unique enough for a human.
func short(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 && !strings.Contains(hex, " ") {
		return alg + ":" + hex[:12]
	}
	return d
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Mermaid renders compressed sizes as an xychart-beta bar chart, which GitHub draws.
func Mermaid(images []*Facts) string {
	var names, vals []string
	var largest float64
	for _, f := range images {
		names = append(names, fmt.Sprintf("%q", strings.ReplaceAll(f.Name, `"`, "'")))
		mb := float64(f.CompressedBytes) / 1e6
		largest = math.Max(largest, mb)
		vals = append(vals, fmt.Sprintf("%.2f", mb))
	}
	top := niceCeil(largest)
	return fmt.Sprintf("```mermaid\nxychart-beta\n    title \"Compressed image size (MB)\"\n    x-axis [%s]\n    y-axis \"MB\" 0 --> %s\n    bar [%s]\n```\n",
		strings.Join(names, ", "), trimFloat(top), strings.Join(vals, ", "))
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}

// WriteSVG draws compressed and uncompressed size per image as horizontal bars, with the values written out so
// the small images stay readable next to a large one.
func WriteSVG(w io.Writer, images []*Facts) error {
	const (
		width, labelW, barMax, rowH, top = 760, 150, 440, 46, 40
	)
	var largest int64 = 1
	for _, f := range images {
		largest = maxInt(largest, maxInt(f.CompressedBytes, f.UncompressedBytes))
	}
	height := top + rowH*len(images) + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15" font-weight="bold">Image size (MB): compressed (dark) and uncompressed (light)</text>`+"\n")
	for i, f := range images {
		y := top + i*rowH
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`+"\n", y+22, html.EscapeString(f.Name))
		for j, v := range []int64{f.CompressedBytes, f.UncompressedBytes} {
			color := []string{"#1f6feb", "#9ecbff"}[j]
			bw := int(math.Max(1, float64(v)/float64(largest)*barMax))
			by := y + 6 + j*18
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="15" fill="%s"/>`+"\n", labelW, by, bw, color)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", labelW+bw+6, by+12, MB(v))
		}
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" font-size="11" fill="#555">Generated by pkg/internal/cmd/imagecompare</text>`+"\n", height-10)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
