package airgap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// EngineAPIVersion is the Docker Engine API version the requests ask for:
// Debian 12's docker.io (20.10) speaks up to 1.41, and everything used here
// (exec-form health checks, read-only root, capabilities, security options)
// is in it.
const EngineAPIVersion = "v1.41"

// API sends one request to the daemon's Engine API, as the docker CLI and
// Compose do, for what the CLI cannot express: `docker run --health-cmd`
// always wraps its command in /bin/sh (CMD-SHELL), while the API takes the
// exec form ["CMD", ...] that a shell-less image needs. in, if not nil, is
// sent as JSON; a 2xx JSON answer is decoded into out, if not nil.
func (d *Docker) API(ctx context.Context, method, path string, in, out any) error {
	sock, ok := strings.CutPrefix(d.Host, "unix://")
	if !ok {
		return fmt.Errorf("airgap: Engine API over %s: only unix sockets are supported", d.Host)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("airgap: Engine API %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	// The host part is a placeholder: the transport always dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://docker/"+EngineAPIVersion+path, body)
	if err != nil {
		return fmt.Errorf("airgap: Engine API %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("airgap: Engine API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("airgap: Engine API %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("airgap: Engine API %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(raw))
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("airgap: Engine API %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}
