// Package fsutil holds the steps that make a change to a directory durable
// on the operating system's file system, shared by the stores that keep
// small files of their own (metadata snapshots, Raft logs and snapshots,
// checkpoints, offsets and acknowledgement logs).
package fsutil

import (
	"os"
	"path/filepath"
)

// TmpExt is the extension of the temporary file WriteFileAtomic writes
// first; a store removes leftovers with it when it opens.
const TmpExt = ".tmp"

// SyncDir fsyncs a directory, making the creations, renames and removals
// in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileAtomic replaces dir/name with b through a temporary file:
// write, fsync, rename, fsync the directory. A crash leaves the old file
// or the new one, and at most a temporary file beside it.
func WriteFileAtomic(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+TmpExt)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}
