package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Open files are a process-wide budget. Every file OSFS opens is a
// budgetFile: a handle that holds an operating-system descriptor only
// while the budget allows, and reopens its file by path on the next use
// after the budget took the descriptor back. So the descriptors a broker
// holds for its logs and queues are bounded by the budget, not by the
// number of queues, partitions or segments (each durable queue would
// otherwise hold four: its active segment's data and two indexes, and its
// ack record).
//
// Durability is kept exact: a descriptor with writes not yet fsynced is
// fsynced before it is closed, so a Sync after the close has nothing left
// to make durable; if that fsync fails, the failure stays on the handle
// and its next Sync (and every write) returns it, as a failed fsync must.
//
// A path can change under a closed handle: a rename over it (compaction
// swaps a segment, an ack log is rewritten) or a removal (retention, a
// queue deleted while a reader holds the old segment). OSFS's Rename,
// Remove and RemoveAll therefore first reopen and pin every closed handle
// of the paths they replace or remove, so that the handle keeps the file
// it had, as a descriptor would; handles of a renamed path follow it to
// its new name. And a reopened descriptor must be the same file (device
// and inode) as the one it replaces, or the use fails.

// DefaultFileHandles is the budget when SetFileHandleBudget was not called
// with a positive value: half the process's soft RLIMIT_NOFILE (the rest
// is for connections), at least MinFileHandles.
func DefaultFileHandles() int {
	limit, ok := openFileLimit()
	if !ok || limit == 0 || limit > 1<<30 {
		return 4096
	}
	return max(MinFileHandles, int(limit/2))
}

// MinFileHandles is the smallest budget: below it, logs that each keep a
// few files in use at once would thrash.
const MinFileHandles = 16

// SetFileHandleBudget sets how many descriptors the files OSFS opens may
// hold at once (n <= 0: DefaultFileHandles). Files in use at the moment
// (a read, write or fsync under way, a region sent with sendfile, a file
// pinned by a rename) are never closed, so the budget is exceeded only by
// what is in use.
func SetFileHandleBudget(n int) {
	if n <= 0 {
		n = DefaultFileHandles()
	}
	handles.max.Store(int64(max(n, MinFileHandles)))
	handles.mu.Lock()
	handles.evictLocked(nil)
	handles.mu.Unlock()
}

// FileHandleStats reports the descriptors the budget's files hold now,
// the budget, and how many times a descriptor was closed to stay within
// it and reopened on a later use.
func FileHandleStats() (open, budget int, evictions, reopens int64) {
	handles.mu.Lock()
	open = handles.open
	handles.mu.Unlock()
	return open, int(handles.max.Load()), handles.evictions.Load(), handles.reopens.Load()
}

var handles = newHandleBudget()

func newHandleBudget() *handleBudget {
	b := &handleBudget{byPath: make(map[string]map[*budgetFile]struct{})}
	b.max.Store(int64(DefaultFileHandles()))
	return b
}

// handleBudget: lock order pathsMu > budgetFile.mu > mu; a budgetFile's mu
// is taken under mu only with TryLock (eviction skips a busy file).
type handleBudget struct {
	max       atomic.Int64
	evictions atomic.Int64
	reopens   atomic.Int64

	pathsMu sync.Mutex
	byPath  map[string]map[*budgetFile]struct{}

	mu    sync.Mutex
	open  int           // descriptors held, pinned ones included
	clock []*budgetFile // unpinned files holding a descriptor
	hand  int
}

// budgetFile is a File whose descriptor the budget may close while no
// call is using it.
type budgetFile struct {
	b *handleBudget

	mu      sync.Mutex
	path    string // current name (follows renames)
	f       *os.File
	dev     uint64
	ino     uint64
	refs    int // calls using f
	pinned  bool
	slot    int // index in b.clock, -1 if not there
	closed  bool
	wgen    uint64 // writes begun
	synced  uint64 // writes covered by a successful fsync
	syncErr error  // a failed fsync of a descriptor closed by the budget
	used    atomic.Bool
}

var errFileClosed = errors.New("storage: file closed")

