//go:build !linux

package alarm

import "runtime/metrics"

// ProcessMemory is, without /proc, the memory the Go runtime has mapped
// less what it has released to the OS: close to the resident size for a
// pure Go process.
func ProcessMemory() (int64, error) {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64()), nil
}

// TotalMemory is unknown here: 0. A fractional watermark then cannot be
// resolved and memory is not watched; use an absolute watermark.
func TotalMemory() int64 { return 0 }
