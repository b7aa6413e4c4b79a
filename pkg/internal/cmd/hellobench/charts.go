package main

import (
	"bufio"
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Group names for the standard library, split where the bytes go, and for
// what the symbol table cannot attribute.
const (
	groupRuntime = "std: runtime"
	groupNet     = "std: net, net/http"
	groupCrypto  = "std: crypto, TLS, x509"
	groupStd     = "std: everything else"
	groupHello   = "github.com/kobuilt/hello"
	groupSmall   = "modules under 20 KB each"
	groupOther   = "unattributed: pclntab, type data, headers"
)

// moduleSize is how many bytes of a stripped binary one group accounts for.
type moduleSize struct {
	group string
	bytes map[*server]int64
}

// moduleSizes attributes the bytes of each server's stripped binary to the
// module (or standard-library area) of each symbol. go tool nm needs the
// symbol table, so each server is built again without -s -w; stripping only
// drops the symbol table and DWARF, so code and data sizes are the same.
func moduleSizes(dir string, servers []*server) ([]moduleSize, error) {
	totals := map[string]map[*server]int64{}
	add := func(g string, s *server, n int64) {
		if totals[g] == nil {
			totals[g] = map[*server]int64{}
		}
		totals[g][s] += n
	}
	for _, s := range servers {
		pkgs, err := packageGroups(s.pkg)
		if err != nil {
			return nil, err
		}
		bin := filepath.Join(dir, s.name+".sym")
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, s.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %w\n%s", s.pkg, err, b)
		}
		nm, err := exec.Command("go", "tool", "nm", "-size", bin).Output()
		if err != nil {
			return nil, fmt.Errorf("go tool nm %s: %w", bin, err)
		}
		var attributed int64
		sc := bufio.NewScanner(bytes.NewReader(nm))
		for sc.Scan() {
			// address size type name
			f := strings.Fields(sc.Text())
			if len(f) < 4 || !strings.ContainsAny(f[2], "TtRrDd") { // B, b: bss takes no file bytes
				continue
			}
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("go tool nm: %q: %w", sc.Text(), err)
			}
			if g := symbolGroup(strings.Join(f[3:], " "), pkgs); g != "" {
				add(g, s, n)
				attributed += n
			}
		}
		add(groupOther, s, s.size-attributed)
	}
	rank := func(g string) int {
		switch g {
		case groupRuntime:
			return 0
		case groupStd:
			return 1
		case groupNet:
			return 2
		case groupCrypto:
			return 3
		case groupSmall:
			return 5
		case groupHello:
			return 6
		case groupOther:
			return 7
		}
		return 4
	}
	// Modules under 20 KB in every binary would only crowd the legend.
	var out []moduleSize
	smallBytes := map[*server]int64{}
	for g, b := range totals {
		small := rank(g) == 4
		for _, n := range b {
			small = small && n < 20e3
		}
		if !small {
			out = append(out, moduleSize{g, b})
			continue
		}
		for s, n := range b {
			smallBytes[s] += n
		}
	}
	if len(smallBytes) > 0 {
		out = append(out, moduleSize{groupSmall, smallBytes})
	}
	sum := func(m moduleSize) int64 {
		var t int64
		for _, n := range m.bytes {
			t += n
		}
		return t
	}
	slices.SortFunc(out, func(a, b moduleSize) int {
		if ra, rb := rank(a.group), rank(b.group); ra != rb {
			return ra - rb
		}
		if sa, sb := sum(a), sum(b); sa != sb {
			return int(sb - sa)
		}
		return strings.Compare(a.group, b.group)
	})
	return out, nil
}

// packageGroups maps every package linked into pkg to its group: the
// module path, or an area of the standard library.
func packageGroups(pkg string) (map[string]string, error) {
	b, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{with .Module}}{{.Path}}{{end}}", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w", pkg, err)
	}
	groups := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch {
		case f[1] == "true":
			groups[f[0]] = stdGroup(f[0])
		case len(f) == 3:
			groups[f[0]] = f[2]
		}
	}
	return groups, nil
}

func stdGroup(p string) string {
	under := func(prefixes ...string) bool {
		for _, pre := range prefixes {
			if p == pre || strings.HasPrefix(p, pre+"/") {
				return true
			}
		}
		return false
	}
	switch {
	case under("runtime", "internal/runtime", "internal/abi", "internal/bytealg", "internal/cpu", "internal/goarch", "internal/goos", "internal/chacha8rand", "internal/race", "internal/sync", "sync"):
		return groupRuntime
	case under("crypto", "vendor/golang.org/x/crypto", "encoding/asn1", "vendor/golang.org/x/crypto/cryptobyte", "internal/fips140", "crypto/internal"):
		return groupCrypto
	case under("net", "vendor/golang.org/x/net", "vendor/golang.org/x/text", "mime", "internal/poll", "internal/nettrace", "internal/godebug"):
		return groupNet
	}
	return groupStd
}

