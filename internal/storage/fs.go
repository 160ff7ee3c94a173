package storage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// FS is the narrow file layer storage uses; OSFS, MemFS and FaultFS implement it.
type FS interface {
	MkdirAll(dir string) error
	// ReadDir lists file names (not paths) in dir, sorted.
	ReadDir(dir string) ([]string, error)
	// OpenFile opens name; create makes it if missing.
	OpenFile(name string, create bool) (File, error)
	Remove(name string) error
	RemoveAll(dir string) error
	Rename(oldname, newname string) error
	// SyncDir makes directory entries (creates, renames, removes) durable.
	SyncDir(dir string) error
}

// File is an open file.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	Size() (int64, error)
	Sync() error
	Close() error
}

// OSFS is the real file system.
func OSFS() FS { return osFS{} }

type osFS struct{}

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, missingOr(dir, err)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names) // os.ReadDir sorts already; the contract says so explicitly
	return names, nil
}

// OpenFile opens name within the process's file handle budget
// (handles.go): the descriptor may be closed while the file is idle and
// reopened on its next use.
func (osFS) OpenFile(name string, create bool) (File, error) {
	return openBudgetFile(name, create)
}

// Remove, RemoveAll and Rename first pin the open handles of the paths
// they remove or replace, so that those keep their file (handles.go).
func (osFS) Remove(name string) error {
	handles.pinPath(name, false)
	return os.Remove(name)
}

func (osFS) RemoveAll(dir string) error {
	handles.pinPath(dir, true)
	return os.RemoveAll(dir)
}

func (osFS) Rename(oldname, newname string) error {
	return handles.rename(oldname, newname, func() error { return os.Rename(oldname, newname) })
}

// SyncDir fsyncs the directory itself so that entries created, renamed or
// removed in it survive a power loss.
func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// missingOr returns the not-exist error of name when an open of it failed
// for want of descriptors (EMFILE, ENFILE) and name does not exist, and
// err otherwise. open(2) takes a descriptor before it looks the path up,
// so with none free a missing file reads as "too many open files"; a new
// partition's log (Options.CreateOnAppend) asks only whether its files
// exist, which needs no descriptor, and so its creation does not fail
// when the process has none to spare.
func missingOr(name string, err error) error {
	if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
		return err
	}
	if _, serr := os.Lstat(name); errors.Is(serr, fs.ErrNotExist) {
		return serr
	}
	return err
}
