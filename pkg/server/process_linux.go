package server

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// writeProcessMetrics writes the process series client_golang's process
// collector wrote, from one read of /proc/self/stat plus the file
// descriptor counts. The library's own process metrics add cgroup pressure,
// I/O, page-fault and throttling series read from six more files, which
// took a /metrics scrape from about 9 to 15 times the CPU of a /hello
// (docs/performance.md); those series were never exposed before.
func writeProcessMetrics(w *bytes.Buffer) {
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// The command name in parentheses may hold spaces; the fields after
		// it start at field 3, the state, so utime (14) is index 11.
		if _, rest, ok := bytes.Cut(b, []byte(") ")); ok {
			if f := strings.Fields(string(rest)); len(f) > 21 {
				utime, _ := strconv.ParseUint(f[11], 10, 64)
				stime, _ := strconv.ParseUint(f[12], 10, 64)
				vsize, _ := strconv.ParseUint(f[20], 10, 64)
				rss, _ := strconv.ParseUint(f[21], 10, 64)
				// USER_HZ is 100 on every Linux architecture Go supports.
				metrics.WriteCounterFloat64(w, "process_cpu_seconds_total", float64(utime+stime)/100)
				metrics.WriteGaugeUint64(w, "process_resident_memory_bytes", rss*uint64(os.Getpagesize()))
				metrics.WriteGaugeUint64(w, "process_virtual_memory_bytes", vsize)
			}
		}
	}
	metrics.WriteGaugeFloat64(w, "process_start_time_seconds", float64(processStart.UnixNano())/1e9)
	metrics.WriteFDMetrics(w)
}
