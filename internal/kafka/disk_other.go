//go:build !linux && !darwin

package kafka

// diskSpace reports the total and available bytes of the file system
// holding dir; this platform does not say (-1, -1).
func diskSpace(dir string) (total, usable int64) { return -1, -1 }
