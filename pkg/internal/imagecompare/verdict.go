package imagecompare

import (
	"fmt"
	"slices"
	"strings"
)

// Verdict says whether every image delivers the same runtime contract as the first one.
type Verdict struct {
	SameOutcome bool `json:"sameOutcome"`
	// Differences in the runtime contract; any one of them makes the outcome different.
	Differences []string `json:"differences"`
	// Notes are differences that do not change what runs (size, layers, file count).
	Notes []string `json:"notes"`
	// Outcomes is the verdict for each image after the first, against the first.
	Outcomes []Outcome `json:"outcomes"`
}

// Outcome is one image's verdict against the reference (the first image).
type Outcome struct {
	Name        string   `json:"name"`
	Reference   string   `json:"reference"`
	SameOutcome bool     `json:"sameOutcome"`
	Differences []string `json:"differences"`
}

// DefaultIgnoredEnv are variables that differ by build tool but that the program does not read: ko sets
// KO_DATA_PATH for its kodata directory, which hello does not use.
var DefaultIgnoredEnv = []string{"KO_DATA_PATH"}

// Judge compares every image against the first: the entrypoint binary's bytes, the user, the effective argv, the
// environment (minus ignoreEnv), the working directory, exposed ports, the health check and the base image.
func Judge(facts []*Facts, ignoreEnv []string) Verdict {
	v := Verdict{SameOutcome: true, Differences: []string{}, Notes: []string{}}
	if len(facts) < 2 {
		v.SameOutcome = false
		v.Differences = append(v.Differences, "need at least two images to compare")
		return v
	}
	ref := facts[0]
	for _, f := range facts[1:] {
		first := len(v.Differences)
		diff := func(what, a, b string) {
			if a != b {
				v.Differences = append(v.Differences, fmt.Sprintf("%s: %s %s, %s %s", what, ref.Name, show(a), f.Name, show(b)))
			}
		}
		if ref.EntrypointSHA256 == "" || f.EntrypointSHA256 == "" {
			v.Differences = append(v.Differences, fmt.Sprintf("entrypoint binary: not found (%s: %s, %s: %s)",
				ref.Name, ref.EntrypointPath, f.Name, f.EntrypointPath))
		} else {
			diff("entrypoint binary sha256", ref.EntrypointSHA256, f.EntrypointSHA256)
			if ref.EntrypointSHA256 != f.EntrypointSHA256 {
				if d := buildDiff(ref.GoBuild, f.GoBuild); d != "" {
					v.Differences = append(v.Differences, fmt.Sprintf("go build info: %s %s", ref.Name+" vs "+f.Name, d))
				}
			}
		}
		diff("user (uid:gid)", orRaw(ref.UserResolved, ref.User), orRaw(f.UserResolved, f.User))
		diff("entrypoint+cmd", argv(ref), argv(f))
		diff("env", strings.Join(contractEnv(ref.Env, ignoreEnv), " "), strings.Join(contractEnv(f.Env, ignoreEnv), " "))
		diff("workdir", ref.WorkingDir, f.WorkingDir)
		diff("exposed ports", strings.Join(ref.ExposedPorts, ","), strings.Join(f.ExposedPorts, ","))
		// Docker runs an image's HEALTHCHECK and marks the container unhealthy on failure: part of what runs.
		diff("healthcheck", healthcheck(ref), healthcheck(f))
		switch rb, fb := ref.Base.Identity(), f.Base.Identity(); {
		case rb == "" || fb == "":
			v.Differences = append(v.Differences, fmt.Sprintf("base: %s %s, %s %s (undeclared base cannot be shown equal)",
				ref.Name, show(rb), f.Name, show(fb)))
		default:
			diff("base", rb, fb)
		}
		note := func(what string, a, b any) {
			if fmt.Sprint(a) != fmt.Sprint(b) {
				v.Notes = append(v.Notes, fmt.Sprintf("%s: %s %v, %s %v", what, ref.Name, a, f.Name, b))
			}
		}
		note("compressed bytes", ref.CompressedBytes, f.CompressedBytes)
		note("layers", ref.Layers, f.Layers)
		note("files", ref.Files, f.Files)
		note("shells", ref.Shells, f.Shells)
		note("setuid/setgid files", ref.Setuid, f.Setuid)
		own := slices.Clone(v.Differences[first:])
		v.Outcomes = append(v.Outcomes, Outcome{Name: f.Name, Reference: ref.Name, SameOutcome: len(own) == 0, Differences: own})
	}
	v.SameOutcome = len(v.Differences) == 0
	return v
}

func argv(f *Facts) string {
	return fmt.Sprintf("%q", append(append([]string(nil), f.Entrypoint...), f.Cmd...))
}

func healthcheck(f *Facts) string {
	if len(f.Healthcheck) == 0 {
		return ""
	}
	return fmt.Sprintf("%q", f.Healthcheck)
}

func show(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func contractEnv(env, ignore []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(ignore, k) {
			out = append(out, kv)
		}
	}
	slices.Sort(out)
	return out
}

func orRaw(resolved, raw string) string {
	if resolved == "" {
		return raw
	}
	return resolved
}

// buildDiff lists the Go build settings that differ, the likely reason two binaries from one commit differ.
func buildDiff(a, b []string) string {
	if len(a) == 0 && len(b) == 0 {
		return ""
	}
	index := func(kvs []string) map[string]string {
		m := map[string]string{}
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return m
	}
	am, bm := index(a), index(b)
	var keys []string
	for k := range am {
		keys = append(keys, k)
	}
	for k := range bm {
		if _, ok := am[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		if am[k] != bm[k] {
			out = append(out, fmt.Sprintf("%s: %s | %s", k, show(am[k]), show(bm[k])))
		}
	}
	if len(out) == 0 {
		return "(same toolchain and settings; the difference is elsewhere, e.g. sources)"
	}
	return strings.Join(out, "; ")
}
