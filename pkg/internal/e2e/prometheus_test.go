package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kobuilt/hello/pkg/internal/controlplane"
	"github.com/kobuilt/hello/pkg/internal/loopback"
	"github.com/kobuilt/hello/pkg/internal/monitoring"
	"github.com/kobuilt/hello/pkg/internal/proc"
	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// The recording rules of config/monitoring/prometheus/rules.yml: each must
// have a value once the service has had traffic.
var sliRecords = []string{
	"namespace_job:hello_availability:ratio_rate5m",
	"namespace_job:hello_availability:ratio_rate30m",
	"namespace_job:hello_availability:ratio_rate1h",
	"namespace_job:hello_availability:ratio_rate6h",
	"namespace_job:hello_latency:ratio_rate5m",
	"namespace_job:hello_latency:ratio_rate30m",
	"namespace_job:hello_latency:ratio_rate1h",
	"namespace_job:hello_latency:ratio_rate6h",
}

// checkPrometheus runs a real Prometheus on the host with the scrape job and
// rules users get (config/monitoring/prometheus/), discovering the Pods of
// namespace ns through the control plane's API, and checks that every Pod is
// a target that is up, that the recording rules turn traffic sent through
// the Service (svc) into values, and that no alert fires while the service is
// healthy.
func checkPrometheus(t *testing.T, ctx context.Context, root, bin string, cp *controlplane.ControlPlane, ns, svc string, pods []pod) {
	dir := t.TempDir()
	config := prometheusConfig(t, root, cp, ns)
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, config, 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
	)
	cmd.Dir = dir
	cmd.SysProcAttr = proc.SysProcAttr(syscall.SIGKILL)
	p, err := proc.Start("prometheus", cmd, filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("prometheus config:\n%s\nprometheus log tail:\n%s", config, proc.TailFile(p.Log, 4000))
		}
		if err := p.Stop(10 * time.Second); err != nil {
			t.Error(err)
		}
	})
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	exited := func() error {
		if p.Exited() {
			return fmt.Errorf("prometheus exited (%w)", p.Err())
		}
		return nil
	}
	if err := loopback.WaitHTTP(waitCtx, base+"/-/ready", loopback.WithAbort(exited)); err != nil {
		t.Fatalf("prometheus not ready: %v\n%s", err, proc.TailFile(p.Log, 3000))
	}
	t.Logf("prometheus (%s) ready at %s", monitoring.PrometheusModule, base)

	// Send /hello through the Service in rounds and poll until Prometheus
	// shows every Pod up, every recording rule with a value, and no alert
	// active (HelloDown is pending until the first scrapes).
	want := map[string]bool{}
	for _, p := range pods {
		want[p.name] = true
	}
	deadline := time.Now().Add(90 * time.Second)
	sent := 0
	for {
		for range 20 {
			conn, err := net.DialTimeout("tcp", svc, 2*time.Second)
			if err != nil {
				t.Fatalf("request %d: %v", sent, err)
			}
			_, err = roundTrip(conn, "Connection: close\r\n")
			conn.Close()
			if err != nil {
				t.Fatalf("request %d through %s: %v", sent, svc, err)
			}
			sent++
		}

		up := promQuery(t, ctx, base, `up{job="hello"}`)
		allUp := len(up) == len(pods)
		for _, s := range up {
			allUp = allUp && s.Value == 1 && s.Metric["namespace"] == ns && want[s.Metric["pod"]]
		}
		records := promQuery(t, ctx, base, `{__name__=~"namespace_job:hello_.*",namespace="`+ns+`"}`)
		var missing []string
		for _, r := range sliRecords {
			if !slices.ContainsFunc(records, func(s promSample) bool { return s.Metric["__name__"] == r }) {
				missing = append(missing, r)
			}
		}
		alerts := promAlerts(t, ctx, base)
		for _, a := range alerts {
			if a.State == "firing" {
				t.Errorf("alert firing while the service is healthy: %s %v (value %s)", a.Labels["alertname"], a.Labels, a.Value)
			}
		}
		if t.Failed() {
			return
		}

		if allUp && len(missing) == 0 && len(alerts) == 0 {
			t.Logf("after %d requests to /hello through %s:", sent, svc)
			for _, s := range up {
				t.Logf("  up{job=%q,namespace=%q,pod=%q,container=%q,instance=%q} = %g",
					s.Metric["job"], s.Metric["namespace"], s.Metric["pod"], s.Metric["container"], s.Metric["instance"], s.Value)
			}
			for _, s := range records {
				t.Logf("  %s{namespace=%q,job=%q} = %g", s.Metric["__name__"], s.Metric["namespace"], s.Metric["job"], s.Value)
				// No request failed, so availability is exactly 1; a
				// latency share is a share.
				if strings.Contains(s.Metric["__name__"], "availability") && s.Value != 1 {
					t.Errorf("%s = %g with no failed request, want 1", s.Metric["__name__"], s.Value)
				}
				if s.Value < 0 || s.Value > 1 {
					t.Errorf("%s = %g, not a share", s.Metric["__name__"], s.Value)
				}
			}
			checkRuleHealth(t, ctx, base)
			return
		}
		if time.Now().After(deadline) {
			var states []string
			for _, a := range alerts {
				states = append(states, a.Labels["alertname"]+" "+a.State)
			}
			t.Fatalf("after 90s and %d requests: up %v (want each of %v up once), recording rules without a value %q, active alerts %q",
				sent, up, slices.Sorted(maps.Keys(want)), missing, states)
		}
		time.Sleep(time.Second)
	}
}

