package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

const syncfsSupported = true

// syncfs writes back the file system holding d and flushes its device.
func syncfs(d *os.File) error {
	for {
		if err := unix.Syncfs(int(d.Fd())); err != unix.EINTR {
			return err
		}
	}
}
