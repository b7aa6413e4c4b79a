package config

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(Config) bool
	}{
		{"defaults", nil, nil, func(c Config) bool { return c == Default() }},
		{"PORT sets the port", nil, map[string]string{"PORT": "9090"}, func(c Config) bool { return c.Addr == ":9090" }},
		{"flag wins over PORT", []string{"--addr", "127.0.0.1:7000"}, map[string]string{"PORT": "9090"},
			func(c Config) bool { return c.Addr == "127.0.0.1:7000" }},
		{"port 0 on the flag picks a free port", []string{"--addr=127.0.0.1:0"}, nil, func(c Config) bool { return c.Addr == "127.0.0.1:0" }},
		{"env durations", nil, map[string]string{"DRAIN_DELAY": "0s", "SHUTDOWN_TIMEOUT": "3s"},
			func(c Config) bool { return c.DrainDelay == 0 && c.ShutdownTimeout == 3*time.Second }},
		{"flag wins over env", []string{"--drain-delay=2s"}, map[string]string{"DRAIN_DELAY": "9s"},
			func(c Config) bool { return c.DrainDelay == 2*time.Second }},
		{"log settings", []string{"--log-level=debug"}, map[string]string{"LOG_FORMAT": "text", "LOG_LEVEL": "error"},
			func(c Config) bool { return c.LogLevel == slog.LevelDebug && c.LogFormat == "text" }},
		{"sizes", nil, map[string]string{"BODY_LIMIT": "10", "MAX_HEADER_BYTES": "9000"},
			func(c Config) bool { return c.BodyLimit == 10 && c.MaxHeaderBytes == 9000 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, env(tt.env), &strings.Builder{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config: %+v", c)
			}
		})
	}
}

func TestParseRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the error must name the value and the setting
	}{
		{"PORT not a number", nil, map[string]string{"PORT": "abc"}, `"abc" for PORT`},
		{"PORT too large", nil, map[string]string{"PORT": "70000"}, `"70000" for PORT`},
		{"PORT zero", nil, map[string]string{"PORT": "0"}, `"0" for PORT`},
		{"addr without port", []string{"--addr", "localhost"}, nil, `"localhost" for flag -addr`},
		{"addr bad port", []string{"--addr", ":99999"}, nil, `":99999" for flag -addr`},
		{"negative drain delay", []string{"--drain-delay=-1s"}, nil, `"-1s" for flag -drain-delay: must not be negative`},
		{"negative env timeout", nil, map[string]string{"SHUTDOWN_TIMEOUT": "-5s"}, `"-5s" for SHUTDOWN_TIMEOUT: must not be negative`},
		{"zero shutdown timeout", []string{"--shutdown-timeout=0"}, nil, `"0" for flag -shutdown-timeout: must be greater than zero`},
		{"zero server timeout", []string{"--read-header-timeout=0"}, nil, `"0" for flag -read-header-timeout: must be at least 1s`},
		{"not a duration", nil, map[string]string{"IDLE_TIMEOUT": "soon"}, `"soon" for IDLE_TIMEOUT`},
		{"unknown log level", nil, map[string]string{"LOG_LEVEL": "loud"}, `"loud" for LOG_LEVEL`},
		{"unknown log format", []string{"--log-format=xml"}, nil, `"xml" for flag -log-format`},
		{"body limit not positive", nil, map[string]string{"BODY_LIMIT": "-1"}, `"-1" for BODY_LIMIT`},
		{"header limit not a number", []string{"--max-header-bytes=lots"}, nil, `"lots" for flag -max-header-bytes`},
		{"unknown flag", []string{"--colour"}, nil, "flag provided but not defined: -colour"},
		{"stray argument", []string{"serve"}, nil, `unexpected argument "serve"`},
		{"read header timeout that resets every connection", nil, map[string]string{"READ_HEADER_TIMEOUT": "1ns"},
			`invalid value "1ns" for READ_HEADER_TIMEOUT: must be at least 1s: shorter cuts clients off before they have sent their headers`},
		{"read timeout too short", []string{"--read-timeout=999ms"}, nil, `"999ms" for flag -read-timeout: must be at least 1s`},
		{"write timeout that resets every connection", nil, map[string]string{"WRITE_TIMEOUT": "1ns"},
			`invalid value "1ns" for WRITE_TIMEOUT: must be at least 1s: shorter resets connections before the response is written`},
		{"idle timeout too short", nil, map[string]string{"IDLE_TIMEOUT": "10ms"}, `"10ms" for IDLE_TIMEOUT: must be at least 1s`},
		{"request timeout too short", []string{"--request-timeout=1us"}, nil, `"1us" for flag -request-timeout: must be at least 100ms`},
		{"header limit too small", nil, map[string]string{"MAX_HEADER_BYTES": "100"}, `"100" for MAX_HEADER_BYTES: must be at least 8192`},
		{"too few connections", nil, map[string]string{"MAX_CONNECTIONS": "0"}, `"0" for MAX_CONNECTIONS: must be at least 16`},
		{"request timeout beyond write timeout", []string{"--request-timeout=1m", "--write-timeout=30s"}, nil, "request timeout 1m0s must not exceed write timeout 30s"},
		{"pprof not a bool", nil, map[string]string{"PPROF": "yes please", "METRICS_ADDR": ":9090"}, `"yes please" for PPROF: must be true or false`},
		{"pprof on the service port", []string{"--pprof"}, nil, "pprof is served only on the metrics port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var usage strings.Builder
			_, err := Parse(tt.args, env(tt.env), &usage)
			if err == nil {
				t.Fatal("Parse accepted a bad value")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if usage.Len() != 0 {
				t.Errorf("usage written on error:\n%s", usage.String())
			}
		})
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var usage strings.Builder
	_, err := Parse([]string{"--help"}, env(nil), &usage)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("Parse(--help) error = %v, want ErrHelp", err)
	}
	for _, want := range []string{"--addr", "PORT", "--log-level", "LOG_LEVEL", "--log-format", "--drain-delay", "DRAIN_DELAY",
		"--shutdown-timeout", "--read-header-timeout", "--read-timeout", "--write-timeout", "--idle-timeout",
		"--request-timeout", "--max-header-bytes", "--body-limit", "--metrics-addr", "METRICS_ADDR", "--max-connections", "MAX_CONNECTIONS"} {
		if !strings.Contains(usage.String(), want) {
			t.Errorf("usage does not mention %s", want)
		}
	}
}

