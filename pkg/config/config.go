// Package config reads hello's settings from flags and the environment.
//
// Every setting has a flag and an environment variable; the flag wins. PORT
// follows the Knative and Cloud Run convention of naming only the port.
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
	Addr      string
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
		IdleTimeout:       120 * time.Second,
		RequestTimeout:    10 * time.Second,
		MaxHeaderBytes:    32 << 10,
		BodyLimit:         1 << 20,
	}
}

// ErrHelp is returned when -h or --help was asked for; the usage has been
// written and the caller should exit 0.
var ErrHelp = flag.ErrHelp

// option binds one flag to its environment variable and its field.
type option struct {
	flag, env, usage string
	value            flag.Value
	check            func() error
}

// Parse reads args (without the program name) and the environment through
// getenv. Usage goes to usage when help is asked for. Errors are one line
// that names the value and says why it is wrong.
func Parse(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	c := Default()
	opts := []option{
		{flag: "addr", env: "PORT", usage: "listen address host:port; PORT sets the port alone",
			value: &addrValue{&c.Addr}},
		{flag: "log-level", env: "LOG_LEVEL", usage: "log level: debug, info, warn or error",
			value: &levelValue{&c.LogLevel}},
		{flag: "log-format", env: "LOG_FORMAT", usage: "log format: json (for machines) or text (for humans)",
			value: &choiceValue{&c.LogFormat, []string{"json", "text"}}},
		{flag: "drain-delay", env: "DRAIN_DELAY", usage: "how long to keep serving after readiness turns 503 on shutdown",
			value: &durationValue{&c.DrainDelay, true}},
		{flag: "shutdown-timeout", env: "SHUTDOWN_TIMEOUT", usage: "how long in-flight requests get to finish after draining",
			value: &durationValue{&c.ShutdownTimeout, false}},
		{flag: "read-header-timeout", env: "READ_HEADER_TIMEOUT", usage: "time allowed to read request headers",
			value: &durationValue{&c.ReadHeaderTimeout, false}},
		{flag: "read-timeout", env: "READ_TIMEOUT", usage: "time allowed to read a whole request",
			value: &durationValue{&c.ReadTimeout, false}},
		{flag: "write-timeout", env: "WRITE_TIMEOUT", usage: "time allowed from the end of the request headers to the end of the response",
			value: &durationValue{&c.WriteTimeout, false}},
		{flag: "idle-timeout", env: "IDLE_TIMEOUT", usage: "how long an idle keep-alive connection stays open",
			value: &durationValue{&c.IdleTimeout, false}},
		{flag: "request-timeout", env: "REQUEST_TIMEOUT", usage: "deadline of each request's context",
			value: &durationValue{&c.RequestTimeout, false}},
		{flag: "max-header-bytes", env: "MAX_HEADER_BYTES", usage: "largest request header block in bytes",
			value: &sizeValue{p: &c.MaxHeaderBytes}},
		{flag: "body-limit", env: "BODY_LIMIT", usage: "largest request body in bytes (413 beyond)",
			value: &size64Value{&c.BodyLimit}},
	}

	fs := flag.NewFlagSet("hello", flag.ContinueOnError)
	// The flag package would print its error and the whole usage; the caller
	// prints our one-line error instead.
	fs.SetOutput(io.Discard)
	for _, o := range opts {
		fs.Var(o.value, o.flag, o.usage)
	}
	fs.Usage = func() {} // the flag package calls it on every error too
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(usage, opts)
			return c, ErrHelp
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: hello takes only flags", fs.Arg(0))
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, o := range opts {
		if set[o.flag] {
			continue
		}
		v := getenv(o.env)
		if v == "" {
			continue
		}
		if o.env == "PORT" {
			if err := setPort(&c.Addr, v); err != nil {
				return c, fmt.Errorf("invalid value %q for PORT: %w", v, err)
			}
			continue
		}
		if err := o.value.Set(v); err != nil {
			return c, fmt.Errorf("invalid value %q for %s: %w", v, o.env, err)
		}
	}
	if c.RequestTimeout > c.WriteTimeout {
		return c, fmt.Errorf("request timeout %s must not exceed write timeout %s: the response could not be written", c.RequestTimeout, c.WriteTimeout)
	}
	return c, nil
}

func writeUsage(w io.Writer, opts []option) {
	fmt.Fprintf(w, "Usage: hello [flags]\n\nServes GET /hello. Each flag can also be set by the environment variable shown; the flag wins.\n\nFlags:\n")
	for _, o := range opts {
		fmt.Fprintf(w, "  --%-21s %s\n  %-23s env %s, default %s\n", o.flag, o.usage, "", o.env, o.value.String())
	}
}

func setPort(addr *string, v string) error {
	p, err := parsePort(v)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		host = ""
	}
	*addr = net.JoinHostPort(host, strconv.Itoa(p))
	return nil
}

func parsePort(v string) (int, error) {
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, errors.New("must be a port number from 1 to 65535")
	}
	return p, nil
}

type addrValue struct{ p *string }

func (a *addrValue) String() string {
	if a.p == nil {
		return ""
	}
	return *a.p
}

func (a *addrValue) Set(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("must be host:port, for example :8080 or 127.0.0.1:8080")
	}
	// Port 0 asks the kernel for a free port, which tests and benchmarks use.
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	*a.p = v
	return nil
}

type levelValue struct{ p *slog.Level }

func (l *levelValue) String() string {
	if l.p == nil {
		return ""
	}
	return strings.ToLower(l.p.String())
}

func (l *levelValue) Set(v string) error {
	switch strings.ToLower(v) {
	case "debug":
		*l.p = slog.LevelDebug
	case "info":
		*l.p = slog.LevelInfo
	case "warn", "warning":
		*l.p = slog.LevelWarn
	case "error":
		*l.p = slog.LevelError
	default:
		return errors.New("must be debug, info, warn or error")
	}
	return nil
}

type choiceValue struct {
	p       *string
	choices []string
}

func (c *choiceValue) String() string {
	if c.p == nil {
		return ""
	}
	return *c.p
}

func (c *choiceValue) Set(v string) error {
	for _, ch := range c.choices {
		if v == ch {
			*c.p = v
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(c.choices, ", "))
}

type durationValue struct {
	p         *time.Duration
	zeroValid bool
}

func (d *durationValue) String() string {
	if d.p == nil {
		return ""
	}
	return d.p.String()
}

func (d *durationValue) Set(v string) error {
	t, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("must be a duration such as 500ms, 5s or 1m")
	}
	if t < 0 {
		return errors.New("must not be negative")
	}
	if t == 0 && !d.zeroValid {
		return errors.New("must be greater than zero")
	}
	*d.p = t
	return nil
}

type sizeValue struct{ p *int }

func (s *sizeValue) String() string {
	if s.p == nil {
		return ""
	}
	return strconv.Itoa(*s.p)
}

func (s *sizeValue) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return errors.New("must be a positive number of bytes")
	}
	*s.p = n
	return nil
}

type size64Value struct{ p *int64 }

func (s *size64Value) String() string {
	if s.p == nil {
		return ""
	}
	return strconv.FormatInt(*s.p, 10)
}

func (s *size64Value) Set(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return errors.New("must be a positive number of bytes")
	}
	*s.p = n
	return nil
}
