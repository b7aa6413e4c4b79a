package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestProvenance(t *testing.T) {
	commit := strings.Repeat("ab", 20)
	base := "gcr.io/distroless/static-debian13:nonroot@sha256:" + strings.Repeat("0f", 32)
	args := []string{
		"-builder-id", "https://github.com/you/hello/.github/workflows/build.yml@refs/heads/main",
		"-source", "https://github.com/you/hello.git", "-ref", "refs/heads/main",
		"-commit", commit, "-base", base, "-invocation", "https://github.com/you/hello/actions/runs/1",
	}
	var a, b bytes.Buffer
	if err := run(args, &a); err != nil {
		t.Fatal(err)
	}
	if err := run(args, &b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("two runs with the same flags printed different predicates")
	}
	var p Predicate
	if err := json.Unmarshal(a.Bytes(), &p); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, a.String())
	}
	deps := p.BuildDefinition.ResolvedDependencies
	if p.BuildDefinition.BuildType != "https://github.com/you/hello/blob/main/docs/image.md#verify-the-signature-the-sbom-and-the-provenance" || len(deps) != 2 ||
		deps[0].URI != "git+https://github.com/you/hello@refs/heads/main" || deps[0].Digest["gitCommit"] != commit ||
		deps[1].URI != "oci://gcr.io/distroless/static-debian13:nonroot" || deps[1].Digest["sha256"] != strings.Repeat("0f", 32) ||
		p.RunDetails.Builder.ID != args[1] || p.RunDetails.Metadata == nil || p.RunDetails.Metadata.InvocationID != args[len(args)-1] {
		t.Errorf("predicate:\n%s", a.String())
	}
}

func TestProvenanceBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "-builder-id is required"},
		{[]string{"-builder-id", "b", "-source", "s", "-commit", "abc", "-base", "x@sha256:" + strings.Repeat("0", 64)}, `-commit "abc"`},
		{[]string{"-builder-id", "b", "-source", "s", "-commit", strings.Repeat("a", 40), "-base", "distroless:nonroot"}, `-base "distroless:nonroot"`},
		{[]string{"-nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(tt.args, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) || out.Len() != 0 {
			t.Errorf("run(%q) = %v, printed %d bytes; want an error containing %q and no output", tt.args, err, out.Len(), tt.want)
		}
	}
}
