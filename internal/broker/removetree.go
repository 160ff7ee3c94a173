package broker

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// removeTree removes dir and everything under it, as os.RemoveAll does,
// but holding at most one file descriptor at any moment: it reads a
// directory's names and closes it before going down into it. It undoes a
// queue declaration or topic creation that failed because the process ran
// out of descriptors (EMFILE), when os.RemoveAll, which keeps each
// directory open while it empties the next one down, would fail for the
// same reason and leave the half-made files behind. A missing dir is no
// error.
func removeTree(dir string) error {
	err := os.Remove(dir)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	names, rerr := readNames(dir)
	if rerr != nil {
		if errors.Is(rerr, fs.ErrNotExist) {
			return nil
		}
		return rerr
	}
	var first error
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.Remove(p); err == nil || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// Not empty (a directory) or a real failure: go down.
		if err := removeTree(p); err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return first
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// readNames lists dir, closing it before returning.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	return names, err
}
