package node

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// outside lists where the kubelet, containerd and the CNI plugins write
// outside the node's directory, whatever their configuration says.
var outside = []string{
	"/var/log/pods",
	"/var/log/containers",
	"/var/lib/kubelet",
	"/var/lib/cni",
	"/run/containerd",
	"/run/netns",
	"/run/nri",
}

// cgroupRoots are the cgroup v1 hierarchies the kubelet (cgroupsPerQOS)
// creates "kubepods" in, and the unified one.
var cgroupRoots = []string{"/sys/fs/cgroup"}

// hostState is what existed before Start, so Close removes only what the
// node added.
type hostState struct {
	entries  map[string][]string // outside dir -> its entries; nil slice: dir absent
	existed  map[string]bool
	nftables []string // "family name" of each nftables table
	cgroups  []string // kubepods directories that already existed
}

func snapshotHost() (*hostState, error) {
	h := &hostState{entries: map[string][]string{}, existed: map[string]bool{}}
	for _, d := range outside {
		names, err := readDirNames(d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", d, err)
		}
		h.existed[d] = err == nil
		h.entries[d] = names
	}
	var err error
	if h.nftables, err = nftTables(); err != nil {
		return nil, err
	}
	h.cgroups = kubepodsCgroups()
	return h, nil
}

// restore removes what the node added outside dir, and unmounts anything
// still mounted under dir. Errors name what was left behind.
func (h *hostState) restore(dir string) error {
	var errs []error
	// Network namespaces are bind mounts; unmounting one drops the Pod's
	// veth with it.
	for _, d := range append([]string{dir}, outside...) {
		errs = append(errs, unmountUnder(d, h.preexisting(d)))
	}
	for _, d := range outside {
		if !h.existed[d] {
			if err := os.RemoveAll(d); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
			}
			continue
		}
		names, err := readDirNames(d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		for _, name := range names {
			if !slices.Contains(h.entries[d], name) {
				if err := os.RemoveAll(filepath.Join(d, name)); err != nil {
					errs = append(errs, fmt.Errorf("remove %s: %w", filepath.Join(d, name), err))
				}
			}
		}
	}
	if out, err := exec.Command("ip", "link", "delete", bridgeName).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("ip link delete %s: %w: %s", bridgeName, err, out))
	}
	errs = append(errs, h.removeTables(), h.removeCgroups())
	return errors.Join(errs...)
}

// preexisting returns the paths under d that must be left mounted.
func (h *hostState) preexisting(d string) []string {
	var keep []string
	for _, name := range h.entries[d] {
		keep = append(keep, filepath.Join(d, name))
	}
	return keep
}

// removeTables deletes the nftables tables (kube-proxy's, and those
// iptables-nft made for the kubelet's and portmap's chains) that were not
// there before.
func (h *hostState) removeTables() error {
	now, err := nftTables()
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range now {
		if slices.Contains(h.nftables, t) {
			continue
		}
		args := append([]string{"delete", "table"}, strings.Fields(t)...)
		if out, err := exec.Command("nft", args...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, out))
		}
	}
	return errors.Join(errs...)
}

func nftTables() ([]string, error) {
	out, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return nil, fmt.Errorf("nft list tables: %w", err)
	}
	var tables []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if t, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "table "); ok {
			tables = append(tables, t)
		}
	}
	return tables, nil
}

// kubepodsCgroups lists the kubelet's top-level cgroup in each hierarchy.
func kubepodsCgroups() []string {
	var dirs []string
	for _, root := range cgroupRoots {
		hier, _ := filepath.Glob(filepath.Join(root, "*", "kubepods"))
		dirs = append(dirs, hier...)
	}
	return dirs
}

// removeCgroups removes the kubepods cgroups the kubelet created; a cgroup
// directory goes with rmdir, children first, once no process is in it.
func (h *hostState) removeCgroups() error {
	var errs []error
	for _, d := range kubepodsCgroups() {
		if slices.Contains(h.cgroups, d) {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount below dir (deepest first), except
// those at or below a path in keep.
func unmountUnder(dir string, keep []string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := unescapeMount(f[4])
		if !strings.HasPrefix(p, dir+"/") {
			continue
		}
		if slices.ContainsFunc(keep, func(k string) bool { return p == k || strings.HasPrefix(p, k+"/") }) {
			continue
		}
		mounts = append(mounts, p)
	}
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, m := range slices.Compact(mounts) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readDirNames(d string) ([]string, error) {
	es, err := os.ReadDir(d)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, nil
}
