package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kobuilt/hello/pkg/config"
	"github.com/kobuilt/hello/pkg/internal/controlplane"
	"github.com/kobuilt/hello/pkg/internal/monitoring"
	"github.com/kobuilt/hello/pkg/internal/node"
	"github.com/kobuilt/hello/pkg/internal/proc"
	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// TestNode runs config/ on a real node (containerd, runc, CNI bridge,
// kubelet, kube-proxy) joined to the test control plane, deployed with
// `go tool ko apply -f config/` into a namespace enforcing Pod Security
// "restricted", and checks what only a running Pod shows: the kubelet's
// probes, the Service answering from every replica, a real Prometheus
// scraping every Pod with the scrape job and rules of config/monitoring,
// `kubectl debug` and `kubectl exec` into the shell-less Pod, a rolling
// update and a Pod deletion under load without a lost request, and the
// process's identity and limits as the runtime set them.
func TestNode(t *testing.T) {
	root := repoRoot(t)
	bins := kubeBinaries(t, root)
	nodeBins := nodeBinaries(t, root)
	testenv.Need(t, os.Geteuid() == 0, "root (containerd and the kubelet manage namespaces, mounts and cgroups)", "run the tests as root")
	for _, tool := range []string{"runc", "nft", "iptables", "conntrack", "ip"} {
		_, err := exec.LookPath(tool)
		testenv.Need(t, err == nil, tool, "apt-get install runc nftables iptables conntrack iproute2")
	}
	// Built (once) before the node starts, outside its time limit; only the
	// Prometheus subtest needs it.
	promBin, promErr := monitoring.Prometheus(t.Context())
	fix := harness(t)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	cp, err := controlplane.Start(ctx, bins, t.TempDir(), controlplane.WithControllerManager(), controlplane.WithScheduler())
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
				t.Logf("%s log tail:\n%s", c, cp.Logs(c, 2000))
			}
		}
		if err := cp.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("control plane ready after %s", time.Since(start).Round(time.Millisecond))
	n, err := node.Start(ctx, cp, nodeBins, t.TempDir(), fix.Registry.Host())
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{"containerd", "kubelet", "kube-proxy"} {
				t.Logf("%s log tail:\n%s", c, n.Logs(c, 3000))
			}
		}
		start := time.Now()
		if err := n.Close(); err != nil {
			t.Errorf("stop node: %v", err)
		}
		t.Logf("node stopped and cleaned up in %s", time.Since(start).Round(time.Millisecond))
	})
	t.Logf("node %s Ready after %s (containerd %s, CNI plugins %s, kubelet and kube-proxy %s)",
		node.Name, time.Since(start).Round(time.Millisecond), nodeBins.ContainerdVersion, nodeBins.CNIVersion, bins.KubernetesVersion)

	ns := restrictedNamespace(t, ctx, cp, "hello-node")
	ko := fix.Ko(root)
	ko.Env = cp.Env()
	applyStart := time.Now()
	if _, stderr, err := output(ko.Command(ctx, "apply", "-f", "config/", "--", "--namespace="+ns)); err != nil {
		t.Fatalf("go tool ko apply -f config/: %v\n%s", err, proc.Tail(stderr, 6000))
	}
	pods := waitAvailable(t, ctx, cp, ns, "")
	t.Logf("ko apply -f config/ to 2 Pods Ready and available: %s", time.Since(applyStart).Round(time.Millisecond))

	svcIP, err := run(cp.Kubectl(ctx, "get", "service", "hello", "--namespace="+ns, "-o", "jsonpath={.spec.clusterIP}"))
	if err != nil {
		t.Fatal(err)
	}
	svc := svcIP + ":80"

	t.Run("probes are the kubelet's", func(t *testing.T) {
		checkProbes(t, ctx, n, ns, pods, "Startup", "Readiness")
	})

	t.Run("the Service reaches every replica", func(t *testing.T) {
		before := helloCounts(t, pods)
		const requests = 200
		for i := range requests {
			conn, err := net.DialTimeout("tcp", svc, 2*time.Second)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			_, err = roundTrip(conn, "Connection: close\r\n")
			conn.Close()
			if err != nil {
				t.Fatalf("request %d through %s: %v", i, svc, err)
			}
		}
		after := helloCounts(t, pods)
		total := 0
		for _, p := range pods {
			d := after[p.name] - before[p.name]
			total += d
			t.Logf("%s (%s) answered %d of %d requests through ClusterIP %s", p.name, p.ip, d, requests, svc)
			if d == 0 {
				t.Errorf("%s answered none of the requests through the Service", p.name)
			}
		}
		if total != requests {
			t.Errorf("the Pods counted %d /hello requests, want %d", total, requests)
		}
	})

	t.Run("Prometheus scrapes every Pod and records the SLIs", func(t *testing.T) {
		testenv.Need(t, promErr == nil, fmt.Sprintf("Prometheus with Kubernetes service discovery (%v)", promErr), monitoring.PrometheusInstallHint)
		checkPrometheus(t, ctx, root, promBin, cp, ns, svc, pods)
	})

	// Before the rollout replaces these Pods: an ephemeral container stays
	// in its Pod until the Pod is gone.
	t.Run("Debug a shell-less Pod with kubectl debug", func(t *testing.T) {
		checkDebug(t, ctx, cp, ns, pods[0], pushBusybox(t, ctx, fix))
	})

	t.Run("a header flood through the Service restarts no Pod", func(t *testing.T) {
		checkFlood(t, ctx, n, cp, ns, svc, pods, deploymentPod(t, loadConfig(t, root)["Deployment"]))
	})

	t.Run("rolling update under load loses nothing", func(t *testing.T) {
		dir := changedConfig(t, root, "SHUTDOWN_TIMEOUT", "19s")
		old := pods
		var logs []func() string
		for _, p := range old {
			logs = append(logs, followLog(ctx, n, ns, p))
		}
		l := startLoad(svc, 2, 10*time.Millisecond)
		time.Sleep(2 * time.Second)
		began := time.Now()
		if _, stderr, err := output(ko.Command(ctx, "apply", "-f", dir, "--", "--namespace="+ns)); err != nil {
			l.stop()
			t.Fatalf("ko apply the changed config: %v\n%s", err, proc.Tail(stderr, 4000))
		}
		pods = waitAvailable(t, ctx, cp, ns, "19s")
		t.Logf("rollout done, old Pods gone: %s", time.Since(began).Round(time.Millisecond))
		time.Sleep(2 * time.Second)
		l.stop()
		report(t, l)
		for i, p := range old {
			checkShutdownLog(t, p.name, logs[i]())
		}
	})

	t.Run("deleting a serving Pod under load loses nothing", func(t *testing.T) {
		victim := pods[0]
		logs := followLog(ctx, n, ns, victim)
		l := startLoad(svc, 2, 10*time.Millisecond)
		time.Sleep(2 * time.Second)
		began := time.Now()
		if out, err := run(cp.Kubectl(ctx, "delete", "pod", victim.name, "--namespace="+ns, "--wait=false")); err != nil {
			l.stop()
			t.Fatalf("delete pod: %v\n%s", err, out)
		}
		pods = waitAvailable(t, ctx, cp, ns, "19s")
		t.Logf("%s gone and replaced: %s", victim.name, time.Since(began).Round(time.Millisecond))
		time.Sleep(2 * time.Second)
		l.stop()
		report(t, l)
		checkShutdownLog(t, victim.name, logs())
	})

	t.Run("runtime view of the process", func(t *testing.T) {
		checkProcess(t, ctx, n, pods[0])
	})

	t.Run("probes keep passing", func(t *testing.T) {
		checkProbes(t, ctx, n, ns, pods, "Startup", "Readiness", "Liveness")
	})

	t.Run("ephemeral storage used", func(t *testing.T) {
		logEphemeralStorage(t, ctx, n, ns, pods)
	})
}

