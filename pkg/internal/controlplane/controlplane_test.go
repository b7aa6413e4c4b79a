package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/internal/testenv"
)

func TestFindReportsMissingBinaries(t *testing.T) {
	t.Setenv("HELLO_CONTROLPLANE_CACHE", t.TempDir())
	_, err := Find(t.Context(), "testdata")
	if !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Find with an empty cache: got %v, want ErrNotBuilt", err)
	}
}

func TestRecipeErrors(t *testing.T) {
	tests := []struct {
		name string
		dir  string
		want string
	}{
		{"no scratch modules", t.TempDir(), "go list -m k8s.io/kubernetes"},
		{"wrong directory", "testdata/etcd", "go list -m k8s.io/kubernetes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readRecipe(t.Context(), tt.dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("readRecipe(%q) = %v, want an error containing %q", tt.dir, err, tt.want)
			}
		})
	}
}

func TestRecipeReadsPinnedVersions(t *testing.T) {
	r, err := readRecipe(t.Context(), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.kubernetesVersion, "v1.") || !strings.HasPrefix(r.etcdVersion, "v3.6.") {
		t.Fatalf("versions %s, %s: want Kubernetes v1.x and etcd v3.6.x", r.kubernetesVersion, r.etcdVersion)
	}
	if r.kubernetesTime.IsZero() {
		t.Error("no release time for k8s.io/kubernetes: the build date would not be reproducible")
	}
	flags := r.kubeLDFlags()
	for _, want := range []string{
		"-X k8s.io/component-base/version.gitVersion=" + r.kubernetesVersion,
		"-X k8s.io/client-go/pkg/version.gitVersion=" + r.kubernetesVersion,
		"-X k8s.io/component-base/version.gitMajor=1",
	} {
		if !strings.Contains(flags, want) {
			t.Errorf("ldflags %q lack %q", flags, want)
		}
	}
}

// binaries returns the cached control plane, or skips (fails in CI) with
// how to build it.
func binaries(t *testing.T) *Binaries {
	t.Helper()
	b, err := Find(t.Context(), "testdata")
	if errors.Is(err, ErrNotBuilt) {
		testenv.Need(t, false, "the control plane ("+err.Error()+")", BuildHint)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKubeletClientCertificate(t *testing.T) {
	cp := &ControlPlane{Dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(cp.Dir, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := cp.writeKubeletClientCert()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(cp.KubeletClientCAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", cp.KubeletClientCAFile)
	}
	// What a kubelet with authentication.x509.clientCAFile checks.
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the client certificate does not verify against its CA as a client: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err == nil {
		t.Error("the client certificate also verifies as a server certificate")
	}
	if cert.Subject.CommonName != KubeletClientUser || len(cert.Subject.Organization) != 0 {
		t.Errorf("subject %s, want CN=%s and no group", cert.Subject, KubeletClientUser)
	}
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", keyFile, info.Mode().Perm())
	}
}

func TestBinariesReportPinnedVersions(t *testing.T) {
	b := binaries(t)
	tests := []struct {
		bin  string
		args []string
		want string
	}{
		{b.Etcd(), []string{"--version"}, "etcd Version: " + strings.TrimPrefix(b.EtcdVersion, "v")},
		{b.KubeAPIServer(), []string{"--version"}, "Kubernetes " + b.KubernetesVersion},
		{b.KubeControllerManager(), []string{"--version"}, "Kubernetes " + b.KubernetesVersion},
		{b.KubeScheduler(), []string{"--version"}, "Kubernetes " + b.KubernetesVersion},
		{b.Kubectl(), []string{"version", "--client"}, "Client Version: " + b.KubernetesVersion},
		{b.Kubelet(), []string{"--version"}, "Kubernetes " + b.KubernetesVersion},
		{b.KubeProxy(), []string{"--version"}, "Kubernetes " + b.KubernetesVersion},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.bin), func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), tt.bin, tt.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", tt.bin, tt.args, err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("%s %v printed %q, want %q", tt.bin, tt.args, out, tt.want)
			}
		})
	}
}

