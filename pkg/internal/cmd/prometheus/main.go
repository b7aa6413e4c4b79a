// Command prometheus runs the Prometheus server the node test uses
// (monitoring.PrometheusModule), building it into the user cache dir the
// first time:
//
//	go run ./pkg/internal/cmd/prometheus --version
//
// .ci/run uses it to build Prometheus before the tests.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"

	"github.com/kobuilt/hello/pkg/internal/monitoring"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bin, err := monitoring.Prometheus(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "prometheus:", err)
		os.Exit(1)
	}
	cmd := exec.CommandContext(ctx, bin, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "prometheus:", err)
		os.Exit(1)
	}
}
