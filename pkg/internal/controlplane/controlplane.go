// Package controlplane runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver and, optionally, kube-controller-manager and kube-scheduler,
// built from the Go module proxy and listening on 127.0.0.1 only.
//
// No cluster image can be pulled where the tests run, but the control plane
// is plain Go: Build compiles it once from the scratch modules in testdata
// (kept out of this module's go.mod) and caches the binaries by version, and
// Start brings up a fresh, private instance in seconds. Objects are stored,
// defaulted, validated and admitted exactly as in a cluster, and the
// controller manager turns Deployments into ReplicaSets and Pods; containers
// run only once pkg/internal/node adds a kubelet (Build compiles it and
// kube-proxy with the rest, from the same release).
package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/kobuilt/hello/pkg/internal/loopback"
	"github.com/kobuilt/hello/pkg/internal/proc"
)

// Option configures Start.
type Option func(*options)

type options struct {
	controllerManager bool
	scheduler         bool
}

// WithControllerManager also runs kube-controller-manager, so Deployments get
// ReplicaSets and Pods, and namespaces get their default ServiceAccount.
func WithControllerManager() Option { return func(o *options) { o.controllerManager = true } }

// WithScheduler also runs kube-scheduler, so Pods get bound to a node (see
// pkg/internal/node); without a node they stay Pending either way.
func WithScheduler() Option { return func(o *options) { o.scheduler = true } }

// readyTimeout bounds each wait for a component: the first start on a busy
// 2-core machine is slow.
const readyTimeout = 2 * time.Minute

// The address ranges the cluster uses: Services get ClusterIPs from
// ServiceCIDR, Pods get addresses from PodCIDR (the node's CNI config).
const (
	ServiceCIDR = "10.96.0.0/16"
	PodCIDR     = "10.244.0.0/16"
)

// ControlPlane is a running etcd and kube-apiserver (and maybe
// kube-controller-manager and kube-scheduler). Close stops them.
type ControlPlane struct {
	Binaries   *Binaries
	Dir        string // state: etcd data, certificates, keys, logs, kubeconfig
	URL        string // https://127.0.0.1:<port>
	Kubeconfig string // admin kubeconfig (system:masters, via a bearer token)
	CAFile     string // the CA (PEM) that signed the API server's certificate
	// KubeletClientCAFile signed kube-apiserver's kubelet client
	// certificate: a kubelet that trusts it (authentication.x509.clientCAFile)
	// serves `kubectl exec`, `attach` and `logs` through the API server.
	KubeletClientCAFile string

	token string
	procs []*proc.Process
	once  sync.Once
	err   error
}

// Start runs a fresh control plane in dir (an empty directory the caller
// owns, such as t.TempDir()) and returns once kube-apiserver's /readyz is OK.
func Start(ctx context.Context, bins *Binaries, dir string, opts ...Option) (*ControlPlane, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cp := &ControlPlane{Binaries: bins, Dir: dir}
	if err := cp.start(ctx, o); err != nil {
		cerr := cp.Close()
		return nil, errors.Join(err, cerr)
	}
	return cp, nil
}