// nodeBinaries finds the cached node binaries, or skips (fails in CI) with
// how to build them.
func nodeBinaries(t *testing.T, root string) *node.Binaries {
	t.Helper()
	return cached(t, "the Kubernetes node", node.Find, filepath.Join(root, "pkg", "internal", "node", "testdata"), node.ErrNotBuilt, node.BuildHint)
}

type pod struct {
	name, uid, ip, containerID string
}

// waitAvailable waits until Deployment hello has rolled out completely:
// 2 updated, Ready and available replicas, no other Pods left (a
// terminating one included), and, if shutdownTimeout is set, every Pod
// running with it.
func waitAvailable(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns, shutdownTimeout string) []pod {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var pods []pod
		d, err := listObjects(ctx, cp, ns, "deployment/hello")
		if err != nil {
			t.Fatal(err)
		}
		items, err := listObjects(ctx, cp, ns, "pods")
		if err != nil {
			t.Fatal(err)
		}
		st, _ := lookup(d[0], "status").(map[string]any)
		done := lookup(d[0], "spec", "replicas") == 2.0 && st["replicas"] == 2.0 && st["updatedReplicas"] == 2.0 &&
			st["readyReplicas"] == 2.0 && st["availableReplicas"] == 2.0 && len(items) == 2
		for _, p := range items {
			ready := false
			for _, c := range lookupSlice(p, "status", "conditions") {
				if lookup(c, "type") == "Ready" && lookup(c, "status") == "True" {
					ready = true
				}
			}
			if !ready || lookup(p, "metadata", "deletionTimestamp") != nil {
				done = false
			}
			if shutdownTimeout != "" && !slices.ContainsFunc(lookupSlice(p, "spec", "containers", 0, "env"), func(e any) bool {
				return lookup(e, "name") == "SHUTDOWN_TIMEOUT" && lookup(e, "value") == shutdownTimeout
			}) {
				done = false
			}
			id, _ := lookup(p, "status", "containerStatuses", 0, "containerID").(string)
			ip, _ := lookup(p, "status", "podIP").(string)
			pods = append(pods, pod{name: lookup(p, "metadata", "name").(string), uid: lookup(p, "metadata", "uid").(string), ip: ip, containerID: id})
		}
		if done {
			return pods
		}
		if time.Now().After(deadline) {
			events, _ := run(cp.Kubectl(ctx, "get", "events", "--namespace="+ns))
			t.Fatalf("Deployment not rolled out after 3m: status %v, %d Pods. Events:\n%s", st, len(items), proc.Tail(events, 4000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkProbes reads the kubelet's prober metrics: every Pod's probes of
// each kind ran and succeeded, so Ready came from /healthz and /readyz as
// the kubelet called them. The service's own request counters show the
// probe requests arriving.
func checkProbes(t *testing.T, ctx context.Context, n *node.Node, ns string, pods []pod, kinds ...string) {
	// A Liveness probe first runs up to one period (10s) after startup.
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err := n.KubeletGet(ctx, "/metrics/probes")
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		var found []string
		for _, p := range pods {
			for _, kind := range kinds {
				re := regexp.MustCompile(`(?m)^prober_probe_total\{[^}]*container="hello",namespace="` + ns + `",pod="` + p.name + `",pod_uid="[^"]*",probe_type="` + kind + `",result="(\w+)"\} (\d+)`)
				counts := map[string]string{}
				for _, m := range re.FindAllStringSubmatch(string(body), -1) {
					counts[m[1]] = m[2]
				}
				if counts["successful"] == "" || counts["successful"] == "0" {
					missing = append(missing, fmt.Sprintf("%s %s %v", p.name, kind, counts))
					continue
				}
				found = append(found, fmt.Sprintf("%s: kubelet %s probe results %v", p.name, kind, counts))
			}
		}
		if len(missing) == 0 {
			for _, f := range found {
				t.Log(f)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful probe in the kubelet's metrics after 30s for: %s\n%s", strings.Join(missing, "; "), proc.Tail(string(body), 3000))
		}
		time.Sleep(time.Second)
	}
	for _, p := range pods {
		m := podMetrics(t, p)
		for _, path := range []string{"/healthz", "/readyz"} {
			c := metricValue(m, `http_requests_total{code="200",method="GET",route="`+path+`"}`)
			if c == 0 {
				t.Errorf("%s counted no GET %s: the probes did not reach the service", p.name, path)
			}
			t.Logf("%s: the service counted %d GET %s", p.name, c, path)
		}
	}
}

// podMetrics GETs /metrics from a Pod's metrics port (METRICS_ADDR in
// config/deployment.yaml) on its IP.
func podMetrics(t *testing.T, p pod) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.ip + ":9090/metrics")
	if err != nil {
		t.Fatalf("%s /metrics: %v", p.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func metricValue(exposition, series string) int {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f)
		}
	}
	return 0
}

func helloCounts(t *testing.T, pods []pod) map[string]int {
	counts := map[string]int{}
	for _, p := range pods {
		counts[p.name] = metricValue(podMetrics(t, p), `http_requests_total{code="200",method="GET",route="/hello"}`)
	}
	return counts
}

// changedConfig copies config/*.yaml into a new directory with one
// environment variable of the Deployment changed: a re-apply of it is a
// rolling update.
func changedConfig(t *testing.T, root, env, value string) string {
	dir := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(root, "config", "*.yaml"))
	changed := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		if o["kind"] == "Deployment" {
			for _, e := range lookupSlice(o, "spec", "template", "spec", "containers", 0, "env") {
				if m := e.(map[string]any); m["name"] == env {
					m["value"] = value
					changed = true
				}
			}
			if b, err = yaml.Marshal(o); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !changed {
		t.Fatalf("config/deployment.yaml sets no %s", env)
	}
	return dir
}

func report(t *testing.T, l *load) {
	t.Helper()
	t.Logf("fresh connections:      %s", &l.fresh)
	t.Logf("keep-alive connections: %s", &l.keep)
	for _, tl := range []*tally{&l.fresh, &l.keep} {
		if tl.failed.Load() != 0 || tl.ok.Load() == 0 {
			t.Errorf("lost requests (%s): %s", tl, strings.Join(tl.errs, "; "))
		}
	}
}

// followLog copies a Pod's container log as the kubelet writes it, until
// ctx ends; the returned func gives what was read so far. The kubelet
// removes the file once the Pod is gone, so it is read while it lasts.
func followLog(ctx context.Context, n *node.Node, ns string, p pod) func() string {
	path := filepath.Join(n.PodLogsDir, ns+"_"+p.name+"_"+p.uid, "hello", "0.log")
	var last []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if b, err := os.ReadFile(path); err == nil && len(b) >= len(last) {
				last = b
			}
			if strings.Contains(string(last), "shutdown: complete") {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() string {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		return string(last)
	}
}

// checkShutdownLog asserts a stopped Pod logged its shutdown phases in
// order: readiness off (and Connection: close), drain, stop accepting and
// wait, done. The times it logs place a lost request in the sequence.
func checkShutdownLog(t *testing.T, name, log string) {
	want := []string{
		"shutdown: readiness now 503, responses say Connection: close",
		"shutdown: draining",
		"shutdown: stopping server, waiting for in-flight requests",
		"shutdown: complete",
	}
	var got []string
	for _, line := range strings.Split(log, "\n") {
		// CRI log format: "<time> <stream> <tag> <the container's line>".
		f := strings.SplitN(line, " ", 4)
		if len(f) < 4 {
			continue
		}
		var rec struct {
			Time string `json:"time"`
			Msg  string `json:"msg"`
		}
		if json.Unmarshal([]byte(f[3]), &rec) == nil && strings.HasPrefix(rec.Msg, "shutdown") {
			got = append(got, rec.Msg)
			t.Logf("%s logged at %s: %s", name, rec.Time, rec.Msg)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: shutdown log lines %q, want %q; log:\n%s", name, got, want, proc.Tail(log, 3000))
	}
}

// checkProcess reads the service's process as the runtime set it up, from
// the host: /proc/<pid> and its cgroup.
func checkProcess(t *testing.T, ctx context.Context, n *node.Node, p pod) {
	pid, err := n.TaskPID(ctx, p.containerID)
	if err != nil {
		t.Fatal(err)
	}
	status := readProc(t, pid, "status")
	field := func(name string) string { return statusField(status, name) }
	for _, c := range append(restrictedStatus, statusWant{"Groups", "65532"}) {
		if got := field(c.field); got != c.want {
			t.Errorf("pid %d %s: %q, want %q", pid, c.field, got, c.want)
		}
	}
	t.Logf("pid %d: Uid %s, Gid %s, Groups %s, CapEff %s, NoNewPrivs %s, Seccomp %s", pid, field("Uid"), field("Gid"), field("Groups"), field("CapEff"), field("NoNewPrivs"), field("Seccomp"))

	// The root mount as the process sees it.
	rootRO := false
	for _, l := range strings.Split(readProc(t, pid, "mountinfo"), "\n") {
		f := strings.Fields(l)
		if len(f) > 5 && f[4] == "/" {
			rootRO = slices.Contains(strings.Split(f[5], ","), "ro")
			t.Logf("pid %d root mount options: %s", pid, f[5])
		}
	}
	if !rootRO {
		t.Errorf("pid %d: root filesystem is not mounted read-only", pid)
	}

	const limit = 64 << 20 // config/deployment.yaml: limits.memory 64Mi
	cg := processMemoryCgroup(t, pid)
	if got := cg.limit(t); got != limit {
		t.Errorf("memory cgroup %s: limit %d, want %d (64Mi)", cg.dir, got, limit)
	}
	t.Logf("memory cgroup %s: limit %d", cg.dir, limit)

	// The service set GOMEMLIMIT to 90% of the limit it found in its
	// cgroup, since the Deployment leaves GOMEMLIMIT unset.
	env := strings.Split(readProc(t, pid, "environ"), "\x00")
	if i := slices.IndexFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GOMEMLIMIT=") }); i >= 0 {
		t.Errorf("pid %d environment sets %s, which would override the 90%% of the limit", pid, env[i])
	}
	want := limit * 9 / 10
	if got := metricValue(podMetrics(t, p), "go_gc_gomemlimit_bytes"); got != want {
		t.Errorf("%s reports go_gc_gomemlimit_bytes %d, want %d (90%% of %d)", p.name, got, want, limit)
	}
	t.Logf("go_gc_gomemlimit_bytes %d in the service's metrics: 90%% of the cgroup's %d", want, limit)
}

type statusWant struct{ field, want string }

// restrictedStatus is what /proc/<pid>/status shows of a process that
// Pod Security "restricted" and the Pod's securityContext let run: uid and
// gid 65532, no capabilities, no privilege escalation, the runtime's
// seccomp filter.
var restrictedStatus = []statusWant{
	{"Uid", "65532 65532 65532 65532"},
	{"Gid", "65532 65532 65532 65532"},
	{"CapEff", "0000000000000000"},
	{"CapPrm", "0000000000000000"},
	{"CapBnd", "0000000000000000"},
	{"NoNewPrivs", "1"},
	{"Seccomp", "2"},
}

// statusField is one field of /proc/<pid>/status, its whitespace collapsed.
func statusField(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// processMemoryCgroup is the memory cgroup pid runs in, as the host sees it.
func processMemoryCgroup(t *testing.T, pid int) *memoryCgroup {
	t.Helper()
	var v2 *memoryCgroup
	for _, l := range strings.Split(readProc(t, pid, "cgroup"), "\n") {
		// cgroup v1: "ID:memory:/kubepods/..."; v2: "0::/kubepods/...".
		f := strings.SplitN(l, ":", 3)
		switch {
		case len(f) != 3:
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			return &memoryCgroup{dir: filepath.Join("/sys/fs/cgroup/memory", f[2]), v1: true}
		case f[0] == "0" && f[1] == "":
			v2 = &memoryCgroup{dir: filepath.Join("/sys/fs/cgroup", f[2])}
		}
	}
	if v2 == nil {
		t.Fatalf("pid %d is in no memory cgroup", pid)
	}
	return v2
}

func readProc(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logEphemeralStorage prints what the kubelet measures of each Pod's
// ephemeral storage (logs included), the figure the manifest's
// ephemeral-storage request and limit are sized from.
func logEphemeralStorage(t *testing.T, ctx context.Context, n *node.Node, ns string, pods []pod) {
	body, err := n.KubeletGet(ctx, "/stats/summary")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Pods []struct {
			PodRef    struct{ Name, Namespace string }
			Ephemeral *struct {
				UsedBytes uint64 `json:"usedBytes"`
			} `json:"ephemeral-storage"`
			Containers []struct {
				Name string
				Logs *struct {
					UsedBytes uint64 `json:"usedBytes"`
				}
				Rootfs *struct {
					UsedBytes uint64 `json:"usedBytes"`
				}
			}
		}
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Pods {
		if p.PodRef.Namespace != ns {
			continue
		}
		line := p.PodRef.Name + ":"
		if p.Ephemeral != nil {
			line += fmt.Sprintf(" ephemeral-storage %d bytes", p.Ephemeral.UsedBytes)
		}
		for _, c := range p.Containers {
			if c.Logs != nil {
				line += fmt.Sprintf(", %s logs %d bytes", c.Name, c.Logs.UsedBytes)
				for _, q := range pods {
					if q.name == p.PodRef.Name {
						if hello := helloCounts(t, []pod{q})[q.name]; hello > 0 {
							line += fmt.Sprintf(" after %d requests to /hello (%d bytes a request, startup lines included)", hello, int(c.Logs.UsedBytes)/hello)
						}
					}
				}
			}
			if c.Rootfs != nil {
				line += fmt.Sprintf(", %s writable layer %d bytes", c.Name, c.Rootfs.UsedBytes)
			}
		}
		t.Log(line)
	}
}

// checkFlood sends TestHeaderFloodStaysUnderThePodMemoryLimit's floods
// through the Service: 3,000 connections holding an unfinished header block
// of the largest size served, then of 30 KB. Every Pod must still run its
// first container (restartCount 0, no OOM kill in its memory cgroup) and
// the Service must answer at once; each Pod's peak memory is logged
// against its limit.
func checkFlood(t *testing.T, ctx context.Context, n *node.Node, cp *controlplane.ControlPlane, ns, svc string, pods []pod, spec podSpec) {
	maxHeader := config.Default().MaxHeaderBytes
	for _, kv := range spec.env {
		if v, ok := strings.CutPrefix(kv, "MAX_HEADER_BYTES="); ok {
			maxHeader, _ = strconv.Atoi(v)
		}
	}
	cgroups := map[string]*memoryCgroup{}
	for _, p := range pods {
		pid, err := n.TaskPID(ctx, p.containerID)
		if err != nil {
			t.Fatal(err)
		}
		cgroups[p.name] = processMemoryCgroup(t, pid)
		cgroups[p.name].resetPeak()
	}
	for _, size := range []int{maxHeader, 30 << 10} {
		conns := flood(svc, 3000, size)
		// A connection that sent too large a header block is answered 431
		// and held for net/http's 500 ms before it closes, busy, so for that
		// long the cap refuses new ones.
		took, err := answersWithin(2*time.Second, func() error {
			conn, err := net.DialTimeout("tcp", svc, time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = roundTrip(conn, "Connection: close\r\n")
			return err
		})
		if err != nil {
			t.Errorf("after a flood of %d-byte header blocks through %s: GET /hello: %v", size, svc, err)
		}
		t.Logf("GET /hello through %s answered %s after the flood of %d-byte blocks", svc, took.Round(time.Millisecond), size)
		for _, c := range conns {
			c.Close()
		}
		for _, p := range pods {
			cg := cgroups[p.name]
			t.Logf("%s after 3,000 x %d-byte unfinished header blocks through the Service: peak %.1f MiB of %d MiB, %d OOM kills",
				p.name, size, float64(cg.peak(t))/(1<<20), spec.memoryLimit>>20, cg.oomKills())
			cg.resetPeak()
		}
	}
	// The Pods learn that the flood's connections closed only as their FINs
	// cross the Service's NAT and net/http reads them; until then they hold
	// the connection cap, and the next subtest's load would lose requests on
	// connections evicted to make room (what the cap does, by design).
	for _, p := range pods {
		first := metricValue(podMetrics(t, p), "http_connections_open")
		open := first
		took, err := answersWithin(30*time.Second, func() error {
			if open = metricValue(podMetrics(t, p), "http_connections_open"); open > 8 {
				return fmt.Errorf("%d connections still open", open)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s after the floods: %v", p.name, err)
		}
		t.Logf("%s: %d connections open when the flood's were closed, %d after %s", p.name, first, open, took.Round(time.Millisecond))
	}
	items, err := listObjects(ctx, cp, ns, "pods")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range items {
		name := lookup(p, "metadata", "name")
		restarts := lookup(p, "status", "containerStatuses", 0, "restartCount")
		if restarts != 0.0 {
			t.Errorf("Pod %s: restartCount %v after the floods (last state %v)", name, restarts, lookup(p, "status", "containerStatuses", 0, "lastState"))
		}
		t.Logf("Pod %s: restartCount %v", name, restarts)
	}
	for name, cg := range cgroups {
		if k := cg.oomKills(); k != 0 {
			t.Errorf("Pod %s: %d OOM kills in its memory cgroup", name, k)
		}
	}
}
