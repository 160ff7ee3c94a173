//go:build linux || darwin

package alarm

import "syscall"

// DiskFree returns a sampler of the bytes an unprivileged writer may still
// use on the file system holding dir (statfs f_bavail × f_bsize).
func DiskFree(dir string) Sampler {
	return func() (int64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, err
		}
		return int64(st.Bavail) * int64(st.Bsize), nil
	}
}