func (cp *ControlPlane) start(ctx context.Context, o options) error {
	for _, d := range []string{"etcd", "pki"} {
		if err := os.MkdirAll(filepath.Join(cp.Dir, d), 0o700); err != nil {
			return fmt.Errorf("create %s dir: %w", d, err)
		}
	}
	ports, err := loopback.FreePorts(5)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcd, err := cp.spawn("etcd", cp.Binaries.Etcd(),
		"--name=default",
		"--data-dir="+filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--listen-metrics-urls=",
		// Test data is thrown away: durability is not worth the fsyncs.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, etcd, http.DefaultClient, etcdURL+"/health", "", readyTimeout); err != nil {
		return fmt.Errorf("etcd did not become healthy: %w", err)
	}

	// Service-account tokens are signed with a key made for this instance.
	saKey, saPub, err := cp.writeServiceAccountKeys()
	if err != nil {
		return err
	}
	cp.token, err = randomToken()
	if err != nil {
		return err
	}
	tokens := filepath.Join(cp.Dir, "tokens.csv")
	// token,user,uid,"groups": the admin is in system:masters, which RBAC
	// lets do anything, as kubeadm's admin.conf does.
	if err := os.WriteFile(tokens, []byte(cp.token+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}

	kubeletCert, kubeletKey, err := cp.writeKubeletClientCert()
	if err != nil {
		return err
	}

	certDir := filepath.Join(cp.Dir, "pki")
	api, err := cp.spawn("kube-apiserver", cp.Binaries.KubeAPIServer(),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		// Generates a self-signed CA and serving certificate for 127.0.0.1.
		"--cert-dir="+certDir,
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saPub,
		"--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range="+ServiceCIDR,
		// How it reaches a kubelet for exec, attach and logs: by the node's
		// InternalIP (pkg/internal/node registers one; its name resolves
		// nowhere), as KubeletClientUser.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-client-certificate="+kubeletCert,
		"--kubelet-client-key="+kubeletKey,
		// As in kubeadm and kind: privileged Pods are allowed by the cluster,
		// so it is Pod Security admission that must refuse them.
		"--allow-privileged=true",
		// The default reconciler would publish 127.0.0.1 as the endpoint of
		// the kubernetes Service, which validation refuses over and over.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=0",
	)
	if err != nil {
		return err
	}
	cp.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	// The certificate appears a moment after the process starts; until then
	// nothing can be verified, and skipping verification is not an option.
	client, err := waitForCA(ctx, api, filepath.Join(certDir, "apiserver.crt"), readyTimeout)
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, api, client, cp.URL+"/readyz", cp.token, readyTimeout); err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	if err := cp.writeCA(filepath.Join(certDir, "apiserver.crt")); err != nil {
		return err
	}
	if err := cp.writeKubeconfig(); err != nil {
		return err
	}
	if out, err := cp.Kubectl(ctx, "create", "clusterrolebinding", KubeletClientUser,
		"--clusterrole=system:kubelet-api-admin", "--user="+KubeletClientUser).CombinedOutput(); err != nil {
		return fmt.Errorf("bind %s to system:kubelet-api-admin: %w: %s", KubeletClientUser, err, out)
	}

	if o.controllerManager {
		_, err := cp.spawn("kube-controller-manager", cp.Binaries.KubeControllerManager(),
			append(cp.controllerFlags(kcmPort, "kcm-pki"),
				// Signs the tokens of the ServiceAccounts it creates.
				"--service-account-private-key-file="+saKey,
				"--root-ca-file="+cp.CAFile,
				"--cluster-cidr="+PodCIDR,
				"--service-cluster-ip-range="+ServiceCIDR,
			)...)
		if err != nil {
			return err
		}
	}
	if o.scheduler {
		_, err := cp.spawn("kube-scheduler", cp.Binaries.KubeScheduler(), cp.controllerFlags(schedPort, "scheduler-pki")...)
		if err != nil {
			return err
		}
	}
	return nil
}

// controllerFlags are what kube-controller-manager and kube-scheduler take
// alike: the admin kubeconfig for the API and for checking callers, their
// own HTTPS port on loopback with a self-signed certificate in certDir, and
// no leader election (there is one of each) or profiling.
func (cp *ControlPlane) controllerFlags(port int, certDir string) []string {
	return []string{
		"--kubeconfig=" + cp.Kubeconfig,
		"--authentication-kubeconfig=" + cp.Kubeconfig,
		"--authorization-kubeconfig=" + cp.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(cp.Dir, certDir),
		"--leader-elect=false",
		"--profiling=false",
		"--v=0",
	}
}

// Token is the admin's bearer token, for clients other than kubectl (the
// kubelet's own HTTPS endpoints accept it through webhook authentication).
func (cp *ControlPlane) Token() string { return cp.token }

// Kubectl returns the built kubectl pointed at this control plane.
func (cp *ControlPlane) Kubectl(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, cp.Binaries.Kubectl(), append([]string{"--kubeconfig=" + cp.Kubeconfig}, args...)...)
	cmd.Env = cp.Env()
	return cmd
}

// Env is the environment a user's shell would have to drive this control
// plane: the built kubectl first on PATH and KUBECONFIG set. ko apply finds
// kubectl through PATH.
func (cp *ControlPlane) Env() []string {
	return proc.Environ(nil,
		"PATH="+cp.Binaries.Dir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"KUBECONFIG="+cp.Kubeconfig,
	)
}

// Logs returns the last n bytes of a component's log, for test failures.
func (cp *ControlPlane) Logs(name string, n int) string {
	for _, p := range cp.procs {
		if p.Name == name {
			return proc.TailFile(p.Log, n)
		}
	}
	return ""
}

