package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kobuilt/hello/pkg/internal/airgap"
	"github.com/kobuilt/hello/pkg/internal/proc"
	"github.com/kobuilt/hello/pkg/internal/testenv"
)

// TestCosignSignsAndVerifiesOffline does what the workflow's publish job does, with a key pair instead of
// keyless signing and no transparency log, against the loopback registry: sign the ko image, attest its SPDX
// SBOM and its SLSA provenance (pkg/internal/cmd/provenance), and verify all three with the public key. A
// digest nobody signed and a tampered attestation must fail verification.
func TestCosignSignsAndVerifiesOffline(t *testing.T) {
	h := harness(t)
	b := helloImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin, err := airgap.Cosign(ctx)
	testenv.Need(t, err == nil, fmt.Sprintf("cosign (%v)", err), airgap.CosignInstallHint)

	dir := t.TempDir()
	cosign := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		// An empty password for the test key; a private TUF cache so nothing outside the test is read or written.
		cmd.Env = proc.Environ(nil, "COSIGN_PASSWORD=", "TUF_ROOT="+filepath.Join(dir, "tuf"), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := cosign(args...)
		if err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, proc.Tail(out, 4000))
		}
		return out
	}
	must("version")
	must("generate-key-pair", "--output-key-prefix", "cosign")
	// A signing config with no services: no Fulcio, no Rekor, no timestamp authority, so nothing leaves the machine.
	must("signing-config", "create", "--out", "signing-config.json")
	// Verification trusts the key and nothing else.
	noTlog := []string{"--key", "cosign.pub", "--insecure-ignore-tlog=true", "--allow-http-registry"}
	signing := []string{"--key", "cosign.key", "--signing-config", "signing-config.json", "--allow-http-registry", "--yes"}

	// The image users pull (the index) and this machine's platform image, whose SBOM lists the modules.
	idx := remoteIndex(t, b.Ref)
	_, desc := platformImage(t, idx, "linux/"+runtime.GOARCH)
	image := b.Ref
	platform := strings.Split(b.Ref, "@")[0] + "@" + desc.Digest.String()
	sbom := filepath.Join(b.SBOMDir, "hello-linux-"+runtime.GOARCH+".spdx.json")
	if runtime.GOARCH == "arm64" {
		sbom = filepath.Join(b.SBOMDir, "hello-linux-arm64-v8.spdx.json")
	}
	provenance := filepath.Join(dir, "provenance.json")
	prov := exec.CommandContext(ctx, "go", "run", "./pkg/internal/cmd/provenance",
		"-builder-id", sourceLabel+"/.github/workflows/build.yml@refs/heads/main",
		"-source", sourceLabel, "-ref", "refs/heads/main", "-commit", b.Commit, "-base", h.Base)
	prov.Dir = repoRoot(t)
	out, err := run(prov)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(provenance, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	must(append(append([]string{"sign"}, signing...), "--recursive", image)...)
	must(append(append([]string{"attest"}, signing...), "--type", "spdxjson", "--predicate", sbom, platform)...)
	must(append(append([]string{"attest"}, signing...), "--type", "slsaprovenance1", "--predicate", provenance, image)...)
	t.Logf("signed %s (and its platform images), attested its SBOM and provenance in %v", image, time.Since(start).Round(time.Millisecond))

	for _, v := range []struct {
		name string
		args []string
	}{
		{"signature of the index", append(append([]string{"verify"}, noTlog...), image)},
		{"signature of the platform image", append(append([]string{"verify"}, noTlog...), platform)},
		{"SPDX SBOM attestation", append(append([]string{"verify-attestation"}, noTlog...), "--type", "spdxjson", platform)},
		{"SLSA provenance attestation", append(append([]string{"verify-attestation"}, noTlog...), "--type", "slsaprovenance1", image)},
	} {
		out := must(v.args...)
		t.Logf("verified %s: %s", v.name, checkLine(out))
	}

	// A digest nobody signed: the offline base in the same registry.
	if out, err := cosign(append(append([]string{"verify"}, noTlog...), h.Base)...); err == nil {
		t.Errorf("cosign verify accepted %s, which nobody signed:\n%s", h.Base, out)
	} else {
		t.Logf("unsigned digest rejected as it should be: %s", lastLine(out))
	}

	// A tampered attestation: the provenance bundle with its statement changed and the signature kept, next to
	// the same image in another repository. The same copy without the change must still verify, or the failure
	// would prove nothing.
	for _, tc := range []struct {
		repo   string
		tamper bool
	}{{"attest-copy", false}, {"attest-tampered", true}} {
		copied := copyWithAttestation(t, ctx, image, h.Registry.Host()+"/"+tc.repo, "https://slsa.dev/provenance/v1", tc.tamper)
		out, err := cosign(append(append([]string{"verify-attestation"}, noTlog...), "--type", "slsaprovenance1", copied)...)
		switch {
		case tc.tamper && err == nil:
			t.Errorf("cosign verify-attestation accepted a tampered attestation on %s:\n%s", copied, out)
		case tc.tamper:
			t.Logf("tampered attestation rejected as it should be: %s", lastLine(out))
		case err != nil:
			t.Fatalf("the untampered copy on %s does not verify, so the tampered case proves nothing: %v\n%s", copied, err, proc.Tail(out, 4000))
		default:
			t.Logf("untampered copy of the attestation verifies: %s", checkLine(out))
		}
	}
}

