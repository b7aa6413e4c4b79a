// Command imagecompare prints container images side by side (sizes, layers, base, user, entrypoint, env, files,
// shell, setuid files, the entrypoint binary's sha256, SBOM) as Markdown or JSON, with a Mermaid and an SVG size
// chart, and says whether they deliver the same runtime contract.
//
//	go run ./pkg/internal/cmd/imagecompare ko=127.0.0.1:5000/hello@sha256:... dockerfile=./hello.tar single=./oci-dir
//
// Each image is NAME=SOURCE (or just SOURCE): an OCI layout directory, a `docker save` tar file, or a registry
// reference (plain HTTP is used for 127.0.0.1 and localhost).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kobuilt/hello/pkg/internal/imagecompare"
)

// Exit codes: 1 means the comparison ran and found a different outcome under -strict; 2 means it could not run.
const (
	exitDifferent = 1
	exitError     = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imagecompare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "markdown", "output on stdout: markdown, json or both")
	jsonOut := fs.String("json", "", "also write the JSON report to this file")
	mdOut := fs.String("markdown", "", "also write the Markdown report to this file")
	svgOut := fs.String("svg", "", "write the size chart as SVG to this file")
	platform := fs.String("platform", "", "platform to pick from an index (default linux/<this machine's arch>)")
	ignoreEnv := fs.String("ignore-env", strings.Join(imagecompare.DefaultIgnoredEnv, ","), "comma-separated env vars left out of the verdict")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to registries other than localhost/127.0.0.1")
	resolveBase := fs.Bool("resolve-base", true, "fetch the declared base image to check its layers are the image's bottom layers")
	regzip := fs.Int("regzip", 0, "also gzip every layer at this level (1-9) to compare content size independent of each tool's encoder settings")
	strict := fs.Bool("strict", false, "exit 1 unless the verdict is \"same outcome\"")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: imagecompare [flags] [NAME=]IMAGE [NAME=]IMAGE...\n\nIMAGE is an OCI layout directory, a `docker save` tar file or a registry reference.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitError
	}
	if fs.NArg() < 2 {
		fmt.Fprintln(stderr, "imagecompare: need at least two images to compare")
		fs.Usage()
		return exitError
	}
	if *format != "markdown" && *format != "json" && *format != "both" {
		fmt.Fprintf(stderr, "imagecompare: -format must be markdown, json or both, not %q\n", *format)
		return exitError
	}
	if *regzip < 0 || *regzip > 9 {
		fmt.Fprintf(stderr, "imagecompare: -regzip must be 1-9 (0: off), not %d\n", *regzip)
		return exitError
	}
	opts := []imagecompare.Option{imagecompare.WithInsecure(*insecure), imagecompare.WithBaseResolution(*resolveBase), imagecompare.WithRecompression(*regzip)}
	if *platform != "" {
		p, err := v1.ParsePlatform(*platform)
		if err != nil {
			fmt.Fprintf(stderr, "imagecompare: -platform %q: %v\n", *platform, err)
			return exitError
		}
		opts = append(opts, imagecompare.WithPlatform(*p))
	}
	var ignored []string
	for _, k := range strings.Split(*ignoreEnv, ",") {
		if k = strings.TrimSpace(k); k != "" {
			ignored = append(ignored, k)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	report, err := imagecompare.Compare(ctx, fs.Args(), ignored, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "imagecompare: %v\n", err)
		return exitError
	}

	writers := []struct {
		path  string
		write func(io.Writer) error
	}{
		{*jsonOut, func(w io.Writer) error { return imagecompare.WriteJSON(w, report) }},
		{*mdOut, func(w io.Writer) error { return imagecompare.WriteMarkdown(w, report) }},
		{*svgOut, func(w io.Writer) error { return imagecompare.WriteSVG(w, report.Images) }},
	}
	for _, wr := range writers {
		if wr.path == "" {
			continue
		}
		if err := writeFile(wr.path, wr.write); err != nil {
			fmt.Fprintf(stderr, "imagecompare: %v\n", err)
			return exitError
		}
	}
	if *format == "markdown" || *format == "both" {
		if err := imagecompare.WriteMarkdown(stdout, report); err != nil {
			fmt.Fprintf(stderr, "imagecompare: %v\n", err)
			return exitError
		}
	}
	if *format == "json" || *format == "both" {
		if err := imagecompare.WriteJSON(stdout, report); err != nil {
			fmt.Fprintf(stderr, "imagecompare: %v\n", err)
			return exitError
		}
	}
	if *strict && !report.Verdict.SameOutcome {
		return exitDifferent
	}
	return 0
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	return nil
}