// prometheusConfig is config/monitoring/prometheus/scrape.yml with only what
// a test must change: one-second scrape and evaluation intervals, the API
// server reached through the control plane's kubeconfig instead of the
// in-cluster service account, the test's namespace, and rules.yml loaded.
func prometheusConfig(t *testing.T, root string, cp *controlplane.ControlPlane, ns string) []byte {
	t.Helper()
	dir := filepath.Join(root, "config", "monitoring", "prometheus")
	b, err := os.ReadFile(filepath.Join(dir, "scrape.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg object
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("scrape.yml: %v", err)
	}
	jobs := lookupSlice(cfg, "scrape_configs")
	if len(jobs) != 1 {
		t.Fatalf("scrape.yml has %d scrape_configs, want 1", len(jobs))
	}
	job := jobs[0].(map[string]any)
	sds := lookupSlice(job, "kubernetes_sd_configs")
	if len(sds) != 1 {
		t.Fatalf("scrape.yml's job has %d kubernetes_sd_configs, want 1", len(sds))
	}
	sd := sds[0].(map[string]any)
	sd["kubeconfig_file"] = cp.Kubeconfig
	sd["namespaces"] = object{"names": []string{ns}}
	job["scrape_interval"] = "1s"
	cfg["global"] = object{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []string{filepath.Join(dir, "rules.yml")}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type promSample struct {
	Metric map[string]string
	Value  float64
}

func (s promSample) String() string { return fmt.Sprintf("%v=%g", s.Metric, s.Value) }

// promQuery runs an instant query through the HTTP API.
func promQuery(t *testing.T, ctx context.Context, base, query string) []promSample {
	t.Helper()
	var data struct {
		Result []struct {
			Metric map[string]string
			Value  [2]any // [time, "value"]
		}
	}
	promGet(t, ctx, base+"/api/v1/query?query="+url.QueryEscape(query), &data)
	var out []promSample
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: value %v: %v", query, r.Value, err)
		}
		out = append(out, promSample{r.Metric, v})
	}
	return out
}

type promAlert struct {
	Labels map[string]string
	State  string // pending or firing
	Value  string
}

// promAlerts lists the active (pending or firing) alerts.
func promAlerts(t *testing.T, ctx context.Context, base string) []promAlert {
	t.Helper()
	var data struct{ Alerts []promAlert }
	promGet(t, ctx, base+"/api/v1/alerts", &data)
	return data.Alerts
}

// checkRuleHealth fails for any rule whose last evaluation failed.
func checkRuleHealth(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	var data struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Name, Health, LastError string
			}
		}
	}
	promGet(t, ctx, base+"/api/v1/rules", &data)
	n := 0
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s in group %s: health %q, %s", r.Name, g.Name, r.Health, r.LastError)
			}
		}
	}
	if n == 0 {
		t.Error("prometheus loaded no rules")
	}
	t.Logf("%d rules in %d groups evaluated, all healthy", n, len(data.Groups))
}

