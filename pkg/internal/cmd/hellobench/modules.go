package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Group names for the standard library, split where the bytes go, and for
// what the symbol table cannot attribute. Every other group is a
// dependency's module path.
const (
	groupRuntime = "std: runtime"
	groupNet     = "std: net, net/http"
	groupCrypto  = "std: crypto, TLS, x509"
	groupStd     = "std: everything else"
	groupSmall   = "modules under 20 KB each"
	// The main module by role, not by path: the figures stay true of a
	// copy made with gonew, and name no module path a copy would keep.
	groupMain  = "this module"
	groupOther = "unattributed: pclntab, type data, headers"
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
func moduleSizes(root, dir string, servers []*server) ([]moduleSize, error) {
	totals := map[string]map[*server]int64{}
	add := func(g string, s *server, n int64) {
		if totals[g] == nil {
			totals[g] = map[*server]int64{}
		}
		totals[g][s] += n
	}
	for _, s := range servers {
		pkgs, err := packageGroups(root, s.pkg)
		if err != nil {
			return nil, err
		}
		bin := filepath.Join(dir, s.name+".sym")
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, s.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %w\n%s", s.pkg, err, b)
		}
		nm, err := exec.Command("go", "tool", "nm", "-size", bin).Output()
		if err != nil {
			return nil, fmt.Errorf("go tool nm %s: %w", bin, err)
		}
		sizes, attributed, err := groupSizes(bytes.NewReader(nm), pkgs)
		if err != nil {
			return nil, fmt.Errorf("go tool nm %s: %w", bin, err)
		}
		for g, n := range sizes {
			add(g, s, n)
		}
		add(groupOther, s, s.size-attributed)
	}
	return foldAndSort(totals), nil
}

// foldAndSort turns the bytes per group and server into the table's rows:
// the standard library first, then modules by size, then the main module
// (hello's own code) and what nm could not attribute.
func foldAndSort(totals map[string]map[*server]int64) []moduleSize {
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
		case groupMain:
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
	return out
}

// listFormat is what go list -deps prints per package: its import path,
// whether it is in the standard library and, outside it, its module's
// path and whether that is the main module.
const listFormat = "{{.ImportPath}} {{.Standard}}{{with .Module}} {{.Path}} {{.Main}}{{end}}"

// packageGroups maps every package linked into pkg, a path relative to the
// module root, to its group: groupMain, another module's path, or an area
// of the standard library.
func packageGroups(root, pkg string) (map[string]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", listFormat, pkg)
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w", pkg, err)
	}
	groups, err := parsePackageGroups(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w", pkg, err)
	}
	return groups, nil
}

// parsePackageGroups reads go list -deps -f listFormat output.
func parsePackageGroups(r io.Reader) (map[string]string, error) {
	groups := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[1] == "true":
			groups[f[0]] = stdGroup(f[0])
		case len(f) == 4 && f[1] == "false" && f[3] == "true":
			groups[f[0]] = groupMain
		case len(f) == 4 && f[1] == "false" && f[3] == "false":
			groups[f[0]] = f[2]
		default:
			return nil, fmt.Errorf("%q: want import path, standard and, outside the standard library, module path and main", sc.Text())
		}
	}
	return groups, sc.Err()
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

// groupSizes reads go tool nm -size output (address, size, type, name) and
// adds up the bytes the symbols of each group take in the file; attributed
// is the sum over all groups.
func groupSizes(r io.Reader, pkgs map[string]string) (sizes map[string]int64, attributed int64, err error) {
	sizes = map[string]int64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			return nil, 0, fmt.Errorf("%q: want address, size, type and name", sc.Text())
		}
		if !strings.ContainsAny(f[2], "TtRrDd") { // B, b: bss takes no file bytes
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("%q: %w", sc.Text(), err)
		}
		if g := symbolGroup(strings.Join(f[3:], " "), pkgs); g != "" {
			sizes[g] += n
			attributed += n
		}
	}
	return sizes, attributed, sc.Err()
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
