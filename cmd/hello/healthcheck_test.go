package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoopback(t *testing.T) {
	tests := []struct {
		addr, want string
	}{
		{":8080", "127.0.0.1:8080"},
		{"0.0.0.0:8080", "127.0.0.1:8080"},
		{"[::]:8080", "[::1]:8080"},
		{"127.0.0.1:9000", "127.0.0.1:9000"},
		{"10.1.2.3:8080", "10.1.2.3:8080"},
		{"[fd00::1]:8080", "[fd00::1]:8080"},
	}
	for _, tt := range tests {
		if got := loopback(tt.addr); got != tt.want {
			t.Errorf("loopback(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// The check reads the server's own configuration: the port from PORT, or
// the address from --addr, and finds the running server either way.
func TestHealthcheckFindsTheServerFromItsConfiguration(t *testing.T) {
	in := start(t, nil)
	_, port, _ := net.SplitHostPort(in.addr)
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"PORT", nil, map[string]string{"PORT": port}},
		{"--addr", []string{"--addr", in.addr}, nil},
		{"--addr wins over PORT", []string{"--addr", in.addr}, map[string]string{"PORT": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(context.Background(), append([]string{"hello", "healthcheck"}, tt.args...), func(k string) string { return tt.env[k] }, io.Discard, io.Discard); err != nil {
				t.Fatalf("healthy server: %v", err)
			}
		})
	}
}

func TestHealthcheckFails(t *testing.T) {
	// Accepts connections (the kernel does, into the backlog) and never
	// answers: what a stopped or wedged process looks like from outside.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	refused := freeAddr(t)

	tests := []struct {
		name string
		addr string
		env  map[string]string
		want string
	}{
		{"server does not answer", silent.Addr().String(), nil, "context deadline exceeded"},
		{"nothing listens", refused, nil, "connection refused"},
		{"not 200", strings.TrimPrefix(unavailable.URL, "http://"), nil, "503 Service Unavailable"},
		{"bad configuration", "", map[string]string{"PORT": "abc"}, `invalid value "abc" for PORT`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"hello", "healthcheck"}
			if tt.addr != "" {
				args = append(args, "--addr", tt.addr)
			}
			start := time.Now()
			err := run(context.Background(), args, func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
			took := time.Since(start)
			if err == nil {
				t.Fatal("healthcheck passed")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "healthcheck: ") || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting \"healthcheck: \" that contains %q", msg, tt.want)
			}
			if took > healthcheckTimeout+time.Second {
				t.Errorf("took %v, more than the %v timeout", took, healthcheckTimeout)
			}
		})
	}
}
