// Package node runs a real Kubernetes node for tests, joined to a control
// plane from pkg/internal/controlplane: containerd 2 with Debian's runc,
// the CNI bridge, host-local, loopback and portmap plugins, the kubelet and
// kube-proxy, all built from the Go module proxy and cached (Build here,
// controlplane.Build for the kubelet and kube-proxy). Images come from a
// registry on 127.0.0.1 over plain HTTP, the sandbox (pause) image too,
// built from source.
//
// It needs root, Linux, cgroups and the Debian packages runc, nftables,
// iptables and conntrack. The kubelet runs with failCgroupV1: false, because
// since Kubernetes 1.35 it refuses to start on a cgroup v1 host otherwise.
//
// A node changes the host outside its directory: network namespaces, the
// bridge, nftables and iptables rules, cgroups, a few files under /run and
// /var. Close undoes what Start added and reports anything it could not.
package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kobuilt/hello/pkg/internal/controlplane"
	"github.com/kobuilt/hello/pkg/internal/loopback"
	"github.com/kobuilt/hello/pkg/internal/proc"
)

// Name is the node's name in the cluster.
const Name = "hello-node"

// bridgeName is the Linux bridge the CNI config creates for Pods.
const bridgeName = "hello0"

// readyTimeout bounds each wait during Start.
const readyTimeout = 2 * time.Minute

// Node is a running containerd, kubelet and kube-proxy. Close stops them
// and removes what they left on the host.
type Node struct {
	Dir          string // state: containerd root, kubelet root, configs, logs
	IP           string // the node's InternalIP, where the kubelet's API listens
	KubeletURL   string // https://<IP>:<port>, the kubelet's API
	KubeletCA    string // the kubelet's self-signed serving certificate
	PodLogsDir   string // the kubelet's podLogsDir: <ns>_<pod>_<uid>/<container>/0.log
	SandboxImage string

	cp     *controlplane.ControlPlane
	bins   *Binaries
	socket string
	procs  []*proc.Process
	host   *hostState
	once   sync.Once
	err    error
}

