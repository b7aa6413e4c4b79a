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
	"time"

	"github.com/kobuilt/hello/pkg/config"
	"github.com/kobuilt/hello/pkg/server"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "hello: %v\n", err)
		os.Exit(1)
	}
}

// run is the whole program. It returns when ctx is cancelled or a SIGTERM
// or SIGINT arrives and shutdown has finished; a second signal during
// shutdown makes it return at once with an error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse(args[1:], getenv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg)

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
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()
	srv.SetReady(true)
	log.Info("listening", slog.String("addr", ln.Addr().String()),
		slog.String("drain_delay", cfg.DrainDelay.String()), slog.String("shutdown_timeout", cfg.ShutdownTimeout.String()))

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case sig := <-signals:
		log.Info("shutdown: signal received, readiness now 503", slog.String("signal", sig.String()))
	case <-ctx.Done():
		log.Info("shutdown: context done, readiness now 503", slog.String("cause", context.Cause(ctx).Error()))
	}

	// Kubernetes keeps routing to a terminating pod until the endpoint
	// removal has spread to every node; keep serving meanwhile.
	srv.SetReady(false)
	log.Info("shutdown: draining", slog.String("drain_delay", cfg.DrainDelay.String()))
	select {
	case <-time.After(cfg.DrainDelay):
	case sig := <-signals:
		httpServer.Close()
		return fmt.Errorf("second signal %s during drain: stopped without waiting for requests", sig)
	}

	log.Info("shutdown: stopping server, waiting for in-flight requests", slog.String("timeout", cfg.ShutdownTimeout.String()))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	go func() {
		select {
		case sig := <-signals:
			log.Warn("shutdown: second signal, closing connections now", slog.String("signal", sig.String()))
			cancel()
		case <-shutdownCtx.Done():
		}
	}()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		httpServer.Close()
		return fmt.Errorf("shutdown: in-flight requests cut off: %w", err)
	}
	log.Info("shutdown: complete")
	return nil
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
