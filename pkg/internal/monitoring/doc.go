// Package monitoring holds what tests config/monitoring: the Prometheus
// server the node test runs against the shipped scrape settings and rules,
// and (in its tests) the checks that keep the PrometheusRule, the PodMonitor,
// the plain rules file and the Deployment consistent.
package monitoring