// Start runs a node in dir (an empty directory the caller owns, short
// enough for unix sockets: t.TempDir() is) against cp, pulling images from
// the plain-HTTP registry at registry ("127.0.0.1:PORT"), and returns once
// the node is Ready and kube-proxy is healthy.
func Start(ctx context.Context, cp *controlplane.ControlPlane, bins *Binaries, dir, registry string) (*Node, error) {
	n := &Node{Dir: dir, cp: cp, bins: bins}
	if err := n.start(ctx, registry); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

func (n *Node) start(ctx context.Context, registry string) error {
	var err error
	if n.host, err = snapshotHost(); err != nil {
		return err
	}
	for _, d := range []string{"containerd", "certs.d/" + registry, "cni/net.d", "cni/ipam", "kubelet", "kubelet-pki", "pod-logs", "opt"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	n.PodLogsDir = filepath.Join(n.Dir, "pod-logs")
	if n.IP, err = hostIP(); err != nil {
		return err
	}
	n.socket = filepath.Join(n.Dir, "containerd", "containerd.sock")

	if n.SandboxImage, err = pushPause(ctx, n.bins.Pause(), registry+"/hello-node/pause:v1"); err != nil {
		return err
	}
	files := map[string]string{
		"certs.d/" + registry + "/hosts.toml": hostsTOML(registry),
		"cni/net.d/10-hello.conflist":         cniConfig(filepath.Join(n.Dir, "cni", "ipam")),
		"containerd.toml":                     n.containerdConfig(),
		// Pods get this as their resolv.conf: the cluster has no DNS, and
		// a lookup must not leave the machine.
		"resolv.conf": "nameserver 127.0.0.1\n",
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(n.Dir, f), []byte(content), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", f, err)
		}
	}

	// containerd finds the shim through PATH.
	containerd, err := n.spawn("containerd", n.bins.Containerd(), []string{"PATH=" + n.bins.Dir + ":" + os.Getenv("PATH")},
		"--config="+filepath.Join(n.Dir, "containerd.toml"))
	if err != nil {
		return err
	}
	if err := waitFor(ctx, containerd, "containerd's socket", func() error {
		return n.Ctr(ctx, "version").Run()
	}); err != nil {
		return err
	}

	ports, err := loopback.FreePorts(4)
	if err != nil {
		return err
	}
	kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics := ports[0], ports[1], ports[2], ports[3]
	if err := os.WriteFile(filepath.Join(n.Dir, "kubelet.yaml"), []byte(n.kubeletConfig(kubeletPort, kubeletHealthz)), 0o600); err != nil {
		return fmt.Errorf("write kubelet config: %w", err)
	}
	certDir := filepath.Join(n.Dir, "kubelet-pki")
	kubelet, err := n.spawn("kubelet", n.cp.Binaries.Kubelet(), nil,
		"--kubeconfig="+n.cp.Kubeconfig,
		"--config="+filepath.Join(n.Dir, "kubelet.yaml"),
		"--hostname-override="+Name,
		"--node-ip="+n.IP,
		"--root-dir="+filepath.Join(n.Dir, "kubelet"),
		"--cert-dir="+certDir,
		"--v=1",
	)
	if err != nil {
		return err
	}
	n.KubeletURL = "https://" + net.JoinHostPort(n.IP, strconv.Itoa(kubeletPort))
	n.KubeletCA = filepath.Join(certDir, "kubelet.crt")
	if err := waitFor(ctx, kubelet, "node "+Name+" Ready", func() error {
		out, err := n.cp.Kubectl(ctx, "get", "node", Name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`).Output()
		if err != nil {
			return err
		}
		if string(out) != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	}); err != nil {
		return err
	}

	if err := os.WriteFile(filepath.Join(n.Dir, "kube-proxy.yaml"), []byte(n.proxyConfig(proxyHealthz, proxyMetrics)), 0o600); err != nil {
		return fmt.Errorf("write kube-proxy config: %w", err)
	}
	proxy, err := n.spawn("kube-proxy", n.cp.Binaries.KubeProxy(), nil, "--config="+filepath.Join(n.Dir, "kube-proxy.yaml"))
	if err != nil {
		return err
	}
	healthz := "http://127.0.0.1:" + strconv.Itoa(proxyHealthz) + "/healthz"
	return waitFor(ctx, proxy, "kube-proxy healthy", func() error {
		resp, err := http.Get(healthz)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

// hostIP is the address the node registers as its InternalIP and the
// kubelet listens on, so kube-apiserver reaches it for exec, attach and
// logs: this host's source address towards its default route, the one the
// kubelet would pick itself. Not 127.0.0.1: the kubelet refuses a loopback
// node IP.
func hostIP() (string, error) {
	// Connecting a UDP socket sends nothing; it only asks the kernel for a
	// route (203.0.113.1 is a documentation address, TEST-NET-3).
	c, err := net.Dial("udp4", "203.0.113.1:9")
	if err != nil {
		return "", fmt.Errorf("the node needs a non-loopback IPv4 address on a default route for kube-apiserver to reach the kubelet: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// Ctr returns containerd's own client, ctr, pointed at this node's
// containerd and the namespace the kubelet's containers live in.
func (n *Node) Ctr(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, n.bins.Ctr(), append([]string{"--address=" + n.socket, "--namespace=k8s.io"}, args...)...)
}

// TaskPID returns the host PID of a running container's process, given
// the container ID from its Pod status ("containerd://<id>" or "<id>").
func (n *Node) TaskPID(ctx context.Context, containerID string) (int, error) {
	id := strings.TrimPrefix(containerID, "containerd://")
	out, err := n.Ctr(ctx, "tasks", "ls").Output()
	if err != nil {
		return 0, fmt.Errorf("ctr tasks ls: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == id {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no task %s in containerd", id)
}

// KubeletGet GETs path from the kubelet's API (e.g. /metrics/probes,
// /stats/summary) as the cluster admin.
func (n *Node) KubeletGet(ctx context.Context, path string) ([]byte, error) {
	pem, err := os.ReadFile(n.KubeletCA)
	if err != nil {
		return nil, fmt.Errorf("kubelet certificate: %w", err)
	}
	pool, err := certPool(pem)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: Name, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.KubeletURL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+n.cp.Token())
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kubelet %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// Logs returns the last maxBytes bytes of a component's log (containerd,
// kubelet, kube-proxy), for test failures.
func (n *Node) Logs(name string, maxBytes int) string {
	for _, p := range n.procs {
		if p.Name == name {
			return proc.TailFile(p.Log, maxBytes)
		}
	}
	return ""
}

// Close stops the Pods' containers, kube-proxy, the kubelet and
// containerd, then removes what they created outside Dir. Dir itself is
// left for the caller (t.TempDir removes it), with nothing mounted in it.
func (n *Node) Close() error {
	n.once.Do(func() { n.err = n.close() })
	return n.err
}

func (n *Node) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if p := n.component("kubelet"); p != nil && !p.Exited() {
		// The kubelet stops what the API no longer has, through the CRI:
		// containers, then sandboxes, whose CNI DEL removes their
		// addresses and veths. Cordoned first, or the ReplicaSets put
		// replacements right back on the node.
		if out, err := n.cp.Kubectl(ctx, "cordon", Name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("cordon %s: %w: %s", Name, err, out))
		}
		if out, err := n.cp.Kubectl(ctx, "delete", "pods", "--all-namespaces", "--all", "--force", "--grace-period=0", "--wait=false").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete the node's Pods: %w: %s", err, out))
		}
		if err := n.waitNoTasks(ctx, time.Minute); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range []string{"kube-proxy", "kubelet"} {
		if p := n.component(name); p != nil {
			if err := p.Stop(15 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if p := n.component("containerd"); p != nil {
		if !p.Exited() {
			// Whatever the kubelet left: the shims outlive containerd.
			if err := n.killTasks(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := p.Stop(15 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if n.cp != nil && n.cp.Binaries != nil {
		// kube-proxy's own way to remove its nftables and iptables rules.
		if out, err := exec.CommandContext(ctx, n.cp.Binaries.KubeProxy(), "--cleanup").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy --cleanup: %w: %s", err, proc.Tail(string(out), 2000)))
		}
	}
	if n.host != nil {
		errs = append(errs, n.host.restore(n.Dir))
	}
	return errors.Join(errs...)
}

func (n *Node) component(name string) *proc.Process {
	for _, p := range n.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// waitNoTasks waits until containerd runs no container and no sandbox.
func (n *Node) waitNoTasks(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := n.Ctr(ctx, "tasks", "ls", "--quiet").Output()
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("ctr tasks ls: %w", err)
			}
			return fmt.Errorf("containerd still runs tasks %s after %s", strings.Fields(string(out)), timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (n *Node) killTasks(ctx context.Context) error {
	out, err := n.Ctr(ctx, "tasks", "ls", "--quiet").Output()
	if err != nil {
		return fmt.Errorf("ctr tasks ls: %w", err)
	}
	var errs []error
	for _, id := range strings.Fields(string(out)) {
		if out, err := n.Ctr(ctx, "tasks", "rm", "--force", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ctr tasks rm %s: %w: %s", id, err, out))
		}
	}
	return errors.Join(errs...)
}

func (n *Node) spawn(name, bin string, env []string, args ...string) (*proc.Process, error) {
	// Not CommandContext: the components outlive the context that started
	// them and stop only in Close, gracefully.
	cmd := exec.Command(bin, args...)
	cmd.Dir = n.Dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = proc.SysProcAttr(syscall.SIGKILL)
	p, err := proc.Start(name, cmd, filepath.Join(n.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	n.procs = append(n.procs, p)
	return p, nil
}

// waitFor polls check until it succeeds, p exits, or readyTimeout passes.
func waitFor(ctx context.Context, p *proc.Process, what string, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("waiting for %s: %s exited (%w); log:\n%s", what, p.Name, p.Err(), proc.TailFile(p.Log, 3000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no %s after %s (last: %w); %s log:\n%s", what, readyTimeout, err, p.Name, proc.TailFile(p.Log, 3000))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
