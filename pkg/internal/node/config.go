package node

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/kobuilt/hello/pkg/internal/controlplane"
)

// podSubnet is the part of controlplane.PodCIDR this node hands out.
const podSubnet = "10.244.0.0/24"

// hostsTOML tells containerd to pull from registry over plain HTTP.
func hostsTOML(registry string) string {
	return fmt.Sprintf(`server = "http://%[1]s"

[host."http://%[1]s"]
  capabilities = ["pull", "resolve"]
`, registry)
}

// cniConfig puts every Pod on one bridge with an address from podSubnet.
// No masquerading: Pods talk only to this host and to each other.
func cniConfig(ipamDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "hello-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, bridgeName, podSubnet, ipamDir)
}

// runcPath is the runc on PATH: Debian's is /usr/sbin/runc, Docker's
// containerd.io package (a GitHub runner's) puts it in /usr/bin.
func runcPath() string {
	if p, err := exec.LookPath("runc"); err == nil {
		return p
	}
	return "/usr/sbin/runc"
}

// containerdConfig keeps containerd's state in Dir. The settings that are
// not defaults are what this kind of machine needs:
//   - in config version 4 the socket address belongs to the grpc server
//     plugin; a top-level [grpc] is silently ignored;
//   - restrict_oom_score_adj: the VM's capability bounding set lacks
//     CAP_SYS_RESOURCE, so a negative oom_score_adj fails and every
//     sandbox dies with "can't get final child's PID from pipe: EOF";
//   - NRI off, else it creates /run/nri.
func (n *Node) containerdConfig() string {
	d := func(p string) string { return filepath.Join(n.Dir, p) }
	return fmt.Sprintf(`version = 4
root = %q
state = %q

[plugins."io.containerd.server.v1.grpc"]
  address = %q

[plugins."io.containerd.server.v1.ttrpc"]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = %q

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = [%q]
  conf_dir = %q

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = %q

[plugins."io.containerd.cri.v1.images".registry]
  config_path = %q
`, d("containerd/root"), d("containerd/state"), n.socket, n.socket+".ttrpc", d("opt"),
		runcPath(), n.bins.CNIDir, d("cni/net.d"), n.SandboxImage, d("certs.d"))
}

// kubeletConfig is a KubeletConfiguration for a node on this host:
//   - failCgroupV1: false, cgroupfs, failSwapOn: false: the host has cgroup
//     v1 (refused by default since 1.35) and no systemd;
//   - eviction and image GC thresholds at 1%/100%: a busy CI disk would
//     otherwise evict the Pods under test;
//   - the kubelet API on the node's IP, where kube-apiserver dials it for
//     exec, attach and logs; callers authenticate with a client
//     certificate from the control plane's kubelet client CA (the API
//     server) or a bearer token the API server accepts (webhook), and the
//     API server's RBAC authorizes each request (webhook), so it is served
//     only to the API server's users.
func (n *Node) kubeletConfig(port, healthzPort int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://%[1]s
imageServiceEndpoint: unix://%[1]s
address: %[6]s
port: %[2]d
healthzBindAddress: 127.0.0.1
healthzPort: %[3]d
readOnlyPort: 0
resolvConf: %[4]q
podLogsDir: %[5]q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[7]q
authorization:
  mode: Webhook
evictionHard:
  memory.available: "1%%"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 20
`, n.socket, port, healthzPort, filepath.Join(n.Dir, "resolv.conf"), n.PodLogsDir, n.IP, n.cp.KubeletClientCAFile)
}

// proxyConfig runs kube-proxy in nftables mode, its metrics and health on
// 127.0.0.1, without touching the host's conntrack limits.
func (n *Node) proxyConfig(healthzPort, metricsPort int) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: %q
hostnameOverride: %s
clusterCIDR: %s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
conntrack:
  maxPerCore: 0
`, n.cp.Kubeconfig, Name, controlplane.PodCIDR, healthzPort, metricsPort)
}

func certPool(pem []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in the kubelet's serving certificate file")
	}
	return pool, nil
}