// checkLine is the line of cosign's verify output that says what the signature was checked against.
func checkLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "verified against") {
			return strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(l), "- "))
		}
	}
	return lastLine(s)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

// rawManifest lets remote.Put push a manifest byte for byte.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// copyWithAttestation copies the index image to repo and, of the Sigstore bundles that refer to it, the one
// whose in-toto statement has predicateType; with tamper, the statement's predicate is changed before the copy
// and the DSSE signature is left as it was. It returns repo@digest.
func copyWithAttestation(t *testing.T, ctx context.Context, image, repo, predicateType string, tamper bool) string {
	t.Helper()
	src, err := name.NewDigest(image)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.NewDigest(repo + "@" + src.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(src, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(dst, idx, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	refs, err := remote.Referrers(src, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	im, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		raw, err := remote.Get(src.Context().Digest(d.Digest.String()), remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(raw.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Layers) != 1 {
			continue
		}
		bundle := fetchBlob(t, ctx, src.Context(), m.Layers[0].Digest)
		var b struct {
			DSSE *struct {
				Payload     string `json:"payload"`
				PayloadType string `json:"payloadType"`
			} `json:"dsseEnvelope"`
		}
		if err := json.Unmarshal(bundle, &b); err != nil || b.DSSE == nil {
			continue // the image signature, not an attestation
		}
		payload, err := base64.StdEncoding.DecodeString(b.DSSE.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		if err := json.Unmarshal(payload, &st); err != nil {
			t.Fatal(err)
		}
		if st["predicateType"] != predicateType {
			continue
		}
		if tamper {
			// Claim another builder: exactly what provenance exists to rule out.
			st["predicate"].(map[string]any)["runDetails"].(map[string]any)["builder"] = map[string]any{"id": "https://attacker.example/builder"}
			changed, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			old := []byte(`"` + b.DSSE.Payload + `"`)
			bundle = bytes.Replace(bundle, old, []byte(`"`+base64.StdEncoding.EncodeToString(changed)+`"`), 1)
			if bytes.Contains(bundle, old) || !bytes.Contains(bundle, []byte(base64.StdEncoding.EncodeToString(changed))) {
				t.Fatal("could not rewrite the DSSE payload in the bundle")
			}
		}
		layer := static.NewLayer(bundle, m.Layers[0].MediaType)
		if err := remote.WriteLayer(dst.Context(), layer, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		config := static.NewLayer(fetchBlob(t, ctx, src.Context(), m.Config.Digest), m.Config.MediaType)
		if err := remote.WriteLayer(dst.Context(), config, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		ld, err := layer.Digest()
		if err != nil {
			t.Fatal(err)
		}
		m.Layers[0].Digest, m.Layers[0].Size = ld, int64(len(bundle))
		rawM, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		md, _, err := v1.SHA256(bytes.NewReader(rawM))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Put(dst.Context().Digest(md.String()), rawManifest{rawM, m.MediaType}, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		return dst.String()
	}
	t.Fatalf("no Sigstore bundle with predicate type %s refers to %s (%d referrers)", predicateType, image, len(im.Manifests))
	return ""
}

func fetchBlob(t *testing.T, ctx context.Context, repo name.Repository, d v1.Hash) []byte {
	t.Helper()
	l, err := remote.Layer(repo.Digest(d.String()), remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
