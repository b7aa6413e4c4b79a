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
	LogLevel    slog.Level
	LogFormat   string // "json" or "text"

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
		MaxHeaderBytes: 32 << 10,
		BodyLimit:      1 << 20,
		MaxConnections: 1024,
	}
}

// MinHeaderBytes is the smallest MaxHeaderBytes; net/http could not hold a
// header block to less than 4097 bytes anyway (see cmd/hello).
const MinHeaderBytes = 8 << 10

// ErrHelp is returned when -h or --help was asked for; the usage has been
// written and the caller should exit 0.
var ErrHelp = flag.ErrHelp

// Parse reads args (without the program name) and the environment through
// getenv. Usage goes to usage when help is asked for. Errors are one line
// that names the value and says why it is wrong.
func Parse(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("hello", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address host:port; PORT sets the port alone")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "listen address host:port of /metrics and /version; empty: served on --addr")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: json (for machines) or text (for humans)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay, "how long to keep serving after readiness turns 503 on shutdown")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long in-flight requests get to finish after draining")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "time allowed to read request headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "time allowed to read a whole request")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "time allowed from the end of the request headers to the end of the response")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "how long an idle keep-alive connection stays open")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "deadline of each request's context")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "largest request line and header block in bytes (431 beyond)")
	fs.Int64Var(&c.BodyLimit, "body-limit", c.BodyLimit, "largest request body in bytes (413 beyond)")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "most connections open at once; at the cap the longest-idle one is closed")

	// Where each setting came from, as the user typed it, for errors.
	given := map[string]*string{}
	fs.VisitAll(func(f *flag.Flag) {
		given[f.Name] = new(string)
		f.Value = quoted{f.Value, given[f.Name]}
	})
	// The flag package would print its error and the whole usage; the
	// caller prints our one-line error instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(usage, fs)
			return c, ErrHelp
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: hello takes only flags", fs.Arg(0))
	}

	from := map[string]string{}
	fs.Visit(func(f *flag.Flag) { from[f.Name] = fmt.Sprintf("%q for flag -%s", *given[f.Name], f.Name) })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env, v := envName(f.Name), ""
		if _, ok := from[f.Name]; ok || err != nil {
			return
		}
		if v = getenv(env); v == "" {
			return
		}
		from[f.Name] = fmt.Sprintf("%q for %s", v, env)
		if env == "PORT" {
			p, perr := strconv.Atoi(v)
			if perr != nil || p < 1 || p > 65535 {
				err = fmt.Errorf("invalid value %s: must be a port number from 1 to 65535", from[f.Name])
				return
			}
			host, _, _ := net.SplitHostPort(c.Addr)
			v = net.JoinHostPort(host, v)
		}
		if serr := f.Value.Set(v); serr != nil {
			err = fmt.Errorf("invalid value %s: %w", from[f.Name], serr)
		}
	})
	if err != nil {
		return c, err
	}

	// One pass over every value, whichever way it came.
	for _, v := range []struct {
		name string
		err  error
	}{
		{"addr", checkAddr(c.Addr)},
		{"log-format", oneOf(c.LogFormat, "json", "text")},
		{"drain-delay", atLeast(c.DrainDelay, 0, "")},
		{"shutdown-timeout", atLeast(c.ShutdownTimeout, 1, "")},
		// Below these the server starts but cannot serve: it resets
		// connections before clients on a slow link or a busy node have
		// sent a request or read the answer.
		{"read-header-timeout", atLeast(c.ReadHeaderTimeout, time.Second, "shorter cuts clients off before they have sent their headers")},
		{"read-timeout", atLeast(c.ReadTimeout, time.Second, "shorter cuts clients off before they have sent their request")},
		{"write-timeout", atLeast(c.WriteTimeout, time.Second, "shorter resets connections before the response is written")},
		{"idle-timeout", atLeast(c.IdleTimeout, time.Second, "shorter closes keep-alive connections under clients about to reuse them")},
		{"request-timeout", atLeast(c.RequestTimeout, 100*time.Millisecond, "shorter fails every request that waits on anything")},
		{"max-header-bytes", atLeastBytes(int64(c.MaxHeaderBytes), MinHeaderBytes, "browsers with a few cookies send more")},
		{"body-limit", atLeastBytes(c.BodyLimit, 1, "")},
		{"max-connections", atLeastCount(c.MaxConnections, 16, "fewer and a few busy clients refuse the probes")},
	} {
		if v.err != nil {
			return c, fmt.Errorf("invalid value %s: %w", from[v.name], v.err)
		}
	}
	if c.MetricsAddr != "" {
		if err := checkAddr(c.MetricsAddr); err != nil {
			return c, fmt.Errorf("invalid value %s: %w", from["metrics-addr"], err)
		}
		if c.MetricsAddr == c.Addr {
			return c, fmt.Errorf("metrics address %s must differ from the service address", c.MetricsAddr)
		}
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

// quoted records the text a setting was given, so that errors quote it as
// typed (0, not 0s), and says what the setting takes where the flag
// package would say only "parse error".
type quoted struct {
	flag.Value
	text *string
}

func (q quoted) Set(s string) error {
	*q.text = s
	if q.Value.Set(s) == nil {
		return nil
	}
	switch q.Value.(flag.Getter).Get().(type) {
	case time.Duration:
		return errors.New("must be a duration such as 500ms, 5s or 1m")
	case *slog.Level:
		return errors.New("must be debug, info, warn or error")
	}
	return errors.New("must be a whole number")
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port, for example :8080 or 127.0.0.1:8080")
	}
	// Port 0 asks the kernel for a free port, which tests and benchmarks use.
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}

func oneOf(v string, choices ...string) error {
	for _, c := range choices {
		if v == c {
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(choices, ", "))
}

// atLeast says why d is too short for a setting whose floor is least, if it is.
func atLeast(d, least time.Duration, why string) error {
	switch {
	case d < 0:
		return errors.New("must not be negative")
	case d == 0 && least > 0:
		return errors.New("must be greater than zero")
	case d < least:
		return fmt.Errorf("must be at least %s: %s", least, why)
	}
	return nil
}

func atLeastCount(n, least int, why string) error {
	if n < least {
		return fmt.Errorf("must be at least %d: %s", least, why)
	}
	return nil
}

func atLeastBytes(n, least int64, why string) error {
	switch {
	case n < 1:
		return errors.New("must be a positive number of bytes")
	case n < least:
		return fmt.Errorf("must be at least %d: %s", least, why)
	}
	return nil
}
