package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestTickStep(t *testing.T) {
	for span, want := range map[float64]float64{
		0.2:  0.05,
		1:    0.2,
		3:    1,
		10:   2,
		14.7: 5,
	} {
		if got := tickStep(span); math.Abs(got-want) > 1e-12 {
			t.Errorf("tickStep(%v) = %v, want %v", span, got, want)
		}
	}
}

// A panel's range holds every point with room at both ends, and never
// goes below zero: these are ratios.
func TestNiceRange(t *testing.T) {
	for _, tc := range []struct{ lo, hi float64 }{
		{1, 1},       // every round exactly even
		{0.02, 1},    // a ratio near zero
		{0.56, 1.81}, // throughput
		{1, 14.7},    // scrape cost
	} {
		if lo, hi := niceRange(tc.lo, tc.hi); lo < 0 || lo >= tc.lo || hi <= tc.hi {
			t.Errorf("niceRange(%v, %v) = %v, %v", tc.lo, tc.hi, lo, hi)
		}
	}
}

// The charts are well-formed SVG with one point per round and series.
func TestWriteCharts(t *testing.T) {
	hello := &server{name: "hello", size: 7447e3}
	echo := &server{name: "echo", size: 6955e3}
	bare := &server{name: "bare", size: 5837e3}
	rr := []roundRatios{
		{helloRPS: 0.8, echoRPS: 0.96, helloP99: 1.55, echoP99: 1.1, scrape: 5.8},
		{helloRPS: 0.83, echoRPS: 1.02, helloP99: 1.45, echoP99: 0.9, scrape: 5.7},
		{helloRPS: 0.78, echoRPS: 0.99, helloP99: 1.6, echoP99: 1.0, scrape: 6.1},
	}
	mods := []moduleSize{
		{groupRuntime, map[*server]int64{hello: 608e3, echo: 596e3, bare: 584e3}},
		{"github.com/labstack/echo/v4", map[*server]int64{hello: 28e3, echo: 30e3}},
		{groupOther, map[*server]int64{hello: 3836e3, echo: 3534e3, bare: 2994e3}},
	}
	dir := t.TempDir()
	if err := writeCharts(dir, rr, []*server{hello, echo, bare}, mods); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]map[string]int{
		// 5 series (hello and echo in two panels, hello in one) of 3
		// points, each with a legend dot.
		"hellobench-rounds.svg": {"circle": 5 * (3 + 1), "polyline": 5},
		// The background, 3+3+2 segments (bare has no echo) and 3
		// legend squares.
		"binary-by-module.svg": {"rect": 1 + 8 + 3},
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		d := xml.NewDecoder(bytes.NewReader(b))
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if se, ok := tok.(xml.StartElement); ok {
				got[se.Name.Local]++
			}
		}
		if got["svg"] != 1 {
			t.Errorf("%s: %d svg elements", file, got["svg"])
		}
		for el, n := range want {
			if got[el] != n {
				t.Errorf("%s: %d %s elements, want %d", file, got[el], el, n)
			}
		}
	}
}
