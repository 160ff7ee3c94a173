package cli

import (
	"math"
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram in the manner of
// HdrHistogram: values below 256ns are counted exactly, and above that
// every power of two is split into 128 equal buckets, so a bucket is never
// wider than 1/128 (0.8%) of the values it holds. It covers 0 to 2^36ns
// (68.7s; larger values count in the top bucket, and the exact maximum is
// kept) in a fixed 30 KiB, records without allocating, and merges by
// addition. It is not safe for concurrent use.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      uint64 // nanoseconds, for the mean
	min, max int64
}

const (
	histSubBits = 8
	histSub     = 1 << histSubBits // values below this are exact
	histHalf    = histSub / 2      // buckets per power of two above histSub
	histTopBits = 36               // values are clamped below 2^histTopBits ns
	histBuckets = histSub + (histTopBits-histSubBits)*histHalf
	histTop     = 1<<histTopBits - 1
)

// histBucket returns the index of the bucket holding v.
func histBucket(v uint64) int {
	if v < histSub {
		return int(v)
	}
	k := bits.Len64(v) - 1       // v is in [2^k, 2^(k+1))
	shift := k - histSubBits + 1 // buckets there are 2^shift wide
	return histSub + (k-histSubBits)*histHalf + int(v>>shift) - histHalf
}

// histBounds returns the smallest and largest value of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	j := i - histSub
	shift := j/histHalf + 1
	lo = uint64(histHalf+j%histHalf) << shift
	return lo, lo + 1<<shift - 1
}

// Record adds one duration; negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += uint64(v)
	h.counts[histBucket(min(uint64(v), histTop))]++
}

// Merge adds every value recorded in o.
func (h *histogram) Merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// Reset forgets every value.
func (h *histogram) Reset() { *h = histogram{} }

// Count is the number of values recorded.
func (h *histogram) Count() uint64 { return h.n }

// Max is the largest value recorded, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the average of the values recorded.
func (h *histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// values lie: the top of the bucket holding that rank, so never lower
// than the exact answer and at most 0.8% higher, and never above Max.
// Ranks in the top bucket, where clamped values are, answer Max.
func (h *histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == histBuckets-1 {
				break // clamped values: only the maximum is known
			}
			_, hi := histBounds(i)
			return time.Duration(min(max(int64(hi), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