// symbolGroup finds the package a linker symbol belongs to, e.g.
// "net/http.(*conn).serve", "type:*github.com/labstack/echo/v4.Echo" or
// "go:itab.*net/http.response,net/http.ResponseWriter", and returns its
// group; "" when the symbol belongs to no package (go:func.*, go:string.*).
func symbolGroup(sym string, pkgs map[string]string) string {
	for _, pre := range []string{"type:", "go:itab.", "*"} {
		sym = strings.TrimPrefix(sym, pre)
	}
	best := ""
	for i := 0; i < len(sym); i++ {
		switch sym[i] {
		case '.':
			if _, ok := pkgs[sym[:i]]; ok {
				best = sym[:i]
			}
		case '[', '(', ',', ' ', '{':
			i = len(sym)
		}
	}
	return pkgs[best]
}

func writeModuleTable(out io.Writer, servers []*server, mods []moduleSize) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, s := range servers {
		fmt.Fprintf(tw, "%s\t", s.name)
	}
	fmt.Fprintln(tw)
	for _, m := range mods {
		fmt.Fprintf(tw, "%s\t", m.group)
		for _, s := range servers {
			fmt.Fprintf(tw, "%s\t", kb(m.bytes[s]))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprint(tw, "total (stripped file)\t")
	for _, s := range servers {
		fmt.Fprintf(tw, "%s\t", kb(s.size))
	}
	fmt.Fprintln(tw)
	tw.Flush()
}

func kb(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f KB", float64(n)/1e3)
}

// writeCharts draws the per-round ratios and the binaries' bytes by module.
func writeCharts(dir string, rr []roundRatios, servers []*server, mods []moduleSize) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	roundsChart(&b, rr)
	if err := os.WriteFile(filepath.Join(dir, "hellobench-rounds.svg"), b.Bytes(), 0o644); err != nil {
		return err
	}
	b.Reset()
	binaryChart(&b, servers, mods)
	return os.WriteFile(filepath.Join(dir, "binary-by-module.svg"), b.Bytes(), 0o644)
}

var palette = []string{"#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#b6992d", "#f1ce63", "#499894", "#86bcb6", "#e15759", "#ff9d9a", "#79706e", "#bab0ac", "#d37295", "#fabfd2", "#b07aa1", "#d4a6c8", "#9d7660", "#d7b5a6"}

func color(i int, group string) string {
	if group == groupOther {
		return "#d9d9d9"
	}
	return palette[i%len(palette)]
}

const font = `font-family="DejaVu Sans, Verdana, Arial, sans-serif"`

// binaryChart is one stacked bar per binary, a segment per group.
func binaryChart(w io.Writer, servers []*server, mods []moduleSize) {
	const width, left, right, barH, gap, top = 900, 170, 90, 34, 14, 50
	var largest int64
	for _, s := range servers {
		largest = max(largest, s.size)
	}
	scale := float64(width-left-right) / float64(largest)
	legendRows := (len(mods) + 2) / 3
	height := top + len(servers)*(barH+gap) + 30 + legendRows*20 + 10
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="13">`+"\n", width, height, width, height, font)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="16" font-weight="bold">Binary bytes by module (stripped, CGO_ENABLED=0 -trimpath -ldflags='-s -w')</text>`+"\n", 10)
	names := map[string]string{"hello": "hello (this service)", "echo": "bare echo hello", "bare": "bare net/http hello"}
	for i := len(servers) - 1; i >= 0; i-- {
		s := servers[i]
		y := top + (len(servers)-1-i)*(barH+gap)
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH/2+5, html.EscapeString(names[s.name]))
		x := float64(left)
		for j, m := range mods {
			n := m.bytes[s]
			if n <= 0 {
				continue
			}
			bw := float64(n) * scale
			fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" stroke="white" stroke-width="0.5"><title>%s: %s</title></rect>`+"\n", x, y, bw, barH, color(j, m.group), html.EscapeString(m.group), kb(n))
			x += bw
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%d">%.2f MB</text>`+"\n", x+6, y+barH/2+5, float64(s.size)/1e6)
	}
	// MB axis
	axisY := top + len(servers)*(barH+gap) - gap + 4
	for mb := 0; float64(mb)*1e6 <= float64(largest); mb++ {
		x := float64(left) + float64(mb)*1e6*scale
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/><text x="%.1f" y="%d" text-anchor="middle" font-size="11" fill="#555">%d MB</text>`+"\n", x, axisY, x, axisY+4, x, axisY+16, mb)
	}
	ly := axisY + 36
	colW := (width - 20) / 3
	for j, m := range mods {
		x, y := 10+(j%3)*colW, ly+(j/3)*20
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d" font-size="12">%s</text>`+"\n", x, y-10, color(j, m.group), x+17, y, html.EscapeString(m.group))
	}
	fmt.Fprintln(w, `</svg>`)
}

