// Package graceful serves HTTP until told to stop, then stops the way a
// Kubernetes Pod should: readiness first, a drain while the endpoint
// removal spreads, then a bounded wait for in-flight requests, losing no
// request that a client has sent.
package graceful

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/kobuilt/hello/pkg/connlimit"
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
	// SetKeepAlive(false) makes every response ask the client to close its
	// connection (Connection: close); true lets connections stay open.
	SetKeepAlive func(bool)
	// Signals delivers SIGTERM and SIGINT. The first starts the shutdown;
	// a second one ends it at once.
	Signals <-chan os.Signal
	// Log receives one line for each phase.
	Log *slog.Logger
}

// quiet is how long no new connection may arrive before the listener is
// closed; settle bounds each wait for clients to settle before the next
// step.
const (
	quiet  = 50 * time.Millisecond
	settle = time.Second
)

// Serve serves srv on ln, whose ConnState srv must call, until ctx is done
// or a signal arrives, then stops as the package doc says. It returns nil
// after a clean shutdown, and an error if serving failed, requests had to
// be cut off, or a second signal forced the stop.
func Serve(ctx context.Context, srv *http.Server, ln *connlimit.Listener, o Options) error {
	log := o.Log
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	o.SetReady(true)
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
	// From here every response asks the client to close its connection, so
	// keep-alive clients reconnect (elsewhere, once the endpoint removal
	// has spread) during the drain instead of having their connection cut
	// under them by Shutdown at its end.
	o.SetReady(false)
	o.SetKeepAlive(false)
	log.Info("shutdown: readiness now 503, responses say Connection: close", cause)

	log.Info("shutdown: draining", slog.String("drain_delay", o.DrainDelay.String()))
	select {
	case <-time.After(o.DrainDelay):
	case sig := <-o.Signals:
		srv.Close()
		log.Warn("shutdown: second signal during drain, stopped at once", slog.String("signal", sig.String()))
		return fmt.Errorf("second signal %s during drain: stopped without waiting for requests", sig)
	}

	// Stop accepting without dropping a request a client has sent. Clients
	// that still come straight to this port (docker run, no load balancer)
	// reconnect after every Connection: close response, and closing the
	// listener resets the connections waiting in its accept queue. So keep
	// connections open again until none waits in the queue and no new one
	// has arrived for a moment (a CPU-starved accept loop can leave some
	// queued past that moment), close the listener, and only then ask
	// clients to close theirs: their next connection is refused, which they
	// can retry elsewhere.
	o.SetKeepAlive(true)
	waitUntil(func() bool {
		s := ln.Stats()
		return s.Queued == 0 && time.Since(s.LastAccept) >= quiet
	})
	ln.Close()
	// Once Serve has returned, Shutdown has no listener left to close.
	if err := <-serveErr; !errors.Is(err, net.ErrClosed) {
		log.Error("shutdown: serving had stopped", slog.String("error", err.Error()))
	}
	o.SetKeepAlive(false)
	// net/http drops a request it reads once Shutdown has begun, and
	// Shutdown closes idle connections at once: let every accepted
	// connection that is new or idle send its next request first, and be
	// answered with Connection: close.
	waitUntil(func() bool { return ln.Stats().Waiting == 0 })

	log.Info("shutdown: stopping server, waiting for in-flight requests", slog.String("timeout", o.ShutdownTimeout.String()))
	// A second signal cancels the wait: Shutdown then returns its cause.
	forced, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		select {
		case sig := <-o.Signals:
			cancel(fmt.Errorf("second signal %s during shutdown: in-flight requests cut off", sig))
		case <-forced.Done():
		}
	}()
	shutdownCtx, stop := context.WithTimeoutCause(forced, o.ShutdownTimeout,
		fmt.Errorf("shutdown: in-flight requests cut off after %s: %w", o.ShutdownTimeout, context.DeadlineExceeded))
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		err = context.Cause(shutdownCtx)
		log.Error("shutdown: connections closed", slog.String("error", err.Error()))
		return err
	}
	log.Info("shutdown: complete")
	return nil
}

// waitUntil polls done until it reports true, for at most settle.
func waitUntil(done func() bool) {
	for deadline := time.Now().Add(settle); !done() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}
