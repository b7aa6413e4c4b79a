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
	"sync/atomic"
	"time"
)

// closeHeader is shared and never modified, saving Header().Set's allocation.
var closeHeader = []string{"close"}

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

	// From the start of the shutdown every response asks the client to
	// close its connection, so keep-alive clients reconnect (elsewhere,
	// once the endpoint removal has spread) during the drain instead of
	// having their connection cut under them by Shutdown at its end.
	// Server.SetKeepAlivesEnabled(false) would do the same but also closes
	// idle connections at once, racing with clients about to send on them.
	var draining atomic.Bool
	if h := srv.Handler; h != nil {
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if draining.Load() {
				w.Header()["Connection"] = closeHeader
			}
			h.ServeHTTP(w, r)
		})
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	setReady(true)
	log.Info("listening", slog.String("addr", ln.Addr().String()),
		slog.String("drain_delay", o.DrainDelay.String()), slog.String("shutdown_timeout", o.ShutdownTimeout.String()))

	var cause slog.Attr
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case sig := <-o.Signals:
		cause = slog.String("signal", sig.String())
	case <-ctx.Done():
		cause = slog.String("cause", context.Cause(ctx).Error())
	}
	// Readiness and Connection: close before anything is logged: a log
	// line may wait on a slow sink, the load balancer must not.
	setReady(false)
	draining.Store(true)
	log.Info("shutdown: readiness now 503, responses say Connection: close", cause)

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
