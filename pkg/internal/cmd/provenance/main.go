// Command provenance prints the SLSA v1 build provenance predicate of one `go tool ko build` of this repository,
// for `cosign attest --type slsaprovenance1 --predicate FILE IMAGE@DIGEST`. The workflow and the offline signing
// test both use it, so what users verify is what the tests verify.
//
//	go run ./pkg/internal/cmd/provenance -builder-id URI -source URI -commit SHA -base IMAGE@sha256:... [-invocation URI]
//
// Every value comes from the flags: nothing is read from the clock, so the same build gives the same predicate.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// buildType names the build this predicate describes, .ko.yaml's build of ./cmd/hello by `go tool ko build`: the
// section of the source repository's docs that explains it, in GitHub's URL layout like the workflow's -source.
// Derived, not a constant, so that a copy of this repository names its own docs.
func buildType(source string) string {
	return strings.TrimSuffix(source, ".git") + "/blob/main/docs/image.md#verify-the-signature-the-sbom-and-the-provenance"
}

type resourceDescriptor struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

// Predicate is https://slsa.dev/provenance/v1, with the fields this build fills.
type Predicate struct {
	BuildDefinition struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   map[string]any       `json:"externalParameters"`
		ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Metadata *struct {
			InvocationID string `json:"invocationId"`
		} `json:"metadata,omitempty"`
	} `json:"runDetails"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "provenance:", err)
		os.Exit(2)
	}
}

var (
	commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
	baseRE   = regexp.MustCompile(`^([^@\s]+)@sha256:([0-9a-f]{64})$`)
)

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("provenance", flag.ContinueOnError)
	builder := fs.String("builder-id", "", "who built it: the workflow's URI, e.g. https://github.com/OWNER/REPO/.github/workflows/build.yml@refs/heads/main")
	source := fs.String("source", "", "repository URI, e.g. https://github.com/OWNER/REPO")
	ref := fs.String("ref", "", "git ref built, e.g. refs/heads/main (optional)")
	commit := fs.String("commit", "", "full commit SHA built")
	base := fs.String("base", "", "base image by digest, as .ko.yaml's defaultBaseImage")
	invocation := fs.String("invocation", "", "URI of this run, e.g. the Actions run URL (optional)")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var errs []error
	if *builder == "" {
		errs = append(errs, errors.New("-builder-id is required"))
	}
	if *source == "" {
		errs = append(errs, errors.New("-source is required"))
	}
	if !commitRE.MatchString(*commit) {
		errs = append(errs, fmt.Errorf("-commit %q is not a full 40-hex-digit commit", *commit))
	}
	m := baseRE.FindStringSubmatch(*base)
	if m == nil {
		errs = append(errs, fmt.Errorf("-base %q is not IMAGE@sha256:DIGEST", *base))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	var p Predicate
	p.BuildDefinition.BuildType = buildType(*source)
	srcURI := "git+" + strings.TrimSuffix(*source, ".git")
	if *ref != "" {
		srcURI += "@" + *ref
	}
	p.BuildDefinition.ExternalParameters = map[string]any{
		"source":  map[string]any{"uri": srcURI, "digest": map[string]string{"gitCommit": *commit}},
		"command": "go tool ko build --bare ./cmd/hello",
		"config":  ".ko.yaml",
	}
	p.BuildDefinition.ResolvedDependencies = []resourceDescriptor{
		{URI: srcURI, Digest: map[string]string{"gitCommit": *commit}},
		{URI: "oci://" + m[1], Digest: map[string]string{"sha256": m[2]}},
	}
	p.RunDetails.Builder.ID = *builder
	if *invocation != "" {
		p.RunDetails.Metadata = &struct {
			InvocationID string `json:"invocationId"`
		}{*invocation}
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}
