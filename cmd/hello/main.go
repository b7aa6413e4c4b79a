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
	"os"
	"os/signal"
	"syscall"

	"github.com/VictoriaMetrics/metrics"

	"github.com/kobuilt/hello/pkg/config"
	"github.com/kobuilt/hello/pkg/connlimit"
	"github.com/kobuilt/hello/pkg/graceful"
	"github.com/kobuilt/hello/pkg/jsonlog"
	"github.com/kobuilt/hello/pkg/logbuffer"
	"github.com/kobuilt/hello/pkg/server"
)

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
	// Serving never waits on stdout: lines it cannot take are dropped,
	// counted in log_lines_dropped_total and reported once it drains.
	var log *slog.Logger
	logs := logbuffer.New(stdout, logbuffer.WithDropReport(func(n uint64) {
		log.Warn("log lines dropped: stdout was slower than the service", slog.Uint64("dropped", n))
	}))
	defer logs.Close()
	log = newLogger(logs, cfg)

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	srv := server.New(
		server.WithLogger(log),
		server.WithBodyLimit(cfg.BodyLimit),
		server.WithRequestTimeout(cfg.RequestTimeout),
		server.WithSeparateMetrics(cfg.MetricsAddr != ""),
	)
	httpServer := &http.Server{
		Handler:           srv,
		Protocols:         http1Only(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes - netHTTPHeaderSlack,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Count what net/http rejects before routing (400, 431, 505, TLS
		// on the plain port, header timeouts), which no handler sees.
		ConnContext: srv.ConnContext,
		ConnState:   srv.ConnState,
	}
	if cfg.MetricsAddr != "" {
		stop, err := serveMetrics(cfg, srv.MetricsHandler(), log)
		if err != nil {
			return err
		}
		// Scrapes keep working through the drain; this listener closes
		// after the main server has shut down.
		defer stop()
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	conns := connlimit.New(httpServer, ln, maxConnections(cfg.MaxConnections, openFileLimit(), log))
	srv.Metrics().RegisterMetricsWriter(func(w io.Writer) {
		metrics.WriteCounterUint64(w, "log_lines_dropped_total", logs.Dropped())
		metrics.WriteGaugeUint64(w, "http_connections_open", uint64(conns.Open()))
		metrics.WriteCounterUint64(w, "http_connections_evicted_total", conns.ClosedToMakeRoom())
		metrics.WriteCounterUint64(w, "http_connections_refused_total", conns.Refused())
	})
	return graceful.Serve(ctx, httpServer, conns, graceful.Options{
		DrainDelay:      cfg.DrainDelay,
		ShutdownTimeout: cfg.ShutdownTimeout,
		SetReady:        srv.SetReady,
		Signals:         signals,
		Log:             log,
	})
}

// fdReserve is the open files kept apart from connections: stdio, the
// listeners, the poller, /proc reads for /metrics, and the one a new
// connection takes at the cap before the longest-idle one is closed.
const fdReserve = 32

// maxConnections lowers the cap to what the open-file limit allows, so
// that Accept never fails for want of a descriptor (a container run with
// --ulimit nofile=128 would otherwise stop answering, probes included).
func maxConnections(limit int, fileLimit uint64, log *slog.Logger) int {
	if fileLimit == 0 || uint64(limit)+fdReserve <= fileLimit {
		return limit
	}
	lowered := 1
	if fileLimit > fdReserve+1 {
		lowered = int(fileLimit - fdReserve)
	}
	log.Warn("max connections lowered to fit the open-file limit",
		slog.Int("max_connections", lowered), slog.Uint64("open_file_limit", fileLimit))
	return lowered
}

// http1Only is what a plain-HTTP port speaks anyway (HTTP/2 needs TLS,
// which ends at the ingress, or UnencryptedHTTP2, which is off). Saying so
// spares net/http setting up an HTTP/2 server for each listener at start.
func http1Only() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	return &p
}

// netHTTPHeaderSlack is what net/http adds to Server.MaxHeaderBytes before
// it answers 431 (its "bufio slop"). Taking it off makes MAX_HEADER_BYTES
// exactly the largest request line plus header block, through the blank
// line that ends it, that is served.
const netHTTPHeaderSlack = 4096

// serveMetrics serves /metrics and /version on cfg.MetricsAddr, with the
// main server's timeouts.
func serveMetrics(cfg config.Config, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.MetricsAddr, err)
	}
	hs := &http.Server{
		Handler:           h,
		Protocols:         http1Only(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes - netHTTPHeaderSlack,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		// ErrServerClosed is stop's doing; anything else means /metrics
		// went away while the service still serves, which must be seen.
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", slog.String("error", err.Error()))
		}
	}()
	return func() { hs.Close() }, nil
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	// The same lines as slog.NewJSONHandler, for about half the CPU on the
	// access log's (pkg/jsonlog).
	return slog.New(jsonlog.New(w, opts))
}
