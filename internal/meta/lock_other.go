//go:build !unix

package meta

import (
	"os"
	"path/filepath"
)

// lockDir only creates the lock file where flock is unavailable.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
}