func TestStartServesTheAPI(t *testing.T) {
	b := binaries(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cp, err := Start(ctx, b, t.TempDir(), WithControllerManager(), WithScheduler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("etcd + kube-apiserver ready in %s", time.Since(start).Round(time.Millisecond))

	out, err := cp.Kubectl(ctx, "version", "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, out)
	}
	var v struct {
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("kubectl version output %q: %v", out, err)
	}
	if v.ServerVersion.GitVersion != b.KubernetesVersion {
		t.Errorf("server version %q, want %q", v.ServerVersion.GitVersion, b.KubernetesVersion)
	}

	// Only the admin token gets in, and RBAC is on: a wrong token is
	// Unauthorized and an anonymous request is Forbidden.
	pem, err := os.ReadFile(cp.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", cp.CAFile)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, tt := range []struct {
		token string
		want  int
	}{
		{"", http.StatusForbidden},
		{"not-the-token", http.StatusUnauthorized},
		{cp.token, http.StatusOK},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.URL+"/api/v1/namespaces", nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET /api/v1/namespaces with token %q: %s, want %d", tt.token, resp.Status, tt.want)
		}
	}

	// The controller manager runs: new namespaces get a default ServiceAccount.
	if out, err := cp.Kubectl(ctx, "create", "namespace", "probe").CombinedOutput(); err != nil {
		t.Fatalf("create namespace: %v\n%s", err, out)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := cp.Kubectl(ctx, "get", "serviceaccount", "default", "-n", "probe").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no default ServiceAccount after 90s (%s); kube-controller-manager log:\n%s", out, cp.Logs("kube-controller-manager", 3000))
		}
		time.Sleep(250 * time.Millisecond)
	}

	// The scheduler runs: with no node, it marks a Pod Unschedulable
	// (without a scheduler the Pod has no PodScheduled condition at all).
	if out, err := cp.Kubectl(ctx, "run", "pending", "-n", "probe", "--image=registry.invalid/none", "--restart=Never").CombinedOutput(); err != nil {
		t.Fatalf("create Pod: %v\n%s", err, out)
	}
	for i := 0; ; i++ {
		out, _ := cp.Kubectl(ctx, "get", "pod", "pending", "-n", "probe", "-o", `jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}`).Output()
		if string(out) == "Unschedulable" {
			break
		}
		if i == 240 {
			t.Fatalf("Pod not marked Unschedulable after 60s (reason %q); kube-scheduler log:\n%s", out, cp.Logs("kube-scheduler", 3000))
		}
		time.Sleep(250 * time.Millisecond)
	}

	// ...and the CA that Pods trust is the API server's CA alone.
	for i := 0; ; i++ {
		out, err = cp.Kubectl(ctx, "get", "configmap", "kube-root-ca.crt", "-n", "probe", "-o", `jsonpath={.data.ca\.crt}`).Output()
		if err == nil {
			break
		}
		if i == 120 {
			t.Fatalf("no kube-root-ca.crt ConfigMap after 30s: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if string(out) != string(pem) {
		t.Errorf("kube-root-ca.crt holds %q, want the CA %q", out, pem)
	}

	// kube-apiserver's identity towards kubelets may use the kubelet API
	// (exec, attach, logs go through nodes/proxy) and nothing else.
	for _, tt := range []struct{ verb, resource, subresource, want string }{
		{"create", "nodes", "proxy", "yes"},
		{"get", "nodes", "log", "yes"},
		{"get", "pods", "", "no"},
		{"get", "secrets", "", "no"},
	} {
		args := []string{"auth", "can-i", tt.verb, tt.resource, "--subresource=" + tt.subresource, "--as=" + KubeletClientUser}
		out, _ := cp.Kubectl(ctx, args...).Output()
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("kubectl %s: %q, want %q", strings.Join(args, " "), got, tt.want)
		}
	}

	if err := cp.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, p := range cp.procs {
		if !p.Exited() {
			t.Errorf("%s still running after Close", p.Name)
		}
	}
}
