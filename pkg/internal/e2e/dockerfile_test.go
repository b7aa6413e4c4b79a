package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kobuilt/hello/pkg/internal/airgap"
	"github.com/kobuilt/hello/pkg/internal/imagecompare"
	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// TestDockerfileMatchesKoConfig keeps Dockerfile.reference honest without Docker: same base as .ko.yaml, the same
// go build environment, flags and ldflags in every stage, and the rules of the file itself.
func TestDockerfileMatchesKoConfig(t *testing.T) {
	root := repoRoot(t)
	df := dfRead(t, filepath.Join(root, "Dockerfile.reference"))
	var ko struct {
		DefaultBaseImage string   `json:"defaultBaseImage"`
		Env              []string `json:"defaultEnv"`
		Flags            []string `json:"defaultFlags"`
		Ldflags          []string `json:"defaultLdflags"`
		Builds           []any    `json:"builds"`
	}
	if err := yaml.Unmarshal([]byte(dfRead(t, filepath.Join(root, ".ko.yaml"))), &ko); err != nil {
		t.Fatalf(".ko.yaml: %v", err)
	}
	// ko v0.19 matches a builds: entry by full import path, which config/'s ko://./cmd/hello does not give: an
	// entry would apply to `ko build ./cmd/hello` and be skipped by `ko apply -f config/`.
	if len(ko.Builds) != 0 || len(ko.Ldflags) == 0 {
		t.Fatalf(".ko.yaml has %d builds: entries and %d defaultLdflags, want the build settings in the default* keys", len(ko.Builds), len(ko.Ldflags))
	}

	// What ko's templates become once the Dockerfile's build args stand in for the Git values.
	var ld []string
	for _, l := range ko.Ldflags {
		tpl, err := template.New("ldflags").Parse(l)
		if err != nil {
			t.Fatalf(".ko.yaml ldflag %q: %v", l, err)
		}
		var b strings.Builder
		git := map[string]any{"Tag": "${VERSION}", "IsDirty": false, "FullCommit": "${COMMIT}", "CommitDate": "${DATE}"}
		if err := tpl.Execute(&b, map[string]any{"Git": git}); err != nil {
			t.Fatalf(".ko.yaml ldflag %q: %v", l, err)
		}
		ld = append(ld, b.String())
	}
	wantLdflags := `-ldflags="` + strings.Join(ld, " ") + `"`

	tests := []struct {
		name string
		ok   func() (bool, string)
	}{
		{"BASE_IMAGE default is .ko.yaml's defaultBaseImage", func() (bool, string) {
			got := dfArg(df, "BASE_IMAGE")
			return got == ko.DefaultBaseImage && ko.DefaultBaseImage != "", fmt.Sprintf("Dockerfile %q, .ko.yaml %q", got, ko.DefaultBaseImage)
		}},
		{"GO_IMAGE default is golang:1.27 pinned by digest", func() (bool, string) {
			got := dfArg(df, "GO_IMAGE")
			return regexp.MustCompile(`^golang:1\.27@sha256:[0-9a-f]{64}$`).MatchString(got), got
		}},
		{"every stage that builds pins GOTOOLCHAIN to go.mod's toolchain line", func() (bool, string) {
			m := regexp.MustCompile(`(?m)^toolchain (go\S+)$`).FindStringSubmatch(dfRead(t, filepath.Join(root, "go.mod")))
			if m == nil {
				return false, "go.mod has no toolchain line"
			}
			n := strings.Count(df, "\nENV GOTOOLCHAIN="+m[1]+"\n")
			return n == 2 && strings.Count(df, "GOTOOLCHAIN=") == n+1, fmt.Sprintf("%d stages set ENV GOTOOLCHAIN=%s, want 2 (build and single-stage) and no other value", n, m[1])
		}},
		{"no # syntax= line (it pulls a frontend image)", func() (bool, string) {
			return !regexp.MustCompile(`(?mi)^#\s*syntax\s*=`).MatchString(df), "found a syntax directive"
		}},
		{"build stage cross-compiles on the build platform", func() (bool, string) {
			return strings.Contains(df, "FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build") &&
				strings.Contains(df, "GOOS=$TARGETOS GOARCH=$TARGETARCH"), "missing FROM --platform=$BUILDPLATFORM or TARGETOS/TARGETARCH"
		}},
		{"no whole-module download: go.mod also lists ko's tool dependencies", func() (bool, string) {
			for _, ins := range dfInstructions(df) {
				if strings.HasPrefix(ins, "RUN ") && strings.Contains(ins, "go mod download") {
					return false, ins
				}
			}
			return strings.Contains(df, "COPY go.mod go.sum ./"), "go.mod and go.sum are not copied"
		}},
		{"no HEALTHCHECK: ko cannot write one, so the images would differ", func() (bool, string) {
			for _, ins := range dfInstructions(df) {
				if strings.HasPrefix(ins, "HEALTHCHECK") {
					return false, ins
				}
			}
			return true, ""
		}},
		{"the runtime stage labels source, revision, version and created from the build args", func() (bool, string) {
			final := df[strings.LastIndex(df, "\nFROM "):]
			for _, want := range []string{
				`org.opencontainers.image.source="${SOURCE}"`, `org.opencontainers.image.revision="${COMMIT}"`,
				`org.opencontainers.image.version="${VERSION}"`, `org.opencontainers.image.created="${DATE}"`,
				// No default: a copy of this repository must not label its image with this one's URL.
				"ARG SOURCE=\n",
			} {
				if !strings.Contains(final, want) {
					return false, "lacks " + want
				}
			}
			return true, ""
		}},
		{"module and build caches are BuildKit cache mounts", func() (bool, string) {
			return strings.Contains(df, "--mount=type=cache,target=/go/pkg/mod") && strings.Contains(df, "--mount=type=cache,target=/root/.cache/go-build"), "missing cache mounts"
		}},
		{"runtime stage: binary at ko's path, non-root, exec-form entrypoint", func() (bool, string) {
			final := df[strings.LastIndex(df, "\nFROM "):]
			return strings.HasPrefix(final, "\nFROM ${BASE_IMAGE}\n") &&
				strings.Contains(final, "COPY --from=build /out/hello /ko-app/hello") &&
				strings.Contains(final, "\nUSER 65532:65532\n") &&
				strings.Contains(final, `ENTRYPOINT ["/ko-app/hello"]`), final
		}},
		{"every go build uses .ko.yaml's env, flags and ldflags", func() (bool, string) {
			var builds []string
			for _, ins := range dfInstructions(df) {
				if strings.HasPrefix(ins, "RUN ") && strings.Contains(ins, "go build") {
					builds = append(builds, ins)
				}
			}
			if len(builds) != 2 {
				return false, fmt.Sprintf("found %d go build RUN lines, want 2 (build and single-stage)", len(builds))
			}
			for _, b := range builds {
				for _, want := range append(append(append([]string{}, ko.Env...), ko.Flags...), wantLdflags, "./cmd/hello") {
					if !strings.Contains(b, want) {
						return false, fmt.Sprintf("%q lacks %q", b, want)
					}
				}
			}
			return true, ""
		}},
		{".dockerignore keeps .git out", func() (bool, string) {
			di := dfRead(t, filepath.Join(root, ".dockerignore"))
			return regexp.MustCompile(`(?m)^\.git$`).MatchString(di), di
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if ok, detail := tc.ok(); !ok {
				t.Error(detail)
			}
		})
	}
}

