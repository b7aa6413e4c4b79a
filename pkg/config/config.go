// Package config reads hello's settings from flags and the environment.
//
// Every setting has a flag and an environment variable named after it
// (--drain-delay and DRAIN_DELAY); the flag wins. The one exception is
// --addr, whose variable is PORT and sets only the port, the Knative and
// Cloud Run convention.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is everything the service can be told at start-up.
type Config struct {
	Addr string
	// MetricsAddr, when set, is where /metrics and /version are served
	// instead of Addr, so that only the scraper and operators reach them.
	MetricsAddr string
	// Pprof serves net/http/pprof on MetricsAddr, never on Addr.
	Pprof     bool
	LogLevel  slog.Level
	LogFormat string // "json" or "text"

	// Shutdown: readiness turns 503, the server keeps serving for
	// DrainDelay, then in-flight requests get ShutdownTimeout to finish.
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	RequestTimeout    time.Duration
	MaxHeaderBytes    int
	BodyLimit         int64
	MaxConnections    int
}

// Default is the configuration with nothing set.
func Default() Config {
	return Config{
		Addr:              ":8080",
		LogLevel:          slog.LevelInfo,
		LogFormat:         "json",
		DrainDelay:        5 * time.Second,
		ShutdownTimeout:   20 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		// Longer than the idle timeout of any load balancer in front
		// (GCP's 600s backend keep-alive, AWS ALB's 60s, nginx's 60s), so
		// that it closes first and never sends on a connection this side is
		// closing (a 502); docs/operations.md.
		IdleTimeout:    620 * time.Second,
		RequestTimeout: 10 * time.Second,
		// nginx reads headers in 8 KiB buffers; a hello needs far less, and
		// each byte allowed costs memory on every connection that floods
		// (cmd/hello's memory budget).
		MaxHeaderBytes: 8 << 10,
		BodyLimit:      1 << 20,
		MaxConnections: 1024,
	}
}

// ErrHelp is returned when -h or --help was asked for; the usage has been
// written and the caller should exit 0.
var ErrHelp = flag.ErrHelp

// Parse reads args (without the program name) and the environment through
// getenv. Usage goes to usage when help is asked for. Errors are one line
// that names the value and where it came from, and says why it is wrong.
func Parse(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("hello", flag.ContinueOnError)
	fs.Var(set(&c.Addr, hostPort), "addr", "listen address host:port; PORT sets the port alone")
	fs.Var(set(&c.MetricsAddr, func(s string) (string, error) {
		if s == "" {
			return "", nil // off: served on --addr
		}
		return hostPort(s)
	}), "metrics-addr", "listen address host:port of /metrics and /version; empty: served on --addr")
	fs.Var(set(&c.Pprof, func(s string) (bool, error) {
		on, err := strconv.ParseBool(s)
		if err != nil {
			err = errors.New("must be true or false")
		}
		return on, err
	}), "pprof", "serve /debug/pprof/ on --metrics-addr, for profiling with go tool pprof")
	fs.Var(set(&c.LogLevel, func(s string) (l slog.Level, err error) {
		if l.UnmarshalText([]byte(s)) != nil {
			err = errors.New("must be debug, info, warn or error")
		}
		return l, err
	}), "log-level", "log level: debug, info, warn or error")
	fs.Var(set(&c.LogFormat, func(s string) (string, error) {
		if s != "json" && s != "text" {
			return "", errors.New("must be one of json, text")
		}
		return s, nil
	}), "log-format", "log format: json (for machines) or text (for humans)")
	fs.Var(set(&c.DrainDelay, atLeast[time.Duration](0, "")), "drain-delay", "how long to keep serving after readiness turns 503 on shutdown")
	fs.Var(set(&c.ShutdownTimeout, atLeast[time.Duration](1, "")), "shutdown-timeout", "how long in-flight requests get to finish after draining")
	// Below these floors the server starts but cannot serve: it resets
	// connections before clients on a slow link or a busy node have sent a
	// request or read the answer.
	fs.Var(set(&c.ReadHeaderTimeout, atLeast(time.Second, "shorter cuts clients off before they have sent their headers")),
		"read-header-timeout", "time allowed to read request headers")
	fs.Var(set(&c.ReadTimeout, atLeast(time.Second, "shorter cuts clients off before they have sent their request")),
		"read-timeout", "time allowed to read a whole request")
	fs.Var(set(&c.WriteTimeout, atLeast(time.Second, "shorter resets connections before the response is written")),
		"write-timeout", "time allowed from the end of the request headers to the end of the response")
	fs.Var(set(&c.IdleTimeout, atLeast(time.Second, "shorter closes keep-alive connections under clients about to reuse them")),
		"idle-timeout", "how long an idle keep-alive connection stays open")
	fs.Var(set(&c.RequestTimeout, atLeast(100*time.Millisecond, "shorter fails every request that waits on anything")),
		"request-timeout", "deadline of each request's context")
	fs.Var(set(&c.MaxHeaderBytes, atLeast(8<<10, "browsers with a few cookies send more")),
		"max-header-bytes", "largest request line and header block in bytes (431 beyond)")
	fs.Var(set(&c.BodyLimit, atLeast[int64](1, "")), "body-limit", "largest request body in bytes (413 beyond)")
	fs.Var(set(&c.MaxConnections, atLeast(16, "fewer and a few busy clients refuse the probes")),
		"max-connections", "most connections open at once; at the cap the longest-idle one is closed")

	// The environment first, then the flags over it: the flag wins.
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v := getenv(name)
		if v == "" || err != nil {
			return
		}
		if name == "PORT" {
			if p, perr := strconv.Atoi(v); perr != nil || p < 1 || p > 65535 {
				err = fmt.Errorf("invalid value %q for PORT: must be a port number from 1 to 65535", v)
				return
			}
			v = ":" + v
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("invalid value %q for %s: %w", v, name, serr)
		}
	})
	if err != nil {
		return c, err
	}
	// The flag package would print its error and the whole usage; the
	// caller prints the one-line error instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(usage, fs)
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: hello takes only flags", fs.Arg(0))
	}
	if c.Pprof && c.MetricsAddr == "" {
		return c, errors.New("pprof is served only on the metrics port: set --metrics-addr (METRICS_ADDR) too")
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.Addr {
		return c, fmt.Errorf("metrics address %s must differ from the service address", c.MetricsAddr)
	}
	if c.RequestTimeout > c.WriteTimeout {
		return c, fmt.Errorf("request timeout %s must not exceed write timeout %s: the response could not be written", c.RequestTimeout, c.WriteTimeout)
	}
	return c, nil
}