// promGet GETs a Prometheus API URL and decodes its "data" into data.
func promGet(t *testing.T, ctx context.Context, u string, data any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %s: %v", u, resp.Status, err)
	}
	if body.Status != "success" {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, body.Error)
	}
	if err := json.Unmarshal(body.Data, data); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// checkMonitoringObjects installs the Prometheus Operator's PodMonitor and
// PrometheusRule CRDs (their real schemas; no Operator runs) and applies
// config/monitoring/ as a user would: the API server must store both objects
// without a warning, and refuse a copy with a misspelt field, so the check
// can fail.
func checkMonitoringObjects(t *testing.T, ctx context.Context, root string, cp *controlplane.ControlPlane) {
	crds, err := monitoring.OperatorCRDs(ctx, "podmonitors", "prometheusrules")
	testenv.Need(t, err == nil, fmt.Sprintf("the Prometheus Operator's CRDs (%v)", err), "access to the Go module proxy: go mod download "+monitoring.OperatorModule)
	// Server-side: the CRDs are too large for client-side apply's
	// last-applied annotation.
	args := []string{"apply", "--server-side"}
	for _, f := range crds {
		args = append(args, "-f", f)
	}
	if _, err := run(cp.Kubectl(ctx, args...)); err != nil {
		t.Fatal(err)
	}
	if _, err := run(cp.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/podmonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")); err != nil {
		t.Fatal(err)
	}
	t.Logf("CRDs from %s established", monitoring.OperatorModule)

	ns := restrictedNamespace(t, ctx, cp, "hello-monitoring")
	apply := cp.Kubectl(ctx, "apply", "-f", "config/monitoring/", "--namespace="+ns)
	apply.Dir = root
	stdout, stderr, err := output(apply)
	if err != nil {
		t.Fatalf("kubectl apply -f config/monitoring/: %v\n%s", err, stderr)
	}
	t.Logf("kubectl said:\n%s", stdout)
	noWarnings(t, stdout+stderr)
	for _, what := range []string{"podmonitor/hello", "prometheusrule/hello"} {
		if _, err := listObjects(ctx, cp, ns, what); err != nil {
			t.Errorf("%s not stored: %v", what, err)
		}
	}

	b, err := os.ReadFile(filepath.Join(root, "config", "monitoring", "podmonitor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pm object
	if err := yaml.Unmarshal(b, &pm); err != nil {
		t.Fatal(err)
	}
	// Another name, so the dry run is a create, not a patch of the one stored.
	pm["metadata"].(map[string]any)["name"] = "hello-broken"
	spec := pm["spec"].(map[string]any)
	spec["podMetricsEndpoint"] = spec["podMetricsEndpoints"]
	delete(spec, "podMetricsEndpoints")
	out, err := kubectlStdin(ctx, cp, pm, "apply", "--dry-run=server", "--namespace="+ns, "-f", "-")
	if err == nil {
		t.Fatalf("the API server accepted a PodMonitor with spec.podMetricsEndpoint:\n%s", out)
	}
	if want := `unknown field "spec.podMetricsEndpoint"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q:\n%v", want, err)
	}
	t.Logf("refused: %s", firstLine(err.Error(), "Error", "error:"))
}
