//go:build linux || darwin

package metrics

import "syscall"

// diskSpace reports the size of the file system holding dir and the bytes
// available to an unprivileged user on it.
func diskSpace(dir string) (total, free int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize), true
}
