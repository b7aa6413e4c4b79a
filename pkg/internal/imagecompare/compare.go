package imagecompare

import (
	"context"
	"errors"
)

// Compare opens and inspects every "NAME=SOURCE" argument (at least two) and judges them against the first.
func Compare(ctx context.Context, args []string, ignoreEnv []string, opts ...Option) (Report, error) {
	if len(args) < 2 {
		return Report{}, errors.New("need at least two images to compare")
	}
	var r Report
	for _, a := range args {
		s, err := Open(ctx, a, opts...)
		if err != nil {
			return Report{}, err
		}
		f, err := Inspect(ctx, s)
		if err != nil {
			return Report{}, err
		}
		r.Images = append(r.Images, f)
	}
	r.Verdict = Judge(r.Images, ignoreEnv)
	return r, nil
}
