package main

import (
	"slices"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{5 * ms}, 5 * ms},
		{[]time.Duration{9 * ms, 1 * ms, 5 * ms}, 5 * ms},
		// An even count gives the upper of the two middle values, not
		// their mean: every figure printed is one that was measured.
		{[]time.Duration{4 * ms, 1 * ms}, 4 * ms},
		{[]time.Duration{3 * ms, 1 * ms, 4 * ms, 2 * ms}, 3 * ms},
	} {
		in := slices.Clone(tc.in)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median reordered its argument: %v", in)
		}
	}
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{1.29}, 1.29},
		{[]float64{0.85, 0.80, 0.83}, 0.83},
		{[]float64{1.02, 0.96}, 1.02},
	} {
		in := slices.Clone(tc.in)
		if got := medianF(in); got != tc.want {
			t.Errorf("medianF(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("medianF reordered its argument: %v", in)
		}
	}
}

func TestRound(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		383_456 * time.Nanosecond:    383 * time.Microsecond,
		time.Millisecond:             time.Millisecond,
		3_234_567 * time.Nanosecond:  3_230 * time.Microsecond,
		28_244_999 * time.Nanosecond: 28_240 * time.Microsecond,
	} {
		if got := round(in); got != want {
			t.Errorf("round(%v) = %v, want %v", in, got, want)
		}
	}
}
