// Package graceful serves HTTP until told to stop, then stops the way a
// Kubernetes pod should: readiness first, a drain while the endpoint
// removal spreads, then a bounded wait for in-flight requests.
package graceful

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// Options says how to stop.
type Options struct {
	// DrainDelay is how long the server keeps serving after readiness
	// turns false, so load balancers stop sending before it stops accepting.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests.
	ShutdownTimeout time.Duration
	// SetReady is called with true once serving and false when stopping.
	SetReady func(bool)
	// Signals delivers SIGTERM and SIGINT. The first starts the shutdown;
	// a second one ends it at once.
	Signals <-chan os.Signal
	// Log receives one line for each phase (default: discarded).
	Log *slog.Logger
}

// Serve serves srv on ln. When ctx is done or the first signal arrives it
// sets readiness false, keeps serving for DrainDelay, then shuts srv down,
// letting in-flight requests finish within ShutdownTimeout. It returns nil
// after a clean shutdown, and an error if serving failed, requests had to
// be cut off, or a second signal forced the stop.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, o Options) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	setReady := o.SetReady
	if setReady == nil {
		setReady = func(bool) {}
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	setReady(true)
	log.Info("listening", slog.String("addr", ln.Addr().String()),
		slog.String("drain_delay", o.DrainDelay.String()), slog.String("shutdown_timeout", o.ShutdownTimeout.String()))

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case sig := <-o.Signals:
		log.Info("shutdown: signal received, readiness now 503", slog.String("signal", sig.String()))
	case <-ctx.Done():
		log.Info("shutdown: context done, readiness now 503", slog.String("cause", context.Cause(ctx).Error()))
	}
	setReady(false)

	log.Info("shutdown: draining", slog.String("drain_delay", o.DrainDelay.String()))
	select {
	case <-time.After(o.DrainDelay):
	case sig := <-o.Signals:
		srv.Close()
		log.Warn("shutdown: second signal during drain, stopped at once", slog.String("signal", sig.String()))
		return fmt.Errorf("second signal %s during drain: stopped without waiting for requests", sig)
	}

	log.Info("shutdown: stopping server, waiting for in-flight requests", slog.String("timeout", o.ShutdownTimeout.String()))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	forced := make(chan os.Signal, 1)
	go func() {
		select {
		case sig := <-o.Signals:
			forced <- sig
			cancel()
		case <-shutdownCtx.Done():
		}
	}()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		select {
		case sig := <-forced:
			log.Warn("shutdown: second signal, connections closed", slog.String("signal", sig.String()))
			return fmt.Errorf("second signal %s during shutdown: in-flight requests cut off", sig)
		default:
		}
		log.Error("shutdown: timeout, connections closed", slog.String("error", err.Error()))
		return fmt.Errorf("shutdown: in-flight requests cut off after %s: %w", o.ShutdownTimeout, err)
	}
	log.Info("shutdown: complete")
	return nil
}