// Close stops every component, newest first, and waits for them to exit.
// The directory is left for the caller (t.TempDir removes it).
func (cp *ControlPlane) Close() error {
	cp.once.Do(func() {
		var errs []error
		for i := len(cp.procs) - 1; i >= 0; i-- {
			if err := cp.procs[i].Stop(15 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		cp.err = errors.Join(errs...)
	})
	return cp.err
}

func (cp *ControlPlane) spawn(name, bin string, args ...string) (*proc.Process, error) {
	// Not CommandContext: the components must outlive the context that
	// started them and stop only in Close, gracefully.
	cmd := exec.Command(bin, args...)
	cmd.Dir = cp.Dir
	cmd.SysProcAttr = proc.SysProcAttr(syscall.SIGKILL)
	p, err := proc.Start(name, cmd, filepath.Join(cp.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, p)
	return p, nil
}

// waitHTTP polls url until it answers 200, the process exits, or timeout.
func waitHTTP(ctx context.Context, p *proc.Process, client *http.Client, url, token string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exited := func() error {
		if p.Exited() {
			return fmt.Errorf("%s exited (%w)", p.Name, p.Err())
		}
		return nil
	}
	if err := loopback.WaitHTTP(ctx, url, loopback.WithClient(client), loopback.WithBearer(token), loopback.WithAbort(exited)); err != nil {
		return fmt.Errorf("%w; log:\n%s", err, proc.TailFile(p.Log, 3000))
	}
	return nil
}

// waitForCA waits for kube-apiserver to write its generated certificate and
// returns a client that trusts it and nothing else.
func waitForCA(ctx context.Context, p *proc.Process, caFile string, timeout time.Duration) (*http.Client, error) {
	deadline := time.Now().Add(timeout)
	for {
		pemBytes, err := os.ReadFile(caFile)
		if err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pemBytes) {
				return &http.Client{
					Timeout:   5 * time.Second,
					Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
				}, nil
			}
		}
		if p.Exited() {
			return nil, fmt.Errorf("%s exited (%w); log:\n%s", p.Name, p.Err(), proc.TailFile(p.Log, 3000))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("kube-apiserver wrote no certificate to %s within %s", caFile, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (cp *ControlPlane) writeServiceAccountKeys() (keyFile, pubFile string, err error) {
	keyFile = filepath.Join(cp.Dir, "pki", "sa.key")
	key, err := newKey(keyFile)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("encode service-account public key: %w", err)
	}
	pubFile = filepath.Join(cp.Dir, "pki", "sa.pub")
	if err := writePEM(pubFile, "PUBLIC KEY", pub, 0o644); err != nil {
		return "", "", err
	}
	return keyFile, pubFile, nil
}

// writeCA extracts the CA from the serving certificate chain that
// kube-apiserver generated (leaf first, then its self-signed CA). Clients
// and the controller manager's root-ca-file must get the CA alone: the
// ClusterTrustBundle publisher refuses a bundle that holds a leaf.
func (cp *ControlPlane) writeCA(chainFile string) error {
	chain, err := os.ReadFile(chainFile)
	if err != nil {
		return fmt.Errorf("read API server certificate: %w", err)
	}
	var ca []byte
	for rest := chain; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("parse %s: %w", chainFile, err)
		}
		if c.IsCA {
			ca = append(ca, pem.EncodeToMemory(b)...)
		}
	}
	if len(ca) == 0 {
		return fmt.Errorf("%s holds no CA certificate", chainFile)
	}
	cp.CAFile = filepath.Join(cp.Dir, "pki", "ca.crt")
	if err := os.WriteFile(cp.CAFile, ca, 0o644); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	return nil
}

func (cp *ControlPlane) writeKubeconfig() error {
	ca, err := os.ReadFile(cp.CAFile)
	if err != nil {
		return fmt.Errorf("read API server certificate: %w", err)
	}
	// Written by hand (it is a small, stable format) so this package does
	// not pull client-go into the module.
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: controlplane
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: admin@controlplane
  context:
    cluster: controlplane
    user: admin
    namespace: default
current-context: admin@controlplane
`, cp.URL, base64.StdEncoding.EncodeToString(ca), cp.token)
	cp.Kubeconfig = filepath.Join(cp.Dir, "kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
