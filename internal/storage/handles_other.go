//go:build !unix

package storage

import "os"

// openFileLimit: no such limit known here (DefaultFileHandles picks 4096).
func openFileLimit() (uint64, bool) { return 0, false }

// fileID: no inode here; a reopen is not checked.
func fileID(os.FileInfo) (dev, ino uint64) { return 0, 0 }
