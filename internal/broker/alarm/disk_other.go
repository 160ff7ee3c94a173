//go:build !linux && !darwin

package alarm

// DiskFree returns nil here: free space is not watched on this platform.
func DiskFree(dir string) Sampler { return nil }
