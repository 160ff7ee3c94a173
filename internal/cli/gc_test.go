package cli

import (
	"testing"
	"time"
)

// The collector's GOGC gives a small live heap gcHeadroom to grow, within
// Go's default and gcMaxPercent.
func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, gcMaxPercent},
		{4 << 20, gcMaxPercent}, // 48 MiB would be 1200%: capped
		{16 << 20, 300},         // 48 MiB of headroom
		{24 << 20, 200},
		{48 << 20, gcMinPercent}, // as Go's default from here on
		{1 << 30, gcMinPercent},
	} {
		if got := gcPercent(tc.live); got != tc.want {
			t.Errorf("gcPercent(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
		}
	}
}

// TestIdleCollect: a collection is asked for only after idleGCAfter of
// samples without one, with a heap worth collecting, and the wait starts
// again after it and after every collection the runtime ran itself.
func TestIdleCollect(t *testing.T) {
	var cycles uint64
	var quiet time.Duration
	ticks := int(idleGCAfter / gcTuneInterval)
	step := func(n, objects uint64) bool { return idleCollect(n, objects, &cycles, &quiet) }
	if step(5, idleGCHeap) {
		t.Fatal("collected at the first sample")
	}
	for i := 1; i < ticks; i++ {
		if step(5, idleGCHeap) {
			t.Fatalf("collected after %d quiet samples, want %d", i, ticks)
		}
	}
	if !step(5, idleGCHeap) {
		t.Fatalf("no collection after %v without one", idleGCAfter)
	}
	if step(5, idleGCHeap) {
		t.Fatal("collected again at once")
	}
	// A collection by the runtime restarts the wait.
	for i := 0; i < ticks-2; i++ {
		step(5, idleGCHeap)
	}
	if step(6, idleGCHeap) || step(6, idleGCHeap) {
		t.Fatal("collected right after the runtime did")
	}
	// A small heap is never collected for.
	for i := 0; i < 3*ticks; i++ {
		if step(6, idleGCHeap-1) {
			t.Fatal("collected a small heap")
		}
	}
}
