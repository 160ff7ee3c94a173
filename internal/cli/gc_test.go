package cli

import "testing"

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
