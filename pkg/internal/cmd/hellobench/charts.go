package main

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
