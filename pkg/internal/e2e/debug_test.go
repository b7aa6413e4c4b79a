package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/internal/airgap"
	"github.com/kobuilt/hello/pkg/internal/controlplane"
	"github.com/kobuilt/hello/pkg/internal/proc"
	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// debugger is the name of the ephemeral container checkDebug attaches.
const debugger = "debugger"

// pushBusybox pushes the busybox stand-in (airgap.Busybox, from Debian's
// busybox-static) to the harness registry and returns it by digest.
func pushBusybox(t *testing.T, ctx context.Context, fix *fixture) string {
	t.Helper()
	_, err := exec.LookPath("busybox")
	testenv.Need(t, err == nil, "busybox", "apt-get install busybox-static")
	ref, err := airgap.PushBusybox(ctx, fix.Registry.Host()+"/busybox")
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// checkDebug does what docs/kubernetes.md tells users to do with a Pod whose
// image has no shell: attach an ephemeral busybox container with `kubectl
// debug --profile=restricted --target=hello` and look at the service's
// process from it with `kubectl exec`. It also shows that the default
// profile is refused in a "restricted" namespace, and what the restricted
// one forbids.
func checkDebug(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns string, p pod, image string) {
	kubectl := func(args ...string) (string, string, error) {
		stdout, stderr, err := output(cp.Kubectl(ctx, args...))
		// NULs: /proc/<pid>/environ.
		t.Logf("$ kubectl %s\n%s%s", strings.Join(args, " "), strings.ReplaceAll(stdout, "\x00", "\n"), stderr)
		return stdout, stderr, err
	}

	// The default profile ("general") asks for what "restricted" forbids.
	_, stderr, err := kubectl("debug", "--namespace="+ns, p.name, "--image="+image, "--target=hello", "-c", "refused", "--", "sleep", "3600")
	if err == nil {
		t.Fatal("kubectl debug with the default profile was admitted into a restricted namespace")
	}
	if !strings.Contains(stderr, `violates PodSecurity "restricted:latest"`) {
		t.Errorf("kubectl debug with the default profile failed, but not for Pod Security: %s", stderr)
	}

	start := time.Now()
	if _, _, err := kubectl("debug", "--namespace="+ns, p.name, "--image="+image, "--profile=restricted", "--target=hello", "-c", debugger, "--", "sleep", "3600"); err != nil {
		t.Fatalf("kubectl debug --profile=restricted: %v", err)
	}
	admitted := time.Since(start)
	waitEphemeralRunning(t, ctx, cp, ns, p.name)
	t.Logf("ephemeral container admitted after %s, running after %s", admitted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	inDebugger := func(cmd ...string) (string, string, error) {
		return kubectl(append([]string{"exec", "--namespace=" + ns, p.name, "-c", debugger, "--"}, cmd...)...)
	}
	mustExec := func(cmd ...string) string {
		t.Helper()
		out, _, err := inDebugger(cmd...)
		if err != nil {
			t.Fatalf("kubectl exec %s: %v", strings.Join(cmd, " "), err)
		}
		return out
	}

	// --target shares the hello container's PID namespace: its process is
	// there, under the user the debug image's /etc/passwd names.
	pid := ""
	lines := strings.Split(mustExec("ps"), "\n")
	// "PID USER COMMAND" (Debian's busybox has no TIME column).
	cmdCol := slices.Index(strings.Fields(lines[0]), "COMMAND")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if cmdCol >= 2 && len(f) > cmdCol && f[cmdCol] == "/ko-app/hello" {
			pid = f[0]
			if f[1] != "nonroot" {
				t.Errorf("ps: /ko-app/hello runs as %s, want nonroot", f[1])
			}
		}
	}
	if pid == "" {
		t.Fatal("ps in the debug container does not list /ko-app/hello")
	}
	if got := statusField(mustExec("cat", "/proc/"+pid+"/status"), "Uid"); got != "65532 65532 65532 65532" {
		t.Errorf("hello (pid %s) Uid %q, want 65532", pid, got)
	}

	// Its environment is the Deployment's.
	env := strings.Split(mustExec("cat", "/proc/"+pid+"/environ"), "\x00")
	for _, want := range podEnv(t, ctx, cp, ns, p.name) {
		if !slices.Contains(env, want) {
			t.Errorf("hello's environment lacks %s", want)
		}
	}

	// Its open files include the two listeners (PORT and METRICS_ADDR).
	fds := mustExec("ls", "-l", "/proc/"+pid+"/fd")
	listen := mustExec("netstat", "-tln")
	// Which of them are the listeners: the network namespace's TCP tables
	// give each listening socket's port and inode (what `netstat -p`
	// matches; Debian's busybox netstat has no -p).
	tables := mustExec("grep", "-h", " 0A ", "/proc/"+pid+"/net/tcp", "/proc/"+pid+"/net/tcp6")
	for _, port := range []int{8080, 9090} {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^tcp.*:%d .*LISTEN`, port)).MatchString(listen) {
			t.Errorf("netstat -tln shows nothing listening on port %d", port)
		}
		inode := ""
		for _, l := range strings.Split(tables, "\n") {
			// sl local_address rem_address st ... inode; st 0A is LISTEN.
			f := strings.Fields(l)
			if len(f) >= 10 && f[3] == "0A" && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
				inode = f[9]
			}
		}
		if inode == "" || !strings.Contains(fds, "socket:["+inode+"]") {
			t.Errorf("the listener on port %d (inode %q) is not among hello's open files", port, inode)
		}
	}

	// Same network namespace: localhost is the service.
	if got := mustExec("wget", "-qO-", "localhost:8080/hello"); got != "Hello!" {
		t.Errorf("wget localhost:8080/hello printed %q, want Hello!", got)
	}

	// kubectl logs takes the same way to the kubelet as exec: the access
	// log line of that request is there.
	logs, _, err := kubectl("logs", "--namespace="+ns, p.name, "-c", "hello", "--tail=1")
	if err != nil || !strings.Contains(logs, `"path":"/hello"`) {
		t.Errorf("kubectl logs -c hello --tail=1: %v, %q; want the access log line of GET /hello", err, logs)
	}

	// What "restricted" leaves the debug container: the Pod's user, no
	// capabilities, no privilege escalation, the runtime's seccomp filter.
	self := mustExec("cat", "/proc/self/status")
	for _, c := range restrictedStatus {
		if got := statusField(self, c.field); got != c.want {
			t.Errorf("debug container %s: %q, want %q", c.field, got, c.want)
		}
	}

	// Reading hello's memory passes the same kernel check as ptrace, which
	// containerd's RuntimeDefault seccomp profile allows (kernel >= 4.8).
	// The profile does not decide it: hello has the debug container's uid
	// and no capability more, so only Yama's ptrace_scope >= 1 refuses
	// (hello is not the debugger's descendant). Its first mapping starts
	// with the binary's ELF header.
	first, _, _ := strings.Cut(mustExec("head", "-n1", "/proc/"+pid+"/maps"), "-")
	addr, err := strconv.ParseUint(first, 16, 64)
	if err != nil {
		t.Fatalf("/proc/%s/maps: %v", pid, err)
	}
	mem, stderr, err := inDebugger("dd", "if=/proc/"+pid+"/mem", "bs=4", "count=1", "skip="+strconv.FormatUint(addr/4, 10))
	readable := err == nil && mem == "\x7fELF"
	scope := "none"
	if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil {
		scope = strings.TrimSpace(string(b))
	}
	if want := scope == "none" || scope == "0"; readable != want {
		t.Errorf("hello's memory readable from the debug container: %v, want %v with Yama ptrace_scope %s (%q, %s)", readable, want, scope, mem, stderr)
	}
	t.Logf("Yama ptrace_scope on this node: %s; hello's memory readable from the debug container: %v", scope, readable)

	// hello's root is readable through /proc, and stays read-only.
	if ls := mustExec("ls", "-l", "/proc/"+pid+"/root/ko-app"); !strings.Contains(ls, "hello") {
		t.Errorf("ls /proc/%s/root/ko-app shows no hello binary", pid)
	}
	_, stderr, err = inDebugger("touch", "/proc/"+pid+"/root/tmp/written-by-debugger")
	if err == nil {
		t.Error("the debug container wrote into hello's root filesystem")
	} else if !strings.Contains(stderr, "Read-only file system") {
		t.Errorf("writing into hello's root failed, but not because it is read-only: %s", stderr)
	}
}

// waitEphemeralRunning polls the Pod's status until its ephemeral
// container debugger runs.
func waitEphemeralRunning(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns, podName string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		state, err := run(cp.Kubectl(ctx, "get", "pod", podName, "--namespace="+ns, "-o",
			`jsonpath={.status.ephemeralContainerStatuses[?(@.name=="`+debugger+`")].state}`))
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		_ = json.Unmarshal([]byte(state), &s)
		if s["running"] != nil {
			return
		}
		if s["terminated"] != nil {
			t.Fatalf("ephemeral container %s ended: %s", debugger, state)
		}
		if time.Now().After(deadline) {
			events, _ := run(cp.Kubectl(ctx, "get", "events", "--namespace="+ns))
			t.Fatalf("ephemeral container %s not running after 2m (state %s). Events:\n%s", debugger, state, proc.Tail(events, 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// podEnv is the hello container's environment as the Pod spec sets it,
// NAME=value.
func podEnv(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns, podName string) []string {
	t.Helper()
	items, err := listObjects(ctx, cp, ns, "pod/"+podName)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, e := range lookupSlice(items[0], "spec", "containers", 0, "env") {
		name, _ := lookup(e, "name").(string)
		if v, ok := lookup(e, "value").(string); ok {
			env = append(env, name+"="+v)
		}
	}
	if len(env) == 0 {
		t.Fatalf("Pod %s sets no environment variable in its spec", podName)
	}
	return env
}
