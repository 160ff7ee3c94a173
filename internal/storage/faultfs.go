package storage

import (
	"errors"
	"io/fs"
	"sync"
	"sync/atomic"
	"syscall"
)

// ErrInjectedFault is the error FaultFS returns for a torn write.
var ErrInjectedFault = errors.New("storage: injected fault")

// FaultFS wraps another FS and injects the faults a disk can produce, for
// tests: torn writes (optionally followed by a "crash" after which every
// operation fails), failing fsyncs and a full disk. It also counts writes
// and fsyncs. Faults apply to the files accepted by the filter set with
// SetFilter (all files by default). Safe for concurrent use.
type FaultFS struct {
	inner FS

	mu        sync.Mutex
	filter    func(name string) bool
	syncErr   error
	tornAt    int // bytes the next write keeps; <0: no torn write armed
	tornCrash bool
	crashed   bool
	budget    int64         // bytes writes may still add; <0: unlimited
	held      chan struct{} // non-nil: File.Sync waits until it closes

	syncs   atomic.Int64
	writes  atomic.Int64
	holding atomic.Int64 // fsyncs waiting in HoldSyncs now
}

// NewFaultFS wraps inner with no faults armed.
func NewFaultFS(inner FS) *FaultFS {
	return &FaultFS{inner: inner, tornAt: -1, budget: -1}
}

// SetFilter limits faults (not counting) to files whose name keep accepts;
// nil accepts every file.
func (f *FaultFS) SetFilter(keep func(name string) bool) {
	f.mu.Lock()
	f.filter = keep
	f.mu.Unlock()
}

// FailSync makes every later File.Sync and SyncDir fail with err; nil
// stops the fault.
func (f *FaultFS) FailSync(err error) {
	f.mu.Lock()
	f.syncErr = err
	f.mu.Unlock()
}

// HoldSyncs makes every later File.Sync of a file the filter accepts wait,
// before it reaches the disk, until ReleaseSyncs: a test can look at a log between its write and its
// fsync.
func (f *FaultFS) HoldSyncs() {
	f.mu.Lock()
	if f.held == nil {
		f.held = make(chan struct{})
	}
	f.mu.Unlock()
}

// ReleaseSyncs lets held and later File.Sync calls through.
func (f *FaultFS) ReleaseSyncs() {
	f.mu.Lock()
	if f.held != nil {
		close(f.held)
		f.held = nil
	}
	f.mu.Unlock()
}

// TearNextWrite makes the next write keep only its first n bytes and fail
// with ErrInjectedFault. With crash, the file system then acts as if the
// machine died: every later operation fails with ErrCrashed.
func (f *FaultFS) TearNextWrite(n int, crash bool) {
	f.mu.Lock()
	f.tornAt, f.tornCrash = max(n, 0), crash
	f.mu.Unlock()
}

// SetDiskBudget lets writes add at most n more bytes; the write that
// crosses the budget keeps what fits and fails with ENOSPC. n < 0 removes
// the limit.
func (f *FaultFS) SetDiskBudget(n int64) {
	f.mu.Lock()
	f.budget = n
	f.mu.Unlock()
}

// Holding is the number of File.Sync calls waiting in HoldSyncs now.
func (f *FaultFS) Holding() int64 { return f.holding.Load() }

// Syncs is the number of successful File.Sync calls so far.
func (f *FaultFS) Syncs() int64 { return f.syncs.Load() }

// Writes is the number of WriteAt calls so far.
func (f *FaultFS) Writes() int64 { return f.writes.Load() }

// Crashed reports whether a torn write with crash has happened.
func (f *FaultFS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

func (f *FaultFS) applies(name string) bool { return f.filter == nil || f.filter(name) }

func (f *FaultFS) check() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	return nil
}

func (f *FaultFS) MkdirAll(dir string) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.inner.MkdirAll(dir)
}

func (f *FaultFS) ReadDir(dir string) ([]string, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(dir)
}

func (f *FaultFS) OpenFile(name string, create bool) (File, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	inner, err := f.inner.OpenFile(name, create)
	if err != nil {
		return nil, err
	}
	return &faultFile{fs: f, f: inner, name: name}, nil
}

func (f *FaultFS) Remove(name string) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.inner.Remove(name)
}

func (f *FaultFS) RemoveAll(dir string) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.inner.RemoveAll(dir)
}

func (f *FaultFS) Rename(oldname, newname string) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.inner.Rename(oldname, newname)
}

func (f *FaultFS) SyncDir(dir string) error {
	f.mu.Lock()
	err := f.syncErr
	if f.crashed {
		err = ErrCrashed
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.inner.SyncDir(dir)
}

type faultFile struct {
	fs   *FaultFS
	f    File
	name string
}

func (ff *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := ff.fs.check(); err != nil {
		return 0, err
	}
	return ff.f.ReadAt(p, off)
}

func (ff *faultFile) WriteAt(p []byte, off int64) (int, error) {
	keep, fault := ff.fs.WriteGate(ff.name, len(p))
	if keep < 0 {
		return 0, fault
	}
	n, err := ff.f.WriteAt(p[:keep], off)
	if err != nil {
		return n, err
	}
	return n, fault
}

// WriteGate applies the write faults armed for name to a write of n
// bytes: it returns how many bytes the write may keep and the error it
// must then return (nil: all of them, no fault), or keep < 0 when nothing
// may be written at all. FaultFS's own files use it; so can a file that
// does not go through an FS (the metadata log in fault-injection builds),
// to share the same faults.
func (f *FaultFS) WriteGate(name string, n int) (keep int, fault error) {
	f.writes.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return -1, ErrCrashed
	}
	keep = n
	if f.applies(name) {
		if f.tornAt >= 0 {
			keep, fault = min(keep, f.tornAt), ErrInjectedFault
			f.tornAt = -1
			if f.tornCrash {
				f.crashed = true
			}
		}
		if f.budget >= 0 {
			if int64(keep) > f.budget {
				keep, fault = int(f.budget), &fs.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
			}
			f.budget -= int64(keep)
		}
	}
	return keep, fault
}

func (ff *faultFile) Truncate(size int64) error {
	if err := ff.fs.check(); err != nil {
		return err
	}
	return ff.f.Truncate(size)
}

func (ff *faultFile) Size() (int64, error) {
	if err := ff.fs.check(); err != nil {
		return 0, err
	}
	return ff.f.Size()
}

func (ff *faultFile) Sync() error {
	if err := ff.fs.SyncGate(ff.name); err != nil {
		return err
	}
	if err := ff.f.Sync(); err != nil {
		return err
	}
	ff.fs.syncs.Add(1)
	return nil
}

// SyncGate applies the fsync faults armed for name: it waits while fsyncs
// are held (HoldSyncs) and returns the error an fsync of name must fail
// with, nil if none. Like WriteGate, it lets a file outside the FS share
// the faults.
func (f *FaultFS) SyncGate(name string) error {
	f.mu.Lock()
	if held := f.held; held != nil && f.applies(name) {
		f.mu.Unlock()
		f.holding.Add(1)
		<-held
		f.holding.Add(-1)
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	if f.applies(name) {
		return f.syncErr
	}
	return nil
}

func (ff *faultFile) Close() error { return ff.f.Close() }