// Every flag has its environment variable, named after it, and both set
// the same field the same way.
func TestEveryFlagHasItsVariable(t *testing.T) {
	values := map[string]string{
		"PORT": "9000", "LOG_LEVEL": "warn", "LOG_FORMAT": "text", "DRAIN_DELAY": "1s",
		"SHUTDOWN_TIMEOUT": "2s", "READ_HEADER_TIMEOUT": "3s", "READ_TIMEOUT": "4s", "WRITE_TIMEOUT": "15s",
		"IDLE_TIMEOUT": "6s", "REQUEST_TIMEOUT": "7s", "MAX_HEADER_BYTES": "8192", "BODY_LIMIT": "9",
		"METRICS_ADDR":    "127.0.0.1:9090",
		"PPROF":           "true",
		"MAX_CONNECTIONS": "100",
	}
	var usage strings.Builder
	Parse([]string{"--help"}, env(nil), &usage)
	for _, line := range strings.Split(usage.String(), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "env" {
			if _, ok := values[strings.TrimSuffix(f[1], ",")]; !ok {
				t.Errorf("no value in this test for %s", f[1])
			}
		}
	}
	fromEnv, err := Parse(nil, env(values), &usage)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for k, v := range values {
		if k == "PORT" {
			k, v = "ADDR", ":"+v
		}
		args = append(args, "--"+strings.ToLower(strings.ReplaceAll(k, "_", "-"))+"="+v)
	}
	fromFlags, err := Parse(args, env(nil), &usage)
	if err != nil {
		t.Fatal(err)
	}
	if fromEnv != fromFlags || fromEnv == Default() {
		t.Errorf("environment gives %+v, flags give %+v", fromEnv, fromFlags)
	}
	if fromEnv.LogLevel != slog.LevelWarn || fromEnv.Addr != ":9000" || fromEnv.BodyLimit != 9 {
		t.Errorf("unexpected config from the environment: %+v", fromEnv)
	}
}
