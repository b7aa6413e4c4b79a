package airgap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is an in-process OCI registry listening on 127.0.0.1.
//
// ko and go-containerregistry talk plain HTTP to a registry on 127.0.0.1
// without any "insecure" flag, so no TLS is needed.
type Registry struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// StartRegistry starts a registry on a free loopback port. Blobs live in
// memory; Close releases them.
func StartRegistry() (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("airgap: listen for registry: %w", err)
	}
	r := &Registry{
		srv: &http.Server{
			// The registry logs every request; that drowns test output.
			Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
			ReadHeaderTimeout: 30 * time.Second,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { r.done <- r.srv.Serve(ln) }()
	return r, nil
}

// Host is the registry's address, "127.0.0.1:PORT", ready to prefix a
// repository name.
func (r *Registry) Host() string { return r.ln.Addr().String() }

// Close stops the registry and waits for its server loop to end.
func (r *Registry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	if serr := <-r.done; !errors.Is(serr, http.ErrServerClosed) && serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("airgap: stop registry: %w", err)
	}
	return nil
}
