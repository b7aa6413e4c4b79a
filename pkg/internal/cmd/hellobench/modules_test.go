package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The samples come from a copy of this repository made with gonew as
// example.com/acme/api (Go 1.27.3, linux/amd64):
//
//	testdata/go-list-deps: go list -deps -f listFormat ./cmd/hello, whole
//	testdata/nm-size: lines of go tool nm -size of ./cmd/hello built with
//	  CGO_ENABLED=0 -trimpath, one or two per kind of symbol
func sampleGroups(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("testdata/go-list-deps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	groups, err := parsePackageGroups(f)
	if err != nil {
		t.Fatal(err)
	}
	return groups
}

func TestParsePackageGroups(t *testing.T) {
	groups := sampleGroups(t)
	if len(groups) != 240 {
		t.Errorf("%d packages, want the sample's 240", len(groups))
	}
	for pkg, want := range map[string]string{
		"runtime":                             groupRuntime,
		"internal/runtime/gc/scan":            groupRuntime,
		"sync/atomic":                         groupRuntime,
		"net/http":                            groupNet,
		"vendor/golang.org/x/net/http2/hpack": groupNet,
		"internal/poll":                       groupNet,
		"crypto/tls":                          groupCrypto,
		"vendor/golang.org/x/crypto/chacha20": groupCrypto,
		"encoding/json":                       groupStd,
		"github.com/labstack/echo/v4":         "github.com/labstack/echo/v4",
		"github.com/labstack/gommon/color":    "github.com/labstack/gommon",
		"golang.org/x/net/http2":              "golang.org/x/net",
		"example.com/acme/api/pkg/server":     groupMain,
		"example.com/acme/api/cmd/hello":      groupMain,
	} {
		if got, ok := groups[pkg]; got != want {
			t.Errorf("%s: group %q (listed: %t), want %q", pkg, got, ok, want)
		}
	}

	for name, in := range map[string]string{
		"import path only":      "net/http\n",
		"module without main":   "github.com/labstack/echo/v4 false github.com/labstack/echo/v4\n",
		"no module outside std": "example.com/acme/api/pkg/server false\n",
		"standard not a bool":   "net/http yes\n",
		"empty line":            "net/http true\n\nruntime true\n",
	} {
		if g, err := parsePackageGroups(strings.NewReader(in)); err == nil {
			t.Errorf("%s: got %d groups; want an error", name, len(g))
		}
	}
	if g, err := parsePackageGroups(strings.NewReader("")); err != nil || len(g) != 0 {
		t.Errorf("no output: %v, %v; want nothing and no error", g, err)
	}
}

func TestSymbolGroup(t *testing.T) {
	groups := sampleGroups(t)
	for sym, want := range map[string]string{
		"net/http.(*conn).serve":                                   groupNet,
		"type:*github.com/labstack/echo/v4.Echo":                   "github.com/labstack/echo/v4",
		"go:itab.*net/http.response,net/http.ResponseWriter":       groupNet,
		"github.com/labstack/gommon/color..inittask":               "github.com/labstack/gommon",
		"golang.org/x/sys/unix.Syscall.abi0":                       "golang.org/x/sys",
		"example.com/acme/api/pkg/server.(*Server).ConnContext-fm": groupMain,
		// A generic instance belongs to the package of the function, not
		// to those of its type arguments.
		"cmp.Or[go.shape.interface { Error() string }]":                                            groupStd,
		"slices.BinarySearchFunc[go.shape.[]go.shape.*net.IPNet,go.shape.*uint8,go.shape.[]uint8]": groupStd,
		// No package: the linker's own tables, and package main (not in
		// go list's output under that name).
		"go:func.*":   "",
		"go:string.*": "",
		"type:.eq.EE": "",
		"main.main":   "",
	} {
		if got := symbolGroup(sym, groups); got != want {
			t.Errorf("%s: %q, want %q", sym, got, want)
		}
	}
}

func TestGroupSizes(t *testing.T) {
	nm, err := os.ReadFile("testdata/nm-size")
	if err != nil {
		t.Fatal(err)
	}
	sizes, attributed, err := groupSizes(bytes.NewReader(nm), sampleGroups(t))
	if err != nil {
		t.Fatal(err)
	}
	// B and b (bss) take no bytes in the file: config.ErrHelp,
	// runtime.mheap_ and runtime.bss count nowhere.
	want := map[string]int64{
		groupMain:                            247 + 16 + 24,
		"github.com/labstack/echo/v4":        926,
		"github.com/labstack/gommon":         16,
		"github.com/VictoriaMetrics/metrics": 280,
		"golang.org/x/sys":                   16 + 5,
		groupNet:                             175 + 6395 + 165,
		groupRuntime:                         64 + 16 + 1400,
		groupStd:                             168,
		groupCrypto:                          500 + 72,
	}
	var sum int64
	for g, n := range want {
		sum += n
		if sizes[g] != n {
			t.Errorf("%s: %d bytes, want %d", g, sizes[g], n)
		}
	}
	if len(sizes) != len(want) {
		t.Errorf("groups %v, want %v", sizes, want)
	}
	if attributed != sum {
		t.Errorf("attributed %d, want %d", attributed, sum)
	}

	for name, in := range map[string]string{
		"no name":           "  6349a0       6395 T\n",
		"no size":           "  6349a0 T net/http.(*conn).serve\n",
		"size not a number": "  6349a0       63x5 T net/http.(*conn).serve\n",
	} {
		if s, a, err := groupSizes(strings.NewReader(in), map[string]string{"net/http": groupNet}); err == nil {
			t.Errorf("%s: got %v, %d; want an error", name, s, a)
		}
	}
}

func TestFoldAndSort(t *testing.T) {
	hello, echo, bare := &server{name: "hello"}, &server{name: "echo"}, &server{name: "bare"}
	totals := map[string]map[*server]int64{
		groupOther:                           {hello: 3836e3, echo: 3534e3, bare: 2994e3},
		groupMain:                            {hello: 47e3},
		groupCrypto:                          {hello: 1082e3, echo: 1186e3, bare: 1079e3},
		groupNet:                             {hello: 646e3, echo: 643e3, bare: 654e3},
		groupStd:                             {hello: 1141e3, echo: 935e3, bare: 525e3},
		groupRuntime:                         {hello: 608e3, echo: 596e3, bare: 584e3},
		"github.com/VictoriaMetrics/metrics": {hello: 28e3},
		"github.com/labstack/echo/v4":        {hello: 28e3, echo: 30e3},
		// Under 20 KB in every binary: folded into one row.
		"github.com/labstack/gommon": {hello: 15e3, echo: 15e3},
		"golang.org/x/sys":           {hello: 10e3, echo: 9e3},
		// Under 20 KB in one binary only: its own row.
		"golang.org/x/net": {hello: 19e3, echo: 25e3},
	}
	got := foldAndSort(totals)
	want := []string{groupRuntime, groupStd, groupNet, groupCrypto,
		"github.com/labstack/echo/v4", "golang.org/x/net", "github.com/VictoriaMetrics/metrics",
		groupSmall, groupMain, groupOther}
	var names []string
	for _, m := range got {
		names = append(names, m.group)
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	small := got[7].bytes
	if small[hello] != 25e3 || small[echo] != 24e3 || small[bare] != 0 {
		t.Errorf("%s: %v", groupSmall, small)
	}
}

// The table is in docs/figures/hellobench.txt; this is its format, from the
// figures of a real run.
func TestWriteModuleTable(t *testing.T) {
	hello := &server{name: "hello", size: 7447e3}
	echo := &server{name: "echo", size: 6955e3}
	bare := &server{name: "bare", size: 5837e3}
	mods := []moduleSize{
		{groupRuntime, map[*server]int64{hello: 608e3, echo: 596e3, bare: 584e3}},
		{"github.com/labstack/echo/v4", map[*server]int64{hello: 28e3, echo: 30e3}},
		{groupMain, map[*server]int64{hello: 47e3}},
		{groupOther, map[*server]int64{hello: 3836e3, echo: 3534e3, bare: 2994e3}},
	}
	var b strings.Builder
	writeModuleTable(&b, []*server{hello, echo, bare}, mods)
	want := `                                               hello     echo     bare
                               std: runtime   608 KB   596 KB   584 KB
                github.com/labstack/echo/v4    28 KB    30 KB        -
                                this module    47 KB        -        -
  unattributed: pclntab, type data, headers  3836 KB  3534 KB  2994 KB
                      total (stripped file)  7447 KB  6955 KB  5837 KB
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