func openBudgetFile(name string, create bool) (File, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	b := handles
	h := &budgetFile{b: b, path: filepath.Clean(name), slot: -1}
	h.mu.Lock()
	b.admit(h)
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		b.release(h, false)
		h.mu.Unlock()
		if !create {
			err = missingOr(name, err)
		}
		return nil, err
	}
	if err := h.setFileLocked(f, false); err != nil {
		f.Close()
		b.release(h, false)
		h.mu.Unlock()
		return nil, err
	}
	h.used.Store(true)
	b.addClock(h)
	h.mu.Unlock()
	b.pathsMu.Lock()
	set := b.byPath[h.path]
	if set == nil {
		set = make(map[*budgetFile]struct{})
		b.byPath[h.path] = set
	}
	set[h] = struct{}{}
	b.pathsMu.Unlock()
	return h, nil
}

// setFileLocked installs f, checking on a reopen that it is the same file.
func (h *budgetFile) setFileLocked(f *os.File, reopen bool) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	dev, ino := fileID(st)
	if reopen && (dev != h.dev || ino != h.ino) {
		return fmt.Errorf("storage: reopen %s: a different file is at its path", h.path)
	}
	h.f, h.dev, h.ino = f, dev, ino
	return nil
}

// acquire returns the descriptor with a reference held; write says the
// call may change the file.
func (h *budgetFile) acquire(write bool) (*os.File, error) {
	h.used.Store(true)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errFileClosed
	}
	if write && h.syncErr != nil {
		return nil, h.syncErr
	}
	if h.f == nil {
		h.b.admit(h)
		f, err := os.OpenFile(h.path, os.O_RDWR, 0)
		if err == nil {
			if err = h.setFileLocked(f, true); err != nil {
				f.Close()
			}
		}
		if err != nil {
			h.b.release(h, false)
			return nil, err
		}
		h.b.reopens.Add(1)
		if !h.pinned {
			h.b.addClock(h)
		}
	}
	h.refs++
	return h.f, nil
}

// done drops the reference acquire took; wrote counts a write, once it
// has completed (an fsync that began before counts it as not covered).
func (h *budgetFile) done(wrote bool) {
	h.mu.Lock()
	h.refs--
	if wrote {
		h.wgen++
	}
	h.mu.Unlock()
}

func (h *budgetFile) ReadAt(p []byte, off int64) (int, error) {
	f, err := h.acquire(false)
	if err != nil {
		return 0, err
	}
	defer h.done(false)
	return f.ReadAt(p, off)
}

func (h *budgetFile) WriteAt(p []byte, off int64) (int, error) {
	f, err := h.acquire(true)
	if err != nil {
		return 0, err
	}
	defer h.done(true)
	return f.WriteAt(p, off)
}

func (h *budgetFile) Truncate(size int64) error {
	f, err := h.acquire(true)
	if err != nil {
		return err
	}
	defer h.done(true)
	return f.Truncate(size)
}

func (h *budgetFile) Size() (int64, error) {
	f, err := h.acquire(false)
	if err != nil {
		return 0, err
	}
	defer h.done(false)
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Sync fsyncs the writes completed before it. Writes whose descriptor
// the budget closed were fsynced then; a failure of that fsync, or of an
// earlier Sync, is returned: a failed fsync stays failed (the kernel may
// have dropped the pages it could not write).
func (h *budgetFile) Sync() error {
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return errFileClosed
	case h.syncErr != nil:
		h.mu.Unlock()
		return h.syncErr
	case h.f == nil: // closed by the budget after an fsync of every write
		h.mu.Unlock()
		return nil
	}
	f, gen := h.f, h.wgen
	h.refs++
	h.mu.Unlock()
	err := f.Sync()
	h.mu.Lock()
	h.refs--
	if err != nil {
		h.syncErr = err
	} else if gen > h.synced {
		h.synced = gen
	}
	h.mu.Unlock()
	return err
}

// Close closes the descriptor if open (without an fsync: a caller that
// needs one calls Sync first, as with an os.File).
func (h *budgetFile) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errFileClosed
	}
	h.closed = true
	var err error
	if h.f != nil {
		err = h.f.Close()
		h.f = nil
		h.b.release(h, true)
	}
	path := h.path
	h.mu.Unlock()
	h.b.pathsMu.Lock()
	if set := h.b.byPath[path]; set != nil {
		delete(set, h)
		if len(set) == 0 {
			delete(h.b.byPath, path)
		}
	}
	h.b.pathsMu.Unlock()
	return err
}

// hold keeps the descriptor open until unhold, for a caller that uses it
// directly (sendfile).
func (h *budgetFile) hold() (*os.File, error) { return h.acquire(false) }
func (h *budgetFile) unhold()                 { h.done(false) }

