//go:build figures

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kobuilt/hello/pkg/internal/airgap"
	"github.com/kobuilt/hello/pkg/internal/imagecompare"
)

// figuresEnv names the directory TestDockerfileFigures writes its Markdown, JSON and SVG to. The README's
// figures come from:
//
//	HELLO_FIGURES_DIR=$PWD/pkg/internal/e2e/testdata/figures go test -tags figures -count=1 -timeout 60m -run TestDockerfileFigures -v ./pkg/internal/e2e
const figuresEnv = "HELLO_FIGURES_DIR"

// TestDockerfileFigures measures single-stage, multi-stage Dockerfile and ko from one commit in one run: sizes and
// layers, cold build and warm rebuild after a one-line change, and whether two builds give the same digest. It
// takes several minutes on two cores and measures rather than checks, so it is built only with -tags figures
// (CI vets it with that tag so it keeps compiling) and never shows up as a skip.
func TestDockerfileFigures(t *testing.T) {
	outDir := os.Getenv(figuresEnv)
	if outDir == "" {
		t.Fatalf("set %s=DIR: the directory to write the figures to", figuresEnv)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := harness(t)
	d := dockerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	src := dfClone(t)
	want := koStamp(t, src, "HEAD", false)
	goImage := dfGoImage(t)
	args := dfBuildArgs(t, goImage, h.Base, want)
	repo := h.Registry.Host() + "/figures"
	tags := map[string]string{}
	for _, n := range []string{"single", "multi", "multi-again", "multi-sde1", "multi-sde2", "multi-warm", "single-warm"} {
		tags[n] = repo + "/" + n + ":test"
	}
	var all []string
	for _, tag := range tags {
		all = append(all, tag)
	}
	dfCleanupImages(t, d, all...)

	loadStart := dfLoadAvg()
	// Base images are pulled once up front: "cold" means no build cache, not a cold network.
	for _, img := range []string{goImage, h.Base} {
		if _, err := run(d.Command(ctx, "pull", img)); err != nil {
			t.Fatal(err)
		}
	}
	prune := func() {
		if _, err := run(d.Command(ctx, "builder", "prune", "--all", "--force")); err != nil {
			t.Fatal(err)
		}
	}
	build := func(tag, target string, extra ...string) (time.Duration, string) {
		dur, err := dfDockerBuild(ctx, d, src, tag, target, append(append([]string{}, args...), extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		return dur, dfPush(t, ctx, d, tag)
	}

	// ko runs from its already-compiled binary so a fresh GOCACHE measures the service's build, not ko's.
	koBin, err := airgap.ToolPath(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	gocache := t.TempDir()
	ko := func(repoName string) (string, time.Duration) {
		k := h.Ko(src)
		k.Bin = koBin
		return dfKoBuild(t, ctx, k, repo+"/"+repoName, want, "GOCACHE="+gocache)
	}

	prune()
	singleCold, singleRef := build(tags["single"], "single-stage")
	prune()
	multiCold, multiRef := build(tags["multi"], "")
	koRef, koCold := ko("ko")
	t.Logf("cold: single-stage %s, multi-stage %s, ko %s", singleCold, multiCold, koCold)

	report, err := imagecompare.Compare(ctx, []string{"ko=" + koRef, "multi-stage=" + multiRef, "single-stage=" + singleRef}, imagecompare.DefaultIgnoredEnv,
		imagecompare.WithRecompression(dfRegzipLevel))
	if err != nil {
		t.Fatal(err)
	}

	// Digest stability, same sources: ko again; Docker again without its layer cache; and twice with
	// SOURCE_DATE_EPOCH set to the commit time.
	koRef2, _ := ko("ko")
	_, multiAgain := build(tags["multi-again"], "", "--no-cache")
	ct := dfCommitTime(t, src)
	_, sde1 := build(tags["multi-sde1"], "", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH="+ct)
	_, sde2 := build(tags["multi-sde2"], "", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH="+ct)
	digest := func(ref string) string { return ref[strings.LastIndex(ref, "@")+1:] }

	// One-line code change, then warm rebuilds.
	main := filepath.Join(src, "cmd", "hello", "main.go")
	f, err := os.OpenFile(main, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nvar _ = \"one-line change\"\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, koWarm := ko("ko-warm")
	multiWarm, _ := build(tags["multi-warm"], "")
	singleWarm, _ := build(tags["single-warm"], "single-stage")
	t.Logf("warm: single-stage %s, multi-stage %s, ko %s", singleWarm, multiWarm, koWarm)

	koF, multi, single := report.Images[0], report.Images[1], report.Images[2]
	dockerVersion, _ := run(d.Command(ctx, "version", "--format", "{{.Server.Version}}"))
	var md bytes.Buffer
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	same := func(a, b string) string {
		if a == b {
			return "identical (" + dfShort(a) + ")"
		}
		return "different (" + dfShort(a) + " vs " + dfShort(b) + ")"
	}
	head, err := gitHead(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&md, "Measured %s at commit %s on %s with Go %s, Docker %s (BuildKit, vfs storage), by `%s=DIR go test -tags figures -run TestDockerfileFigures ./pkg/internal/e2e`. Bases are the offline stand-ins (golang: this machine's toolchain + busybox; distroless/static: pkg/internal/airgap's).\n\n",
		time.Now().UTC().Format("2006-01-02"), head, runtime.GOARCH, strings.TrimPrefix(dfGoVersion(t), "go"), strings.TrimSpace(dockerVersion), figuresEnv)
	fmt.Fprintf(&md, "| | single-stage | multi-stage Dockerfile | ko |\n|---|---|---|---|\n")
	fmt.Fprintf(&md, "| compressed size, as pushed | %s | %s | %s |\n", imagecompare.MB(single.CompressedBytes), imagecompare.MB(multi.CompressedBytes), imagecompare.MB(koF.CompressedBytes))
	fmt.Fprintf(&md, "| all layers re-gzipped at -%d (same encoder) | %s | %s | %s |\n", dfRegzipLevel, imagecompare.MB(single.GzipBytes), imagecompare.MB(multi.GzipBytes), imagecompare.MB(koF.GzipBytes))
	fmt.Fprintf(&md, "| uncompressed size | %s | %s | %s |\n", imagecompare.MB(single.UncompressedBytes), imagecompare.MB(multi.UncompressedBytes), imagecompare.MB(koF.UncompressedBytes))
	fmt.Fprintf(&md, "| layers | %d | %d | %d |\n", single.Layers, multi.Layers, koF.Layers)
	fmt.Fprintf(&md, "| cold build (empty build cache) | %s | %s | %s |\n", sec(singleCold), sec(multiCold), sec(koCold))
	fmt.Fprintf(&md, "| warm rebuild after a one-line change | %s | %s | %s |\n", sec(singleWarm), sec(multiWarm), sec(koWarm))
	fmt.Fprintf(&md, "| digest, second build of the same commit | | %s (`--no-cache`) | %s |\n", same(digest(multiRef), digest(multiAgain)), same(digest(koRef), digest(koRef2)))
	fmt.Fprintf(&md, "| same, both with `SOURCE_DATE_EPOCH=%s` | | %s | |\n\n", ct, same(digest(sde1), digest(sde2)))
	fmt.Fprintf(&md, "Exact bytes, multi-stage vs ko: as pushed %d vs %d, re-gzipped %d vs %d, uncompressed %d vs %d. Single-stage / multi-stage: %.1fx as pushed, %.1fx uncompressed. Load average while measuring: %s (other builds shared the 2 cores).\n\n",
		multi.CompressedBytes, koF.CompressedBytes, multi.GzipBytes, koF.GzipBytes, multi.UncompressedBytes, koF.UncompressedBytes,
		float64(single.CompressedBytes)/float64(multi.CompressedBytes), float64(single.UncompressedBytes)/float64(multi.UncompressedBytes), loadStart)
	if err := imagecompare.WriteMarkdown(&md, report); err != nil {
		t.Fatal(err)
	}
	var svg bytes.Buffer
	if err := imagecompare.WriteSVG(&svg, report.Images); err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := imagecompare.WriteJSON(&js, report); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"dockerfile-vs-ko.md": md.Bytes(), "dockerfile-vs-ko.svg": svg.Bytes(), "dockerfile-vs-ko.json": js.Bytes()} {
		if err := os.WriteFile(filepath.Join(outDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("figures written to %s:\n%s", outDir, md.String())
	if len(report.Verdict.Outcomes) != 2 || !report.Verdict.Outcomes[0].SameOutcome {
		t.Errorf("multi-stage vs ko: %+v", report.Verdict.Outcomes)
	}
	if digest(koRef) != digest(koRef2) {
		t.Errorf("ko digests differ across two builds of one commit: %s vs %s", koRef, koRef2)
	}
}

func dfShort(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// dfLoadAvg is /proc/loadavg's 1, 5 and 15 minute averages, or "unknown".
func dfLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func dfCommitTime(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("git", "show", "-s", "--format=%ct", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func dfGoVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
