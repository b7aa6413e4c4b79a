// Command hello serves GET /hello with health, readiness, metrics and
// version endpoints, and shuts down gracefully for Kubernetes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kobuilt/hello/pkg/config"
	"github.com/kobuilt/hello/pkg/connlimit"
	"github.com/kobuilt/hello/pkg/graceful"
	"github.com/kobuilt/hello/pkg/logbuffer"
	"github.com/kobuilt/hello/pkg/server"
	versioninfo "github.com/kobuilt/hello/pkg/version"
)

// Stamped at link time by .ko.yaml and Dockerfile.reference with
// -X main.version=... (the names GoReleaser uses too). They live in main
// because main is the one package whose -X name does not change when the
// module is copied under a new path (gonew), and the linker silently
// ignores -X for a symbol that does not exist.
var version, commit, date string

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		os.Exit(1)
	}
}

// run is the whole program. It returns when ctx is cancelled or a SIGTERM
// or SIGINT arrives and the graceful shutdown has finished; a second signal
// during shutdown makes it return at once with an error. Logs go to
// stdout; the error that ends the program, if any, goes to stderr as one
// line, since it may come before there is a logger or after it is closed.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if err != nil {
			fmt.Fprintf(stderr, "hello: %v\n", err)
		}
	}()
	if len(args) > 1 && args[1] == "healthcheck" {
		return healthcheck(ctx, args[2:], getenv, stdout)
	}
	cfg, err := config.Parse(args[1:], getenv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	// Serving never waits on stdout: see pkg/logbuffer.
	var log *slog.Logger
	logs := logbuffer.New(stdout, func(dropped uint64) {
		log.Warn("log lines dropped: stdout was slower than the service", slog.Uint64("dropped", dropped))
	})
	defer logs.Close()
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	log = slog.New(slog.NewJSONHandler(logs, opts))
	if cfg.LogFormat == "text" {
		log = slog.New(slog.NewTextHandler(logs, opts))
	}

	// The first signal starts the graceful shutdown, a second ends it at
	// once: a channel, since signal.NotifyContext would see only the first.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	srv := server.New(
		server.WithLogger(log),
		server.WithBodyLimit(cfg.BodyLimit),
		server.WithRequestTimeout(cfg.RequestTimeout),
		server.WithSeparateMetrics(cfg.MetricsAddr != ""),
		server.WithVersion(versioninfo.Stamped(version, commit, date)),
	)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	// GOMEMLIMIT, unless set, is 90% of the container's memory limit
	// (cgroup v1 or v2): the GC works harder before the kernel would kill,
	// and the rest is left for what the Go runtime does not count.
	memLimit, err := memlimit.Set(memlimit.WithLogger(log))
	if err != nil {
		log.Warn("GOMEMLIMIT not set from the memory limit", slog.String("error", err.Error()))
	}
	conns := connlimit.New(ln, maxConnections(cfg, memLimit, log))
	httpServer := newHTTPServer(cfg, srv, conns, log)

	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s: %w", cfg.MetricsAddr, err)
		}
		mconns := connlimit.New(mln, 16) // the scraper and an operator or two
		metricsServer := newHTTPServer(cfg, withPprof(cfg.Pprof, srv.MetricsHandler()), mconns, log)
		go func() {
			// Anything but the Close below: /metrics is gone, /hello serves on.
			if err := metricsServer.Serve(mconns); !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener stopped", slog.String("error", err.Error()))
			}
		}()
		// Scrapes keep working through the drain; this listener closes
		// after the main server has shut down.
		defer metricsServer.Close()
	}

	counter := func(name, help string, v func(connlimit.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(conns.Stats())) })
	}
	srv.Metrics().MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "log_lines_dropped_total",
			Help: "Log lines dropped because stdout took them slower than they came, or failed.",
		}, func() float64 { return float64(logs.Dropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "http_connections_open",
			Help: "Connections open on the service port.",
		}, func() float64 { return float64(conns.Stats().Open) }),
		counter("http_connections_evicted_total", "Idle connections closed to make room for a new one at MAX_CONNECTIONS.",
			func(s connlimit.Stats) uint64 { return s.Evicted }),
		counter("http_connections_refused_total", "Connections closed on arrival at MAX_CONNECTIONS because every open one was mid-request.",
			func(s connlimit.Stats) uint64 { return s.Refused }),
		counter("http_requests_rejected_before_routing_total", "Connections net/http closed after bytes of a request arrived but before any handler saw it (400, 431, 505, header timeouts).",
			func(s connlimit.Stats) uint64 { return s.Rejected }),
		counter("http_connections_closed_without_request_total", "Connections closed before a byte of a request arrived (port scans, TCP health checks, header timeouts on idle ones).",
			func(s connlimit.Stats) uint64 { return s.WithoutRequest }),
	)
	return graceful.Serve(ctx, httpServer, conns, graceful.Options{
		DrainDelay:      cfg.DrainDelay,
		ShutdownTimeout: cfg.ShutdownTimeout,
		SetReady:        srv.SetReady,
		SetKeepAlive:    srv.SetKeepAlive,
		Signals:         signals,
		Log:             log,
	})
}