// admit reserves a descriptor for h (whose mu is held), closing idle ones
// of other files first if the budget is spent.
func (b *handleBudget) admit(h *budgetFile) {
	b.mu.Lock()
	b.open++
	b.evictLocked(h)
	b.mu.Unlock()
}

func (b *handleBudget) addClock(h *budgetFile) {
	b.mu.Lock()
	h.slot = len(b.clock)
	b.clock = append(b.clock, h)
	b.mu.Unlock()
}

// release gives back h's descriptor (h.mu held), held: the descriptor was
// open (and perhaps on the clock), not only admitted.
func (b *handleBudget) release(h *budgetFile, held bool) {
	b.mu.Lock()
	b.open--
	if held {
		b.removeClockLocked(h)
	}
	b.mu.Unlock()
}

func (b *handleBudget) removeClockLocked(h *budgetFile) {
	i := h.slot
	if i < 0 {
		return
	}
	last := len(b.clock) - 1
	b.clock[i] = b.clock[last]
	b.clock[i].slot = i
	b.clock[last] = nil
	b.clock = b.clock[:last]
	h.slot = -1
	if b.hand > len(b.clock) {
		b.hand = 0
	}
}

// evictLocked closes idle descriptors, least recently used first (a clock
// sweep), until the budget holds or no idle one is left. self is the file
// being opened (its mu is held: it is skipped).
func (b *handleBudget) evictLocked(self *budgetFile) {
	max := int(b.max.Load())
	for tries := 2 * len(b.clock); b.open > max && tries > 0 && len(b.clock) > 0; tries-- {
		if b.hand >= len(b.clock) {
			b.hand = 0
		}
		v := b.clock[b.hand]
		if v == self || v.used.Swap(false) || !v.mu.TryLock() {
			b.hand++
			continue
		}
		if v.refs > 0 || v.f == nil || v.pinned {
			v.mu.Unlock()
			b.hand++
			continue
		}
		if v.wgen != v.synced {
			if err := v.f.Sync(); err != nil && v.syncErr == nil {
				v.syncErr = err
			}
			v.synced = v.wgen
		}
		v.f.Close()
		v.f = nil
		b.removeClockLocked(v)
		b.open--
		b.evictions.Add(1)
		v.mu.Unlock()
	}
}

// pinPath reopens every closed handle of path (or, with under, of every
// path below it) and keeps its descriptor open until it is closed: the
// path is about to be renamed over or removed.
func (b *handleBudget) pinPath(path string, under bool) {
	path = filepath.Clean(path)
	b.pathsMu.Lock()
	defer b.pathsMu.Unlock()
	pin := func(set map[*budgetFile]struct{}) {
		for h := range set {
			if f, err := h.acquire(false); err == nil && f != nil {
				h.mu.Lock()
				if !h.pinned {
					h.pinned = true
					b.mu.Lock()
					b.removeClockLocked(h)
					b.mu.Unlock()
				}
				h.refs--
				h.mu.Unlock()
			}
		}
	}
	if !under {
		pin(b.byPath[path])
		return
	}
	// The files below path are looked up by the names found on disk, not
	// by a scan of every path with a handle: a removal then costs what
	// the tree removed holds, not what the whole broker holds open (a
	// topic creation clears each partition's directory first). A handle
	// whose file is not on disk has nothing left to keep.
	pin(b.byPath[path])
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && p != path {
			pin(b.byPath[p])
		}
		return nil
	})
}

// rename renames oldname to newname with do, after pinning the handles
// of newname (which lose their name); the handles of oldname follow it,
// locked across the rename so that none reopens in between.
func (b *handleBudget) rename(oldname, newname string, do func() error) error {
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	b.pinPath(newname, false)
	b.pathsMu.Lock()
	defer b.pathsMu.Unlock()
	moved := b.byPath[oldname]
	for h := range moved {
		h.mu.Lock()
	}
	err := do()
	for h := range moved {
		if err == nil {
			h.path = newname
		}
		h.mu.Unlock()
	}
	if err != nil || len(moved) == 0 {
		return err
	}
	delete(b.byPath, oldname)
	if set := b.byPath[newname]; set != nil {
		for h := range set {
			moved[h] = struct{}{}
		}
	}
	b.byPath[newname] = moved
	return nil
}
