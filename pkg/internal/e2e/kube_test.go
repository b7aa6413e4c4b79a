package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"

	"github.com/kobuilt/hello/pkg/internal/controlplane"
	"github.com/kobuilt/hello/pkg/internal/proc"
	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// object is a Kubernetes object as kubectl prints it in JSON.
type object = map[string]any

// The objects config/ must deploy, by kind.
var configKinds = []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"}

// TestKubernetes deploys config/ to a real kube-apiserver with the real ko
// CLI, the way the README tells a user to, into a namespace that enforces
// the "restricted" Pod Security Standard.
func TestKubernetes(t *testing.T) {
	root := repoRoot(t)
	bins := kubeBinaries(t, root)
	fix := harness(t)

	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	cp := kubeControlPlane(t, ctx, bins)
	ko := fix.Ko(root)
	// As in a user's shell: kubectl on PATH (ko apply runs it), KUBECONFIG set.
	ko.Env = cp.Env()
	repo := ko.DockerRepo

	want := loadConfig(t, root)

	var image string // what ko apply stored, repo@sha256:...
	t.Run("ko apply", func(t *testing.T) {
		ns := restrictedNamespace(t, ctx, cp, "hello-ko-apply")
		stdout, stderr, err := output(ko.Command(ctx, "apply", "-f", "config/", "--", "--namespace="+ns))
		if err != nil {
			t.Fatalf("go tool ko apply -f config/: %v\n%s", err, proc.Tail(stderr, 6000))
		}
		t.Logf("kubectl said:\n%s", stdout)
		noWarnings(t, stdout+stderr)
		published := publishedRef(t, stderr)

		got := storedObjects(t, ctx, cp, ns)
		image = checkImage(t, got["Deployment"], repo, published)
		checkStored(t, want, got, image)
	})
	if image == "" {
		t.Fatal("ko apply stored no image; the checks below need it")
	}

	t.Run("broken copies are rejected", func(t *testing.T) {
		ns := restrictedNamespace(t, ctx, cp, "hello-broken")
		checkRejections(t, ctx, cp, ns, resolve(want["Deployment"], image))
	})

	t.Run("kustomize | ko resolve | kubectl apply", func(t *testing.T) {
		ns := restrictedNamespace(t, ctx, cp, "hello-kustomize")
		kustomize := cp.Kubectl(ctx, "kustomize", "config")
		kustomize.Dir = root
		resolveCmd := ko.Command(ctx, "resolve", "-f", "-")
		apply := cp.Kubectl(ctx, "apply", "-f", "-", "--namespace="+ns)
		stdout, stderrs, err := pipeline(kustomize, resolveCmd, apply)
		if err != nil {
			t.Fatalf("kubectl kustomize config | go tool ko resolve -f - | kubectl apply -f -: %v\n%s", err, proc.Tail(strings.Join(stderrs, "\n"), 6000))
		}
		t.Logf("kubectl said:\n%s", stdout)
		noWarnings(t, stdout+stderrs[2])
		published := publishedRef(t, stderrs[1])

		got := storedObjects(t, ctx, cp, ns)
		img := checkImage(t, got["Deployment"], repo, published)
		checkStored(t, want, got, img)
		// ko builds reproducibly: the same commit gives the same digest
		// whichever way the manifests reach it.
		if img != image {
			t.Logf("digest differs from ko apply's (%s vs %s): the tree changed between the builds", img, image)
		}
	})

	t.Run("controller manager creates restricted Pods", func(t *testing.T) {
		checkRollout(t, ctx, cp, "hello-ko-apply", image)
	})

	// Last: ko apply -f config/ above ran on a cluster without these CRDs.
	t.Run("kubectl apply -f config/monitoring/ with the Prometheus Operator's CRDs", func(t *testing.T) {
		checkMonitoringObjects(t, ctx, root, cp)
	})
}

// kubeBinaries finds the cached control plane, or skips (fails in CI) with
// how to build it.
func kubeBinaries(t *testing.T, root string) *controlplane.Binaries {
	t.Helper()
	return cached(t, "the Kubernetes control plane", controlplane.Find, filepath.Join(root, "pkg", "internal", "controlplane", "testdata"), controlplane.ErrNotBuilt, controlplane.BuildHint)
}

