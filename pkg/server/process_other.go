//go:build !linux

package server

import (
	"bytes"

	"github.com/VictoriaMetrics/metrics"
)

// writeProcessMetrics writes what the library can read on this system.
func writeProcessMetrics(w *bytes.Buffer) {
	metrics.WriteProcMetrics(w)
	metrics.WriteFDMetrics(w)
}