// newHTTPServer is the one place an http.Server is built, for the service
// port and the metrics port alike.
func newHTTPServer(cfg config.Config, h http.Handler, conns *connlimit.Listener, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		// net/http answers 431 only past MaxHeaderBytes plus 4096 bytes of
		// its own ("bufio slop"); taking that off makes MAX_HEADER_BYTES
		// exactly the largest request line plus header block, through the
		// blank line that ends it, that is served. config keeps it above
		// 4096.
		MaxHeaderBytes: cfg.MaxHeaderBytes - 4096,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// OPTIONS * reaches the handler too (404), with the security
		// headers and an access log line, instead of an answer from
		// net/http that nothing records.
		DisableGeneralOptionsHandler: true,
		// The connection cap follows which connections are busy, and
		// counts what net/http rejects before routing, which no handler sees.
		ConnContext: conns.ConnContext,
		ConnState:   conns.ConnState,
	}
}

// fdReserve is the open files kept apart from the service port's
// connections: stdio, the listeners, the poller, /proc reads for /metrics,
// the metrics port's connections, and the one a new connection takes at
// the cap before the longest-idle one is closed.
const fdReserve = 32

// The memory budget (docs/operations.md, "Memory"): the process without
// connections (the runtime, the log queue, the metrics port's connections)
// plus, for each connection, the most it holds with an unfinished header
// block of MAX_HEADER_BYTES pending: net/http's buffers and goroutine, and
// the header line's buffer, which grows by doubling.
// TestMemoryPerConnectionFitsTheBudget measures it against this formula.
const baseBytes = 16 << 20

func connectionBytes(maxHeaderBytes int) int64 { return 16<<10 + 2*int64(maxHeaderBytes) }

// maxConnections lowers the cap to what the open-file limit and the memory
// limit allow: Accept must never fail for want of a descriptor (a
// container run with --ulimit nofile=128 would stop answering, probes
// included), and connections flooding with unfinished headers must not
// take the process past its memory limit.
func maxConnections(cfg config.Config, memLimit int64, log *slog.Logger) int {
	limit := cfg.MaxConnections
	if files := openFileLimit(); files > 0 && uint64(limit)+fdReserve > files {
		limit = max(1, int(files)-fdReserve)
		log.Warn("max connections lowered to fit the open-file limit",
			slog.Int("max_connections", limit), slog.Uint64("open_file_limit", files))
	}
	if fit := (memLimit - baseBytes) / connectionBytes(cfg.MaxHeaderBytes); int64(limit) > fit {
		limit = max(1, int(fit))
		log.Warn("max connections lowered to fit the memory limit", slog.Int("max_connections", limit),
			slog.Int64("memory_limit", memLimit), slog.Int("max_header_bytes", cfg.MaxHeaderBytes))
	}
	return limit
}

// withPprof adds net/http/pprof's handlers in front of h when on: for the
// metrics port only, which only operators reach.
func withPprof(on bool, h http.Handler) http.Handler {
	if !on {
		return h
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
