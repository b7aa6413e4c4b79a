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

	"github.com/kobuilt/hello/pkg/config"
	"github.com/kobuilt/hello/pkg/graceful"
	"github.com/kobuilt/hello/pkg/logbuffer"
	"github.com/kobuilt/hello/pkg/server"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "hello: %v\n", err)
		os.Exit(1)
	}
}

// run is the whole program. It returns when ctx is cancelled or a SIGTERM
// or SIGINT arrives and the graceful shutdown has finished; a second signal
// during shutdown makes it return at once with an error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse(args[1:], getenv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logs := logbuffer.New(stdout)
	defer logs.Close()
	log := newLogger(logs, cfg)

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	srv := server.New(
		server.WithLogger(log),
		server.WithBodyLimit(cfg.BodyLimit),
		server.WithRequestTimeout(cfg.RequestTimeout),
	)
	httpServer := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return graceful.Serve(ctx, httpServer, ln, graceful.Options{
		DrainDelay:      cfg.DrainDelay,
		ShutdownTimeout: cfg.ShutdownTimeout,
		SetReady:        srv.SetReady,
		Signals:         signals,
		Log:             log,
	})
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
