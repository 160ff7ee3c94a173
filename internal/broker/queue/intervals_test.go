package queue

import (
	"math/rand/v2"
	"testing"
)

// TestIntervalsAgainstMap checks the interval set against a plain map on
// random operations.
func TestIntervalsAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var s intervals
		ref := map[int64]bool{}
		for op := 0; op < 50; op++ {
			from := rng.Int64N(100)
			to := from + rng.Int64N(8)
			want := int64(0)
			for o := from; o < to; o++ {
				if !ref[o] {
					want++
					ref[o] = true
				}
			}
			if got := s.add(from, to); got != want {
				t.Fatalf("add(%d,%d) = %d, want %d", from, to, got, want)
			}
			if rng.IntN(10) == 0 {
				cut := rng.Int64N(100)
				s.trimBelow(cut)
				for o := range ref {
					if o < cut {
						delete(ref, o)
					}
				}
			}
			for o := int64(0); o < 110; o++ {
				if s.contains(o) != ref[o] {
					t.Fatalf("contains(%d) = %v", o, !ref[o])
				}
			}
			a, b := rng.Int64N(110), rng.Int64N(110)
			if a > b {
				a, b = b, a
			}
			n := int64(0)
			for o := a; o < b; o++ {
				if ref[o] {
					n++
				}
			}
			if got := s.count(a, b); got != n {
				t.Fatalf("count(%d,%d) = %d, want %d", a, b, got, n)
			}
			x := rng.Int64N(110)
			y := x
			for ref[y] {
				y++
			}
			if got := s.nextAbsent(x); got != y {
				t.Fatalf("nextAbsent(%d) = %d, want %d", x, got, y)
			}
			for i := 1; i < len(s.r); i++ {
				if s.r[i-1].to >= s.r[i].from {
					t.Fatalf("spans not disjoint: %v", s.r)
				}
			}
		}
	}
}