// cached returns what find finds in the cache for the recipe in dir, or
// skips (fails in CI) with hint when it is not built (find's error wraps
// notBuilt).
func cached[B any](t *testing.T, what string, find func(context.Context, string) (B, error), dir string, notBuilt error, hint string) B {
	t.Helper()
	bins, err := find(t.Context(), dir)
	if errors.Is(err, notBuilt) {
		testenv.Need(t, false, what+" ("+err.Error()+")", hint)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bins
}

func kubeControlPlane(t *testing.T, ctx context.Context, bins *controlplane.Binaries) *controlplane.ControlPlane {
	t.Helper()
	start := time.Now()
	cp, err := controlplane.Start(ctx, bins, t.TempDir(), controlplane.WithControllerManager())
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Logf("Kubernetes %s (etcd %s) ready in %s at %s", bins.KubernetesVersion, bins.EtcdVersion, time.Since(start).Round(time.Millisecond), cp.URL)
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{"kube-apiserver", "kube-controller-manager"} {
				t.Logf("%s log tail:\n%s", c, cp.Logs(c, 3000))
			}
		}
		if err := cp.Close(); err != nil {
			t.Error(err)
		}
	})
	return cp
}

// restrictedNamespace creates a namespace that enforces, warns about and
// audits the "restricted" Pod Security Standard, and waits for its default
// ServiceAccount (made by the controller manager), without which no Pod can
// be admitted.
func restrictedNamespace(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, name string) string {
	t.Helper()
	ns := object{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata": object{
			"name": name,
			"labels": object{
				"pod-security.kubernetes.io/enforce":         "restricted",
				"pod-security.kubernetes.io/enforce-version": "latest",
				"pod-security.kubernetes.io/warn":            "restricted",
				"pod-security.kubernetes.io/warn-version":    "latest",
				"pod-security.kubernetes.io/audit":           "restricted",
				"pod-security.kubernetes.io/audit-version":   "latest",
			},
		},
	}
	if _, err := kubectlStdin(ctx, cp, ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, err := run(cp.Kubectl(ctx, "get", "serviceaccount", "default", "--namespace="+name))
		if err == nil {
			return name
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s has no default ServiceAccount after 90s: %v", name, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// loadConfig reads config/*.yaml, the files ko apply -f config/ sends, by kind.
func loadConfig(t *testing.T, root string) map[string]object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "config", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no config/*.yaml (err %v)", err)
	}
	objs := map[string]object{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		kind, _ := o["kind"].(string)
		if _, dup := objs[kind]; dup {
			t.Fatalf("%s: a second %s in config/", f, kind)
		}
		objs[kind] = o
	}
	for _, k := range configKinds {
		if objs[k] == nil {
			t.Errorf("config/ has no %s", k)
		}
	}
	return objs
}

// storedObjects reads back what the API server stored in ns, by kind.
func storedObjects(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns string) map[string]object {
	t.Helper()
	out, err := run(cp.Kubectl(ctx, "get", "--namespace="+ns, "-o", "json",
		"deployment/hello", "service/hello", "poddisruptionbudget/hello", "horizontalpodautoscaler/hello", "networkpolicy/hello"))
	if err != nil {
		t.Fatalf("read back the applied objects: %v", err)
	}
	var list struct{ Items []object }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("kubectl get -o json: %v", err)
	}
	got := map[string]object{}
	for _, o := range list.Items {
		got[o["kind"].(string)] = o
	}
	for _, k := range configKinds {
		if got[k] == nil {
			t.Errorf("no %s stored in %s", k, ns)
		}
	}
	return got
}

var (
	publishedRE = regexp.MustCompile(`Published (\S+@sha256:[0-9a-f]{64})`)
	warningRE   = regexp.MustCompile(`^Warning: |PodSecurity`)
)

// publishedRef is the image ko reports having pushed.
func publishedRef(t *testing.T, koLog string) string {
	t.Helper()
	m := publishedRE.FindAllStringSubmatch(koLog, -1)
	if len(m) != 1 {
		t.Fatalf("want one \"Published <ref>\" line from ko, got %d in:\n%s", len(m), proc.Tail(koLog, 4000))
	}
	return m[0][1]
}

func noWarnings(t *testing.T, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if warningRE.MatchString(line) {
			t.Errorf("the API server warned: %s", line)
		}
	}
}

// checkImage asserts the Deployment runs repo/...@sha256:<digest>, the image
// ko reported, and that the registry serves that digest under the tag ko
// pushed. It returns the stored reference.
func checkImage(t *testing.T, deploy object, repo, published string) string {
	t.Helper()
	img, _ := lookup(deploy, "spec", "template", "spec", "containers", 0, "image").(string)
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(repo) + `/[a-z0-9._-]+@sha256:[0-9a-f]{64}$`).MatchString(img) {
		t.Fatalf("stored image %q is not %s/<name>@sha256:<digest>", img, repo)
	}
	if img != published {
		t.Errorf("stored image %s, but ko published %s", img, published)
	}
	ref, err := name.ParseReference(img)
	if err != nil {
		t.Fatal(err)
	}
	dig := ref.(name.Digest)
	desc, err := remote.Head(dig.Context().Tag("latest"))
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	if desc.Digest.String() != dig.DigestStr() {
		t.Errorf("registry has %s:latest at %s, Deployment runs %s", dig.Context(), desc.Digest, dig.DigestStr())
	}
	if !desc.MediaType.IsIndex() {
		t.Errorf("%s is a %s, want a multi-platform index", img, desc.MediaType)
	}
	t.Logf("stored image %s = %s:latest in the registry (%s)", img, dig.Context(), desc.MediaType)
	return img
}

// checkStored asserts every field set in config/ came back unchanged: the
// API server's defaulting and admission only added fields.
func checkStored(t *testing.T, want, got map[string]object, image string) {
	t.Helper()
	for _, kind := range configKinds {
		w := resolve(want[kind], image)
		var diffs []string
		subset(kind, w, got[kind], &diffs)
		for _, d := range diffs {
			t.Errorf("stored %s", d)
		}
	}
}

// resolve is what ko does to the manifest: the ko:// reference replaced by
// the built image. Other objects come back as deep copies.
func resolve(o object, image string) object {
	b, _ := json.Marshal(o)
	b = bytes.ReplaceAll(b, []byte(`"ko://./cmd/hello"`), []byte(`"`+image+`"`))
	var c object
	_ = json.Unmarshal(b, &c)
	return c
}

// subset records every path where want has a value that got lacks or differs from.
func subset(path string, want, got any, diffs *[]string) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: %v, want an object", path, got))
			return
		}
		for k, v := range w {
			subset(path+"."+k, v, g[k], diffs)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %v, want %v", path, got, want))
			return
		}
		for i := range w {
			subset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], diffs)
		}
	default:
		if !reflect.DeepEqual(want, got) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %v, want %v", path, got, want))
		}
	}
}

// checkRejections dry-runs broken copies of the resolved Deployment, and of
// a Pod made from its template, through the API server: each must be
// refused, and the unbroken originals accepted by the same command, so the
// check can fail in both directions.
func checkRejections(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns string, deploy object) {
	pod := func(o object) object {
		tmpl := lookup(o, "spec", "template").(map[string]any)
		meta := tmpl["metadata"].(map[string]any)
		return object{
			"apiVersion": "v1",
			"kind":       "Pod",
			"metadata":   object{"name": "hello-admission", "labels": meta["labels"]},
			"spec":       tmpl["spec"],
		}
	}
	container := func(o object) object {
		return lookup(o, "spec", "template", "spec", "containers", 0).(map[string]any)
	}
	containerSC := func(o object) object { return container(o)["securityContext"].(map[string]any) }
	podSC := func(o object) object {
		return lookup(o, "spec", "template", "spec", "securityContext").(map[string]any)
	}

	tests := []struct {
		name   string
		mutate func(object)
		asPod  bool
		// Pod Security admission only warns about workload objects; make
		// the warning an error to see it.
		strict bool
		want   []string // all in the error output; none means accepted
	}{
		{name: "Deployment as shipped", strict: true},
		{name: "Pod from its template as shipped", asPod: true},
		{
			name:   "unknown field",
			mutate: func(o object) { container(o)["securityContxt"] = object{"privileged": false} },
			want:   []string{`unknown field "spec.template.spec.containers[0].securityContxt"`},
		},
		{
			name:   "privileged Deployment",
			mutate: func(o object) { containerSC(o)["privileged"] = true; containerSC(o)["allowPrivilegeEscalation"] = true },
			strict: true,
			want:   []string{`would violate PodSecurity "restricted:latest"`, "privileged"},
		},
		{
			name:   "privileged Pod",
			mutate: func(o object) { containerSC(o)["privileged"] = true; containerSC(o)["allowPrivilegeEscalation"] = true },
			asPod:  true,
			want:   []string{`violates PodSecurity "restricted:latest"`, "privileged"},
		},
		{
			name:   "Pod running as root",
			mutate: func(o object) { podSC(o)["runAsNonRoot"] = false; podSC(o)["runAsUser"] = 0 },
			asPod:  true,
			want:   []string{`violates PodSecurity "restricted:latest"`, "runAsNonRoot", "runAsUser=0"},
		},
		{
			name: "Pod keeping capabilities and no seccomp",
			mutate: func(o object) {
				delete(containerSC(o), "capabilities")
				delete(podSC(o), "seccompProfile")
			},
			asPod: true,
			want:  []string{`violates PodSecurity "restricted:latest"`, "unrestricted capabilities", "seccompProfile"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := deepCopy(deploy)
			if tt.mutate != nil {
				tt.mutate(o)
			}
			if tt.asPod {
				o = pod(o)
			}
			args := []string{"apply", "--dry-run=server", "--namespace=" + ns, "-f", "-"}
			if tt.strict {
				args = append([]string{"--warnings-as-errors"}, args...)
			}
			out, err := kubectlStdin(ctx, cp, o, args...)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("kubectl %s refused the manifest as shipped: %v", strings.Join(args, " "), err)
				}
				noWarnings(t, out)
				return
			}
			if err == nil {
				t.Fatalf("kubectl %s accepted the broken copy:\n%s", strings.Join(args, " "), out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			t.Logf("refused: %s", firstLine(err.Error(), "Error", "Warning", "error:"))
		})
	}
}

// checkRollout waits for kube-controller-manager to turn the Deployment
// into a ReplicaSet and Pods: Pods exist only if they passed "restricted"
// enforcement at admission. The HPA's minReplicas (2) must win over the
// Deployment's default of 1. No kubelet runs, so the Pods stay Pending.
func checkRollout(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns, image string) {
	deadline := time.Now().Add(3 * time.Minute)
	var pods []object
	var replicas float64
	for {
		var err error
		pods, err = listObjects(ctx, cp, ns, "pods")
		if err != nil {
			t.Fatal(err)
		}
		d, err := listObjects(ctx, cp, ns, "deployment/hello")
		if err != nil {
			t.Fatal(err)
		}
		replicas, _ = lookup(d[0], "spec", "replicas").(float64)
		if len(pods) == 2 && replicas == 2 {
			break
		}
		// A Pod refused at admission shows up as a FailedCreate event on
		// the ReplicaSet; no point waiting for the deadline then.
		if refused := failedCreates(t, ctx, cp, ns); refused != "" {
			t.Fatalf("the ReplicaSet's Pods were refused:\n%s", refused)
		}
		if time.Now().After(deadline) {
			events, _ := run(cp.Kubectl(ctx, "get", "events", "--namespace="+ns))
			t.Fatalf("after 3m: %d Pods, Deployment replicas %v; want 2 and 2 (HPA minReplicas). Events:\n%s\nkube-controller-manager log:\n%s",
				len(pods), replicas, events, cp.Logs("kube-controller-manager", 4000))
		}
		time.Sleep(time.Second)
	}
	rs, err := listObjects(ctx, cp, ns, "replicasets")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || lookup(rs[0], "metadata", "ownerReferences", 0, "name") != "hello" {
		t.Errorf("want one ReplicaSet owned by Deployment hello, got %d", len(rs))
	}
	for _, p := range pods {
		pname := lookup(p, "metadata", "name")
		if got := lookup(p, "spec", "containers", 0, "image"); got != image {
			t.Errorf("Pod %s runs %v, want %s", pname, got, image)
		}
		if got := lookup(p, "metadata", "ownerReferences", 0, "kind"); got != "ReplicaSet" {
			t.Errorf("Pod %s owned by %v, want a ReplicaSet", pname, got)
		}
		if got := lookup(p, "spec", "automountServiceAccountToken"); got != false {
			t.Errorf("Pod %s automountServiceAccountToken %v", pname, got)
		}
		for _, v := range lookupSlice(p, "spec", "volumes") {
			t.Errorf("Pod %s got a volume %v: no service-account token should be mounted", pname, v)
		}
	}
	if refused := failedCreates(t, ctx, cp, ns); refused != "" {
		t.Errorf("Pods refused at admission:\n%s", refused)
	}
	t.Logf("ReplicaSet %v created %d Pods with image %s; HPA set replicas to %v", lookup(rs[0], "metadata", "name"), len(pods), image, replicas)
}

// failedCreates lists the messages of FailedCreate events in ns, one a line.
func failedCreates(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns string) string {
	t.Helper()
	out, err := run(cp.Kubectl(ctx, "get", "events", "--namespace="+ns, "--field-selector=reason=FailedCreate",
		"-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func listObjects(ctx context.Context, cp *controlplane.ControlPlane, ns, what string) ([]object, error) {
	out, err := run(cp.Kubectl(ctx, "get", what, "--namespace="+ns, "-o", "json"))
	if err != nil {
		return nil, err
	}
	var o object
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		return nil, fmt.Errorf("kubectl get %s: %w", what, err)
	}
	if o["kind"] != "List" {
		return []object{o}, nil
	}
	var items []object
	for _, it := range lookupSlice(o, "items") {
		items = append(items, it.(map[string]any))
	}
	return items, nil
}

// kubectlStdin runs kubectl with o as its -f - input. The error carries
// kubectl's stderr, where the API server's refusal and warnings appear.
func kubectlStdin(ctx context.Context, cp *controlplane.ControlPlane, o object, args ...string) (string, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return "", err
	}
	cmd := cp.Kubectl(ctx, args...)
	cmd.Stdin = bytes.NewReader(b)
	stdout, stderr, err := output(cmd)
	if err != nil {
		return stdout, fmt.Errorf("%w\n%s%s", err, stdout, stderr)
	}
	return stdout + stderr, nil
}

func output(cmd *exec.Cmd) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// pipeline runs cmds as a shell pipeline with pipefail: it returns the last
// command's stdout, every command's stderr and the first failure.
func pipeline(cmds ...*exec.Cmd) (string, []string, error) {
	stderrs := make([]bytes.Buffer, len(cmds))
	var stdout bytes.Buffer
	for i, c := range cmds {
		c.Stderr = &stderrs[i]
		if i > 0 {
			r, w := io.Pipe()
			cmds[i-1].Stdout = w
			c.Stdin = r
		}
	}
	cmds[len(cmds)-1].Stdout = &stdout
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Run()
			// Close both ends so neighbours see EOF or EPIPE instead of
			// waiting forever when one side fails.
			if w, ok := c.Stdout.(*io.PipeWriter); ok {
				w.CloseWithError(errs[i])
			}
			if r, ok := c.Stdin.(*io.PipeReader); ok {
				r.Close()
			}
		}()
	}
	wg.Wait()
	out := make([]string, len(cmds))
	for i := range stderrs {
		out[i] = stderrs[i].String()
	}
	for i, err := range errs {
		if err != nil {
			return stdout.String(), out, fmt.Errorf("%s: %w", filepath.Base(cmds[i].Args[0])+" "+strings.Join(cmds[i].Args[1:], " "), err)
		}
	}
	return stdout.String(), out, nil
}

// lookup walks o by map keys and slice indexes; nil when absent.
func lookup(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := o.(map[string]any)
			if !ok {
				return nil
			}
			o = m[k]
		case int:
			s, ok := o.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			o = s[k]
		}
	}
	return o
}

func lookupSlice(o any, path ...any) []any {
	s, _ := lookup(o, path...).([]any)
	return s
}

func deepCopy(o object) object {
	b, _ := json.Marshal(o)
	var c object
	_ = json.Unmarshal(b, &c)
	return c
}

// firstLine returns the first line of s containing any of marks.
func firstLine(s string, marks ...string) string {
	for _, l := range strings.Split(s, "\n") {
		if slices.ContainsFunc(marks, func(m string) bool { return strings.Contains(l, m) }) {
			return l
		}
	}
	return s
}
