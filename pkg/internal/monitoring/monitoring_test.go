package monitoring

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The repository's config directory, from this package's directory (where
// go test runs its tests).
var configDir = filepath.Join("..", "..", "..", "config")

// Where config/monitoring keeps each file.
var (
	podMonitorFile     = filepath.Join(configDir, "monitoring", "podmonitor.yaml")
	prometheusRuleFile = filepath.Join(configDir, "monitoring", "prometheusrule.yaml")
	rulesFile          = filepath.Join(configDir, "monitoring", "prometheus", "rules.yml")
	scrapeFile         = filepath.Join(configDir, "monitoring", "prometheus", "scrape.yml")
	deploymentFile     = filepath.Join(configDir, "deployment.yaml")
)

type object = map[string]any

func load(t *testing.T, path string) object {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var o object
	if err := yaml.Unmarshal(b, &o); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return o
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// get walks o by map keys and slice indexes; nil when absent.
func get(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := o.(map[string]any)
			o = m[k]
		case int:
			s, _ := o.([]any)
			if k >= len(s) {
				return nil
			}
			o = s[k]
		}
	}
	return o
}

// The PrometheusRule is the plain rules file wrapped in an object: the same
// groups, rule for rule, so the two ways of loading the rules cannot drift.
func TestPrometheusRuleMatchesRulesFile(t *testing.T) {
	rule := load(t, prometheusRuleFile)
	plain := load(t, rulesFile)
	if rule["apiVersion"] != "monitoring.coreos.com/v1" || rule["kind"] != "PrometheusRule" {
		t.Fatalf("%s is a %v %v, want a monitoring.coreos.com/v1 PrometheusRule", prometheusRuleFile, rule["apiVersion"], rule["kind"])
	}
	got, want := get(rule, "spec", "groups"), plain["groups"]
	if want == nil {
		t.Fatalf("%s has no groups", rulesFile)
	}
	if reflect.DeepEqual(got, want) {
		return
	}
	// Say which rule differs, not just that something does.
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	gl, wl := strings.Split(string(g), "\n"), strings.Split(string(w), "\n")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			t.Fatalf("%s spec.groups differs from the groups of %s at line %d of their JSON:\n got: %s\nwant: %s\nchange both files alike",
				prometheusRuleFile, rulesFile, i+1, gl[i], wl[i])
		}
	}
	t.Fatalf("%s spec.groups has %d lines of JSON, the groups of %s %d: change both files alike", prometheusRuleFile, len(gl), rulesFile, len(wl))
}

