package cli

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBucketsTileTheRange(t *testing.T) {
	var next uint64
	for i := range histBuckets {
		lo, hi := histBounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if width := float64(hi - lo + 1); lo >= histSub && width/float64(lo) > 1.0/128 {
			t.Fatalf("bucket %d [%d,%d] is %.3f%% wide", i, lo, hi, 100*width/float64(lo))
		}
		if histBucket(lo) != i || histBucket(hi) != i {
			t.Fatalf("bucket %d [%d,%d]: values map to %d and %d", i, lo, hi, histBucket(lo), histBucket(hi))
		}
		next = hi + 1
	}
	if next-1 != histTop {
		t.Fatalf("last bucket ends at %d, want %d", next-1, uint64(histTop))
	}
	if time.Duration(histTop) < 60*time.Second {
		t.Fatalf("range ends at %v, want at least 60s", time.Duration(histTop))
	}
}

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var exact []time.Duration
	for range 200_000 {
		// Log-uniform from 1µs to 60s, the range a latency takes.
		d := time.Duration(math.Exp(rng.Float64()*math.Log(60e9/1e3)) * 1e3)
		h.Record(d)
		exact = append(exact, d)
	}
	slices.Sort(exact)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := exact[max(int(math.Ceil(q*float64(len(exact))))-1, 0)]
		got := h.Quantile(q)
		if got < want || float64(got-want) > 0.01*float64(want) {
			t.Errorf("q%v = %v, exact %v (%.3f%% off)", q, got, want, 100*float64(got-want)/float64(want))
		}
	}
	if h.Max() != exact[len(exact)-1] {
		t.Errorf("max %v, want %v", h.Max(), exact[len(exact)-1])
	}
	if h.Count() != uint64(len(exact)) {
		t.Errorf("count %d, want %d", h.Count(), len(exact))
	}
}

func TestHistogramSmallValuesAreExact(t *testing.T) {
	var h histogram
	for _, v := range []time.Duration{0, 1, 7, 100, 255} {
		h.Record(v)
	}
	for q, want := range map[float64]time.Duration{0.2: 0, 0.4: 1, 0.6: 7, 0.8: 100, 1: 255} {
		if got := h.Quantile(q); got != want {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	if got := h.Mean(); got != (0+1+7+100+255)/5 {
		t.Errorf("mean %v", got)
	}
}

func TestHistogramClampsOutOfRange(t *testing.T) {
	var h histogram
	h.Record(-time.Second)
	h.Record(10 * time.Minute)
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("negative recorded as %v, want 0", got)
	}
	if got := h.Quantile(1); got != 10*time.Minute {
		t.Errorf("q1 = %v, want the exact max 10m", got)
	}
	var empty histogram
	if empty.Quantile(0.99) != 0 || empty.Max() != 0 || empty.Mean() != 0 {
		t.Errorf("empty histogram reports non-zero")
	}
}

func TestHistogramMergeEqualsRecordingAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all histogram
	for i := range 10_000 {
		d := time.Duration(rng.Int64N(int64(time.Second)))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	if a != all {
		t.Fatalf("merged histogram differs from one recording everything")
	}
	a.Reset()
	if a.Count() != 0 || a.Quantile(0.5) != 0 {
		t.Fatalf("reset left values")
	}
}