// TestDockerfileReference builds Dockerfile.reference for real with BuildKit on the harness's daemon, runs it like
// the ko image, and checks with pkg/internal/cmd/imagecompare's package that ko and Docker reached the same outcome from the
// same commit.
func TestDockerfileReference(t *testing.T) {
	// CI must never pass by skipping, -short or not.
	if testing.Short() && !testenv.InCI() {
		t.Skip("builds images; not in -short")
	}
	h := harness(t)
	d := dockerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	src := dfClone(t)
	want := koStamp(t, src, "HEAD", false)
	goImage := dfGoImage(t)
	repo := h.Registry.Host() + "/dockerfile-e2e"

	koRef, koTime := dfKoBuild(t, ctx, h.Ko(src), repo+"/ko", want)
	t.Logf("ko build: %s in %s", koRef, koTime.Round(time.Millisecond))

	args := dfBuildArgs(t, goImage, h.Base, want)
	multiTag, singleTag := repo+"/multi-stage:test", repo+"/single-stage:test"
	dfCleanupImages(t, d, multiTag, singleTag)
	dur, err := dfDockerBuild(ctx, d, src, multiTag, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker build (multi-stage): %s", dur.Round(time.Millisecond))
	multiRef := dfPush(t, ctx, d, multiTag)

	runLikeUsers(t, ctx, d, multiTag, want)

	// Re-gzipping both at one level compares what the images hold rather than each tool's encoder setting: ko
	// gzips layers at level 1 (go-containerregistry's default), docker push at its own default.
	report, err := imagecompare.Compare(ctx, []string{"ko=" + koRef, "dockerfile=" + multiRef}, imagecompare.DefaultIgnoredEnv,
		imagecompare.WithRecompression(dfRegzipLevel))
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := imagecompare.WriteMarkdown(&md, report); err != nil {
		t.Fatal(err)
	}
	t.Logf("ko vs Dockerfile.reference from one commit:\n%s", md.String())
	ko, df := report.Images[0], report.Images[1]
	if !report.Verdict.SameOutcome {
		t.Errorf("verdict: different outcome: %q", report.Verdict.Differences)
	}
	if ko.EntrypointSHA256 == "" || ko.EntrypointSHA256 != df.EntrypointSHA256 {
		t.Errorf("entrypoint binaries differ: ko %s, Dockerfile %s", ko.EntrypointSHA256, df.EntrypointSHA256)
	}
	if ko.UserResolved != "65532:65532" || df.UserResolved != ko.UserResolved {
		t.Errorf("users: ko %q (%s), Dockerfile %q (%s)", ko.User, ko.UserResolved, df.User, df.UserResolved)
	}
	if fmt.Sprint(ko.Entrypoint) != fmt.Sprint(df.Entrypoint) || fmt.Sprint(ko.Entrypoint) != "[/ko-app/hello]" {
		t.Errorf("entrypoints: ko %q, Dockerfile %q", ko.Entrypoint, df.Entrypoint)
	}
	checkLabels(t, ko.Labels, ociLabels(want))
	dfWant := ociLabels(want)
	dfWant[imagecompare.AnnotationBaseName] = h.Base
	checkLabels(t, df.Labels, dfWant)
	if !ko.Base.LayersVerified || !df.Base.LayersVerified || ko.Base.PlatformDigest != df.Base.PlatformDigest {
		t.Errorf("bases: ko %+v, Dockerfile %+v", ko.Base, df.Base)
	}
	t.Logf("sizes in bytes: as stored ko %d, Dockerfile %d; gzip -%d ko %d, Dockerfile %d; uncompressed ko %d, Dockerfile %d",
		ko.CompressedBytes, df.CompressedBytes, dfRegzipLevel, ko.GzipBytes, df.GzipBytes, ko.UncompressedBytes, df.UncompressedBytes)
	// Same base, same binary: the only content ko adds is its kodata layer (an empty /var/run/ko, 2.5 KB of tar
	// headers, about 120 bytes gzipped). More than 1% would mean something else got in.
	if limit := df.GzipBytes + df.GzipBytes/100; ko.GzipBytes > limit {
		t.Errorf("ko image (%d bytes at gzip -%d) is more than 1%% larger than the Dockerfile image (%d bytes)", ko.GzipBytes, dfRegzipLevel, df.GzipBytes)
	}

	// And the command users run, end to end: it must print the verdict and exit 0 under -strict.
	bin := filepath.Join(t.TempDir(), "imagecompare")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./pkg/internal/cmd/imagecompare")
	build.Dir = repoRoot(t)
	if _, err := run(build); err != nil {
		t.Fatal(err)
	}
	out, err := run(exec.CommandContext(ctx, bin, "-strict", "-regzip", strconv.Itoa(dfRegzipLevel), "ko="+koRef, "dockerfile="+multiRef))
	if err != nil || !strings.Contains(out, "Verdict: same outcome") {
		t.Errorf("pkg/internal/cmd/imagecompare -strict: %v\n%s", err, out)
	} else {
		// The same report as above; its verdict line is what users look for.
		_, verdict, _ := strings.Cut(out, "Verdict")
		verdict, _, _ = strings.Cut(verdict, "\n")
		t.Logf("pkg/internal/cmd/imagecompare -strict -regzip %d ko=... dockerfile=...: exit 0, Verdict%s", dfRegzipLevel, verdict)
	}

	// The seed article's "before": one stage with the toolchain and the sources.
	dur, err = dfDockerBuild(ctx, d, src, singleTag, "single-stage", args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker build (single-stage): %s", dur.Round(time.Millisecond))
	singleRef := dfPush(t, ctx, d, singleTag)
	single, err := dfInspect(ctx, "single-stage="+singleRef)
	if err != nil {
		t.Fatal(err)
	}
	factor := float64(single.CompressedBytes) / float64(df.CompressedBytes)
	ufactor := float64(single.UncompressedBytes) / float64(df.UncompressedBytes)
	t.Logf("single-stage %s vs multi-stage %s compressed: %.1fx larger (%s vs %s uncompressed: %.1fx); the seed article saw 824 MB vs 3.65 MB (226x)",
		imagecompare.MB(single.CompressedBytes), imagecompare.MB(df.CompressedBytes), factor,
		imagecompare.MB(single.UncompressedBytes), imagecompare.MB(df.UncompressedBytes), ufactor)
	if factor < 10 {
		t.Errorf("single-stage image is only %.1fx the multi-stage one; the seed's point is an order of magnitude or more", factor)
	}
	if single.EntrypointSHA256 != df.EntrypointSHA256 {
		t.Errorf("single-stage binary %s differs from the multi-stage one %s (same toolchain, flags, sources)", single.EntrypointSHA256, df.EntrypointSHA256)
	}
	if len(single.Shells) == 0 {
		t.Errorf("single-stage image has no shell? %+v", single)
	}
}

// dfRegzipLevel is gzip's own default level, the usual yardstick.
const dfRegzipLevel = 6

// dfInspect opens and inspects one image.
func dfInspect(ctx context.Context, arg string) (*imagecompare.Facts, error) {
	s, err := imagecompare.Open(ctx, arg)
	if err != nil {
		return nil, err
	}
	return imagecompare.Inspect(ctx, s)
}

func dfRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dfInstructions joins continuation lines so each element is one whole instruction, comments dropped.
func dfInstructions(df string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(df, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(body)
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// dfArg returns the default of a global ARG.
func dfArg(df, name string) string {
	m := regexp.MustCompile(`(?m)^ARG ` + name + `=(\S+)$`).FindStringSubmatch(df)
	if m == nil {
		return ""
	}
	return m[1]
}

// dfClone checks out HEAD into a fresh directory: both builds read exactly the committed sources, with a .git so
// ko's Git templates resolve, and nothing a developer left in the work tree.
func dfClone(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("git", "clone", "--quiet", "--no-hardlinks", repoRoot(t), dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	return dir
}

// dfGoImageOnce pushes the offline golang stand-in to the harness registry once per test binary.
var dfGoImageOnce = sync.OnceValues(func() (string, error) {
	h, err := harnessOnce()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return airgap.PushGoImage(ctx, h.Registry.Host()+"/golang")
})

func dfGoImage(t *testing.T) string {
	t.Helper()
	ref, err := dfGoImageOnce()
	if err != nil {
		t.Fatalf("golang stand-in: %v", err)
	}
	return ref
}

// dfGoProxyOnce is the GOPROXY for builds inside Docker: this machine's module cache on loopback first, the public
// proxy only for modules it lacks.
var dfGoProxyOnce = sync.OnceValues(func() (string, error) {
	p, err := airgap.StartModuleProxy(context.Background())
	if err != nil {
		return "", err
	}
	addCleanup(p.Close)
	return p.URL() + ",https://proxy.golang.org", nil
})

func dfGoProxy(t *testing.T) string {
	t.Helper()
	proxy, err := dfGoProxyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return proxy
}

func dfBuildArgs(t *testing.T, goImage, base string, s stamp) []string {
	return []string{
		"--build-arg", "GO_IMAGE=" + goImage,
		"--build-arg", "BASE_IMAGE=" + base,
		"--build-arg", "SOURCE=" + sourceLabel,
		"--build-arg", "GOPROXY=" + dfGoProxy(t),
		"--build-arg", "VERSION=" + s.Version,
		"--build-arg", "COMMIT=" + s.Commit,
		"--build-arg", "DATE=" + s.Date,
	}
}

// dfDockerBuild runs BuildKit through Debian's /usr/bin/docker (the legacy builder cannot do cache mounts) with
// host networking, the only networking the test daemon has.
func dfDockerBuild(ctx context.Context, d *airgap.Docker, dir, tag, target string, args ...string) (time.Duration, error) {
	a := []string{"build", "--network=host", "--progress=plain", "-f", "Dockerfile.reference", "-t", tag}
	if target != "" {
		a = append(a, "--target", target)
	}
	a = append(append(a, args...), ".")
	cmd := d.Command(ctx, a...)
	cmd.Dir = dir
	start := time.Now()
	_, err := run(cmd)
	return time.Since(start), err
}

var dfDigest = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`)

// dfPush pushes a tag to the harness registry and returns repo@digest.
func dfPush(t *testing.T, ctx context.Context, d *airgap.Docker, tag string) string {
	t.Helper()
	out, err := run(d.Command(ctx, "push", tag))
	if err != nil {
		t.Fatal(err)
	}
	m := dfDigest.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("docker push %s printed no digest:\n%s", tag, out)
	}
	return tag[:strings.LastIndex(tag, ":")] + "@" + m[1]
}

// dfKoBuild runs the real ko CLI for this machine's platform, with the labels of s as users build it, and returns
// the pushed reference.
func dfKoBuild(t *testing.T, ctx context.Context, k airgap.Ko, repo string, s stamp, env ...string) (string, time.Duration) {
	t.Helper()
	k.DockerRepo = repo
	k.Env = append(k.Env, env...)
	cmd := k.Command(ctx, koBuildArgs(s, "--platform=linux/"+runtime.GOARCH)...)
	start := time.Now()
	out, err := run(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out), time.Since(start)
}

// dfCleanupImages removes what the test built once it is done: vfs stores a full copy of every layer.
func dfCleanupImages(t *testing.T, d *airgap.Docker, tags ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := run(d.Command(ctx, append([]string{"rmi", "--force"}, tags...)...)); err != nil {
			t.Logf("cleanup: %v", err)
		}
		if d.Started() {
			// The daemon's whole data root, build cache included, goes when the harness stops it; deleting
			// gigabytes of vfs snapshots one by one first would only cost minutes.
			return
		}
		if _, err := run(d.Command(ctx, "builder", "prune", "--all", "--force")); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
}
