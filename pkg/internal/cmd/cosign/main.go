// Command cosign runs the cosign release the project pins (airgap.CosignModule), building it into the user cache
// dir the first time:
//
//	go run ./pkg/internal/cmd/cosign version
//	go run ./pkg/internal/cmd/cosign verify --key cosign.pub IMAGE
//
// .ci/run uses it to build cosign before the tests, so the signing test spends its time signing.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"

	"github.com/kobuilt/hello/pkg/internal/airgap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bin, err := airgap.Cosign(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cosign:", err)
		os.Exit(1)
	}
	cmd := exec.CommandContext(ctx, bin, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "cosign:", err)
		os.Exit(1)
	}
}