// roundsChart draws one panel per ratio: each round's value as a point and
// the median as a dashed line, so the spread is visible next to the figure.
func roundsChart(w io.Writer, rr []roundRatios) {
	type series struct {
		name, color string
		v           func(roundRatios) float64
	}
	panels := []struct {
		title  string
		series []series
	}{
		{"Throughput ÷ bare net/http (higher is better)", []series{
			{"hello", "#4e79a7", func(r roundRatios) float64 { return r.helloRPS }},
			{"bare echo", "#f28e2b", func(r roundRatios) float64 { return r.echoRPS }},
		}},
		{"p99 latency ÷ bare net/http (lower is better)", []series{
			{"hello", "#4e79a7", func(r roundRatios) float64 { return r.helloP99 }},
			{"bare echo", "#f28e2b", func(r roundRatios) float64 { return r.echoP99 }},
		}},
		{"CPU of one /metrics scrape ÷ CPU of one /hello (hello)", []series{
			{"hello", "#59a14f", func(r roundRatios) float64 { return r.scrape }},
		}},
	}
	const width, panelH, left, right, top = 900, 190, 60, 200, 40
	height := top + len(panels)*(panelH+50) + 10
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="12">`+"\n", width, height, width, height, font)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="24" font-size="16" font-weight="bold">hellobench: per-round ratios, %d interleaved rounds (dashed: median)</text>`+"\n", len(rr))
	plotW := float64(width - left - right)
	for pi, p := range panels {
		y0 := float64(top + pi*(panelH+50) + 30)
		lo, hi := 1.0, 1.0
		for _, s := range p.series {
			for _, r := range rr {
				lo, hi = math.Min(lo, s.v(r)), math.Max(hi, s.v(r))
			}
		}
		lo, hi = niceRange(lo, hi)
		ys := func(v float64) float64 { return y0 + float64(panelH)*(hi-v)/(hi-lo) }
		xs := func(i int) float64 {
			if len(rr) == 1 {
				return float64(left) + plotW/2
			}
			return float64(left) + 10 + (plotW-20)*float64(i)/float64(len(rr)-1)
		}
		fmt.Fprintf(w, `<text x="%d" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", left, y0-10, html.EscapeString(p.title))
		fmt.Fprintf(w, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="none" stroke="#bbb"/>`+"\n", left, y0, plotW, panelH)
		step := tickStep(hi - lo)
		for t := math.Ceil(lo/step) * step; t <= hi+1e-9; t += step {
			y := ys(t)
			stroke := "#eee"
			if math.Abs(t-1) < 1e-9 {
				stroke = "#888"
			}
			fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/><text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n",
				left, y, float64(left)+plotW, y, stroke, left-6, y+4, strconv.FormatFloat(t, 'f', -1, 64))
		}
		for i := range rr {
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%d</text>`+"\n", xs(i), y0+float64(panelH)+15, i+1)
		}
		if pi == len(panels)-1 {
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">round</text>`+"\n", float64(left)+plotW/2, y0+float64(panelH)+32)
		}
		for si, s := range p.series {
			var pts []string
			vals := make([]float64, len(rr))
			for i, r := range rr {
				vals[i] = s.v(r)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", xs(i), ys(vals[i])))
			}
			fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-opacity="0.45"/>`+"\n", strings.Join(pts, " "), s.color)
			for _, pt := range pts {
				xy := strings.Split(pt, ",")
				fmt.Fprintf(w, `<circle cx="%s" cy="%s" r="4" fill="%s"/>`+"\n", xy[0], xy[1], s.color)
			}
			m := medianF(vals)
			fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="6 4"/>`+"\n", left, ys(m), float64(left)+plotW, ys(m), s.color)
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s"/><text x="%.1f" y="%.1f" font-size="13">%s: median %.2f</text>`+"\n",
				float64(left)+plotW+14, y0+20+float64(si)*22, s.color, float64(left)+plotW+24, y0+24+float64(si)*22, html.EscapeString(s.name), m)
		}
	}
	fmt.Fprintln(w, `</svg>`)
}

// niceRange widens [lo, hi] a little and to round numbers, never below
// zero: these are ratios.
func niceRange(lo, hi float64) (float64, float64) {
	pad := (hi - lo) * 0.1
	if pad == 0 {
		pad = 0.1
	}
	step := tickStep(hi - lo + 2*pad)
	return math.Max(0, math.Floor((lo-pad)/step)*step), math.Ceil((hi+pad)/step) * step
}

func tickStep(span float64) float64 {
	raw := span / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}
