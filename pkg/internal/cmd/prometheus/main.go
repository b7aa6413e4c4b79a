// Command prometheus runs the Prometheus server the node test uses
// (monitoring.PrometheusModule), building it into the user cache dir the
// first time:
//
//	go run ./pkg/internal/cmd/prometheus --version
//
// .ci/run uses it to build Prometheus before the tests.
package main

import (
	"github.com/kobuilt/hello/pkg/internal/buildcache"
	"github.com/kobuilt/hello/pkg/internal/monitoring"
)

func main() { buildcache.Exec("prometheus", monitoring.Prometheus) }