// envName is the environment variable of a flag: --drain-delay is
// DRAIN_DELAY, and --addr is PORT.
func envName(flag string) string {
	if flag == "addr" {
		return "PORT"
	}
	return strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func writeUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: hello [flags]\n\nServes GET /hello. Each flag can also be set by the environment variable shown; the flag wins.\n\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(w, "  --%-21s %s\n  %-23s env %s, default %s\n", f.Name, f.Usage, "", envName(f.Name), strings.ToLower(f.DefValue))
	})
}

// setting is a flag.Value whose parse checks the text as it is set, from
// a flag or the environment alike, and says what the setting takes where the
// flag package would say only "parse error".
type setting[T any] struct {
	p     *T
	parse func(string) (T, error)
}

func set[T any](p *T, parse func(string) (T, error)) flag.Value { return setting[T]{p, parse} }

// String may be called on a zero setting, as flag.Value's contract allows.
func (s setting[T]) String() string {
	if s.p == nil {
		return ""
	}
	return fmt.Sprint(*s.p)
}

// IsBoolFlag lets a bool setting be given as --pprof alone, as the flag
// package's own bools can.
func (s setting[T]) IsBoolFlag() bool {
	_, ok := any(s.p).(*bool)
	return ok
}

func (s setting[T]) Set(text string) error {
	v, err := s.parse(text)
	if err == nil {
		*s.p = v
	}
	return err
}

// atLeast parses a duration or a whole number no smaller than least; why
// says what goes wrong below it (empty for a floor of 0 or 1).
func atLeast[T time.Duration | int | int64](least T, why string) func(string) (T, error) {
	return func(s string) (T, error) {
		var v T
		if _, ok := any(v).(time.Duration); ok {
			d, err := time.ParseDuration(s)
			if err != nil {
				return 0, errors.New("must be a duration such as 500ms, 5s or 1m")
			}
			v = T(d)
		} else {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || int64(T(n)) != n {
				return 0, errors.New("must be a whole number")
			}
			v = T(n)
		}
		switch {
		case v < 0:
			return 0, errors.New("must not be negative")
		case v < least && why == "": // the floors without a reason are 1
			return 0, errors.New("must be greater than zero")
		case v < least:
			return 0, fmt.Errorf("must be at least %v: %s", least, why)
		}
		return v, nil
	}
}

func hostPort(s string) (string, error) {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", errors.New("must be host:port, for example :8080 or 127.0.0.1:8080")
	}
	// Port 0 asks the kernel for a free port, which tests and benchmarks use.
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", errors.New("port must be a number from 0 to 65535")
	}
	return s, nil
}