// Both ways of scraping, the PodMonitor and the plain scrape job, must find
// the Deployment's Pods, scrape the port the Deployment names for
// METRICS_ADDR, and label the series with the job the rules select.
func TestScrapeSettingsMatchDeployment(t *testing.T) {
	deploy := load(t, deploymentFile)
	podLabels, _ := get(deploy, "spec", "template", "metadata", "labels").(map[string]any)
	container := get(deploy, "spec", "template", "spec", "containers", 0)

	// The Deployment's metrics port: the container port whose number
	// METRICS_ADDR listens on.
	var metricsAddr string
	for _, e := range get(container, "env").([]any) {
		if get(e, "name") == "METRICS_ADDR" {
			metricsAddr, _ = get(e, "value").(string)
		}
	}
	_, port, ok := strings.Cut(metricsAddr, ":")
	if !ok {
		t.Fatalf("%s: METRICS_ADDR %q has no port", deploymentFile, metricsAddr)
	}
	var portName string
	for _, p := range get(container, "ports").([]any) {
		if n, _ := get(p, "containerPort").(float64); strconv.Itoa(int(n)) == port {
			portName, _ = get(p, "name").(string)
		}
	}
	if portName == "" {
		t.Fatalf("%s declares no named container port %s (METRICS_ADDR %s)", deploymentFile, port, metricsAddr)
	}

	// The job every rule selects.
	var jobs []string
	for _, m := range regexp.MustCompile(`job="([^"]*)"`).FindAllStringSubmatch(readFile(t, rulesFile), -1) {
		if !slices.Contains(jobs, m[1]) {
			jobs = append(jobs, m[1])
		}
	}
	if len(jobs) != 1 {
		t.Fatalf("%s selects jobs %q, want one", rulesFile, jobs)
	}
	job := jobs[0]

	t.Run("PodMonitor", func(t *testing.T) {
		pm := load(t, podMonitorFile)
		eps, _ := get(pm, "spec", "podMetricsEndpoints").([]any)
		if len(eps) != 1 {
			t.Fatalf("%s has %d podMetricsEndpoints, want 1", podMonitorFile, len(eps))
		}
		if got := get(eps[0], "port"); got != portName {
			t.Errorf("%s scrapes port %v, but the Deployment's metrics port (METRICS_ADDR %s) is named %q", podMonitorFile, got, metricsAddr, portName)
		}
		for k, v := range get(pm, "spec", "selector", "matchLabels").(map[string]any) {
			if podLabels[k] != v {
				t.Errorf("%s selects %s=%v; the Deployment's Pods have %v", podMonitorFile, k, v, podLabels[k])
			}
		}
		jobLabel, _ := get(pm, "spec", "jobLabel").(string)
		if podLabels[jobLabel] != job {
			t.Errorf("%s takes job from Pod label %q = %v; the rules select job=%q", podMonitorFile, jobLabel, podLabels[jobLabel], job)
		}
	})

	t.Run("plain scrape job", func(t *testing.T) {
		// The real Prometheus in TestNode runs this job against real Pods;
		// here, only that it names the same port and job label as the
		// PodMonitor.
		sc := load(t, scrapeFile)
		jobs, _ := sc["scrape_configs"].([]any)
		if len(jobs) != 1 {
			t.Fatalf("%s has %d scrape_configs, want 1", scrapeFile, len(jobs))
		}
		jobLabel, _ := get(load(t, podMonitorFile), "spec", "jobLabel").(string)
		jobSource := "__meta_kubernetes_pod_label_" + regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(jobLabel, "_")
		var keepsPort, setsJob bool
		for _, c := range get(jobs[0], "relabel_configs").([]any) {
			src, _ := get(c, "source_labels").([]any)
			if get(c, "action") == "keep" && slices.Equal(src, []any{"__meta_kubernetes_pod_container_port_name"}) {
				keepsPort = get(c, "regex") == portName
			}
			if get(c, "target_label") == "job" {
				setsJob = slices.Equal(src, []any{jobSource})
			}
		}
		if !keepsPort {
			t.Errorf("%s does not keep exactly the container port named %q", scrapeFile, portName)
		}
		if !setsJob {
			t.Errorf("%s does not take job from %s, as the PodMonitor's jobLabel does", scrapeFile, jobSource)
		}
	})
}

// `kubectl apply -f config/monitoring/` reads every .json, .yaml and .yml
// file directly in the directory (not below it without -R), and
// `go tool ko apply -f config/` every .json and .yaml directly in config/.
// So the Operator's objects sit in config/monitoring/, where ko does not
// look (a cluster without the Operator's CRDs would refuse them), and the
// plain Prometheus files, which are not Kubernetes objects, one level
// further down, where kubectl does not look.
func TestMonitoringLayout(t *testing.T) {
	dir := filepath.Join(configDir, "monitoring")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range entries {
		if e.IsDir() || !slices.Contains([]string{".json", ".yaml", ".yml"}, filepath.Ext(e.Name())) {
			continue
		}
		o := load(t, filepath.Join(dir, e.Name()))
		api, _ := o["apiVersion"].(string)
		kind, _ := o["kind"].(string)
		if !strings.HasPrefix(api, "monitoring.coreos.com/") || kind == "" || get(o, "metadata", "name") == nil {
			t.Errorf("%s: kubectl apply -f config/monitoring/ reads it, but it is not a Prometheus Operator object (apiVersion %q, kind %q)", e.Name(), api, kind)
		}
		kinds = append(kinds, kind)
	}
	slices.Sort(kinds)
	if want := []string{"PodMonitor", "PrometheusRule"}; !slices.Equal(kinds, want) {
		t.Errorf("config/monitoring/ holds %q, want %q", kinds, want)
	}

	files, err := filepath.Glob(filepath.Join(configDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".json" {
			continue
		}
		if api, _ := load(t, f)["apiVersion"].(string); strings.HasPrefix(api, "monitoring.coreos.com/") {
			t.Errorf("%s: ko apply -f config/ would send this %s object to clusters without the Prometheus Operator; move it to config/monitoring/", f, api)
		}
	}
}
