package storage

import (
	"errors"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// volatilePageSize is the unit in which VolatileFS keeps unsynced data.
const volatilePageSize = 4096

// NewVolatileFS wraps inner in a file system that loses, when the process
// dies, every write not yet fsynced: the power-loss model that kill -9 on
// the real file system cannot give (the page cache survives the process).
// A real broker process can run on it (faultinject builds with
// SLUICE_FAULT_VOLATILE=1, internal/server/faults_inject.go) and be killed:
// what is on disk afterwards is exactly what its fsyncs made durable.
//
// File contents. File.WriteAt does not reach inner: the bytes are kept in
// memory, in 4 KiB pages, until File.Sync writes the dirty pages to inner
// (WriteAt, adjacent pages in one call) and then calls inner's Sync. The
// memory held is bounded by what is written between two fsyncs of a file,
// which the storage engine keeps small (a group commit under SyncAlways; at
// most a segment under the weaker policies, whose rolls fsync; an active
// segment's index entries until the roll or close). ReadAt and Size see
// the unsynced bytes: reads merge the buffered pages over inner's contents.
//
// Sharing. Unsynced state belongs to the file, not to the handle: every
// handle open on a path shares it (storage opens an active segment's data
// file once for its writer and once more for readers), and any handle's
// Sync makes all of it durable, as fsync does for an inode. The state
// follows the file through Rename; Remove and RemoveAll detach it (handles
// still open keep it, like an unlinked inode; a new file at the path starts
// clean).
//
// Truncate is applied to inner at the next Sync, not at once: until then
// only the view through this file system is cut (or extended with zeros).
// On a real power loss an unsynced truncate may or may not survive; keeping
// it pending is the stricter choice for the engine, because it punishes
// exactly the mistake an engine can make with truncates, relying on a cut
// (of a torn tail, of writes its callers were told failed) that it did not
// fsync: after a crash the cut-off bytes, if they were durable, come back.
// (The other outcome, a cut that survives, only removes bytes past what
// the engine chose to keep.)
//
// Close of a file's last handle drops what was not synced, unsynced
// truncates included, as a crash would: the engine always fsyncs before it
// relies on data, and losing the bytes here makes a missing fsync visible
// even without a crash. (A real close keeps them in the page cache.)
//
// Directory operations (MkdirAll, ReadDir, Remove, RemoveAll, Rename,
// SyncDir, and the creation of a file by OpenFile) pass through to inner at
// once: unsynced directory entries are not simulated as lost (MemFS models
// those in memory).
//
// Safe for concurrent use: reads may run on any handle while another
// writes or syncs; a Sync does its inner writes and fsync without holding
// the file's lock, so readers are not held up by an fsync.
func NewVolatileFS(inner FS) FS {
	return &volatileFS{inner: inner, nodes: make(map[string]*vnode)}
}

type volatileFS struct {
	inner FS

	mu    sync.Mutex        // guards nodes and every vnode's path and refs
	nodes map[string]*vnode // by cleaned path: files with open handles
}

// vnode is the shared state of one file with open handles.
type vnode struct {
	path string // key in volatileFS.nodes; "" once detached
	refs int    // open handles

	syncMu sync.Mutex // one Sync at a time

	mu sync.RWMutex
	// size is the file's size as seen through the wrapper.
	size int64
	// innerValid: bytes of inner below it are the file's contents where no
	// page is buffered; the file reads as zeros from it to size.
	innerValid int64
	// resized: a Truncate that inner has not seen yet (applied at Sync).
	resized bool
	// cutMin is the smallest Truncate size since the running (or last)
	// Sync took its snapshot.
	cutMin int64
	pages  map[int64]*vpage // page index -> unsynced contents
	ver    uint64           // last version given to a page
}

// vpage is one buffered page: the file's bytes in it (zeros past size).
type vpage struct {
	data [volatilePageSize]byte
	ver  uint64 // bumped by every change, so Sync can tell it was rewritten
}

func (v *volatileFS) MkdirAll(dir string) error            { return v.inner.MkdirAll(dir) }
func (v *volatileFS) ReadDir(dir string) ([]string, error) { return v.inner.ReadDir(dir) }
func (v *volatileFS) SyncDir(dir string) error             { return v.inner.SyncDir(dir) }

func (v *volatileFS) OpenFile(name string, create bool) (File, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	f, err := v.inner.OpenFile(name, create)
	if err != nil {
		return nil, err
	}
	key := filepath.Clean(name)
	n := v.nodes[key]
	if n == nil {
		size, err := f.Size()
		if err != nil {
			f.Close()
			return nil, err
		}
		n = &vnode{path: key, size: size, innerValid: size, cutMin: math.MaxInt64, pages: make(map[int64]*vpage)}
		v.nodes[key] = n
	}
	n.refs++
	return &vfile{fs: v, n: n, f: f, name: name}, nil
}

// detachLocked forgets the state of the file at key: handles still open
// keep it; the next open of key starts from inner.
func (v *volatileFS) detachLocked(key string) {
	if n := v.nodes[key]; n != nil {
		n.path = ""
		delete(v.nodes, key)
	}
}

func (v *volatileFS) Remove(name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.inner.Remove(name); err != nil {
		return err
	}
	v.detachLocked(filepath.Clean(name))
	return nil
}

func (v *volatileFS) RemoveAll(dir string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.inner.RemoveAll(dir); err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	for key := range v.nodes {
		if key == dir || strings.HasPrefix(key, dir+string(filepath.Separator)) {
			v.detachLocked(key)
		}
	}
	return nil
}

func (v *volatileFS) Rename(oldname, newname string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.inner.Rename(oldname, newname); err != nil {
		return err
	}
	oldKey, newKey := filepath.Clean(oldname), filepath.Clean(newname)
	if oldKey == newKey {
		return nil
	}
	v.detachLocked(newKey) // the file replaced, if open
	if n := v.nodes[oldKey]; n != nil {
		delete(v.nodes, oldKey)
		n.path = newKey
		v.nodes[newKey] = n
	}
	return nil
}

// vfile is one open handle: its own inner handle, the file's shared state.
type vfile struct {
	fs     *volatileFS
	n      *vnode
	f      File // inner handle
	name   string
	closed atomic.Bool
}

func (h *vfile) check(op string) error {
	if h.closed.Load() {
		return &fs.PathError{Op: op, Path: h.name, Err: fs.ErrClosed}
	}
	return nil
}

// readInner fills p with the file's bytes at off that are not buffered:
// inner's below innerValid, zeros from there on. Caller holds n.mu.
func (h *vfile) readInner(p []byte, off int64) error {
	n := h.n
	k := int64(0)
	if off < n.innerValid {
		k = min(int64(len(p)), n.innerValid-off)
		got, err := h.f.ReadAt(p[:k], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		clear(p[got:k]) // inner shorter than it should be: a hole
	}
	clear(p[k:])
	return nil
}

func (h *vfile) ReadAt(p []byte, off int64) (int, error) {
	if err := h.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: h.name, Err: errors.New("negative offset")}
	}
	n := h.n
	n.mu.RLock()
	defer n.mu.RUnlock()
	if off >= n.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), n.size)
	for pos := off; pos < end; {
		idx := pos / volatilePageSize
		if pg := n.pages[idx]; pg != nil {
			pos += int64(copy(p[pos-off:end-off], pg.data[pos-idx*volatilePageSize:]))
			continue
		}
		// A run of pages that are not buffered: one read of inner.
		next := (idx + 1) * volatilePageSize
		for next < end && n.pages[next/volatilePageSize] == nil {
			next += volatilePageSize
		}
		next = min(next, end)
		if err := h.readInner(p[pos-off:next-off], pos); err != nil {
			return int(pos - off), err
		}
		pos = next
	}
	if got := int(end - off); got < len(p) {
		return got, io.EOF
	}
	return len(p), nil
}

func (h *vfile) WriteAt(p []byte, off int64) (int, error) {
	if err := h.check("write"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: h.name, Err: errors.New("negative offset")}
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	end := off + int64(len(p))
	first, last := off/volatilePageSize, (end-1)/volatilePageSize
	// Make every page the write touches buffered, first, so that a failed
	// read of inner leaves the file as it was.
	var added []int64
	for idx := first; idx <= last; idx++ {
		if n.pages[idx] != nil {
			continue
		}
		pg := &vpage{}
		start := idx * volatilePageSize
		if off > start || end < start+volatilePageSize { // not wholly overwritten
			if err := h.readInner(pg.data[:], start); err != nil {
				for _, a := range added {
					delete(n.pages, a)
				}
				return 0, err
			}
			// Bytes past size stay zero whatever inner holds there.
			if n.size < start+volatilePageSize {
				clear(pg.data[max(n.size-start, 0):])
			}
		}
		n.pages[idx] = pg
		added = append(added, idx)
	}
	n.ver++
	for idx := first; idx <= last; idx++ {
		pg := n.pages[idx]
		start := idx * volatilePageSize
		lo, hi := max(off, start), min(end, start+volatilePageSize)
		copy(pg.data[lo-start:hi-start], p[lo-off:hi-off])
		pg.ver = n.ver
	}
	n.size = max(n.size, end)
	return len(p), nil
}

func (h *vfile) Truncate(size int64) error {
	if err := h.check("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: h.name, Err: errors.New("negative size")}
	}
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if size == n.size {
		return nil
	}
	if size < n.size {
		n.ver++
		for idx, pg := range n.pages {
			start := idx * volatilePageSize
			switch {
			case start >= size:
				delete(n.pages, idx)
			case start+volatilePageSize > size:
				clear(pg.data[size-start:])
				pg.ver = n.ver
			}
		}
		n.innerValid = min(n.innerValid, size)
	}
	n.size = size
	n.resized = true
	n.cutMin = min(n.cutMin, size)
	return nil
}

func (h *vfile) Size() (int64, error) {
	if err := h.check("stat"); err != nil {
		return 0, err
	}
	h.n.mu.RLock()
	defer h.n.mu.RUnlock()
	return h.n.size, nil
}

// syncRun is a run of adjacent dirty pages copied out for a Sync.
type syncRun struct {
	off  int64
	data []byte
	idx  []int64 // its pages
	vers []uint64
}

// Sync makes the file durable in inner: the pending truncate, the buffered
// pages, inner's fsync. The pages are dropped from memory only after the
// fsync succeeded, and only those not written again meanwhile.
func (h *vfile) Sync() error {
	if err := h.check("sync"); err != nil {
		return err
	}
	n := h.n
	n.syncMu.Lock()
	defer n.syncMu.Unlock()

	n.mu.Lock()
	resized, valid, size := n.resized, n.innerValid, n.size
	n.resized, n.cutMin = false, math.MaxInt64
	idxs := make([]int64, 0, len(n.pages))
	for idx := range n.pages {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	var runs []*syncRun
	for _, idx := range idxs {
		start := idx * volatilePageSize
		if start >= size {
			continue // cannot happen: Truncate drops such pages
		}
		pg := n.pages[idx]
		var r *syncRun
		if k := len(runs); k > 0 && runs[k-1].off+int64(len(runs[k-1].data)) == start {
			r = runs[k-1]
		} else {
			r = &syncRun{off: start}
			runs = append(runs, r)
		}
		r.data = append(r.data, pg.data[:min(volatilePageSize, size-start)]...)
		r.idx = append(r.idx, idx)
		r.vers = append(r.vers, pg.ver)
	}
	n.mu.Unlock()

	err := func() error {
		if resized {
			if err := h.f.Truncate(valid); err != nil {
				return err
			}
		}
		for _, r := range runs {
			if _, err := h.f.WriteAt(r.data, r.off); err != nil {
				return err
			}
		}
		if resized {
			if err := h.f.Truncate(size); err != nil {
				return err
			}
		}
		return h.f.Sync()
	}()

	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		// Everything stays buffered; inner may hold part of it, as a disk
		// may after a failed fsync.
		n.resized = n.resized || resized
		return err
	}
	for _, r := range runs {
		for i, idx := range r.idx {
			if pg := n.pages[idx]; pg != nil && pg.ver == r.vers[i] {
				delete(n.pages, idx)
			}
		}
	}
	// inner now holds the file as of the snapshot; a Truncate since then
	// hides what lies past its cut.
	n.innerValid = min(size, n.cutMin)
	return nil
}

// Close closes the handle; the last handle of a file drops what was not
// synced.
func (h *vfile) Close() error {
	if h.closed.Swap(true) {
		return &fs.PathError{Op: "close", Path: h.name, Err: fs.ErrClosed}
	}
	v := h.fs
	v.mu.Lock()
	h.n.refs--
	if h.n.refs == 0 && h.n.path != "" {
		delete(v.nodes, h.n.path)
		h.n.path = ""
	}
	v.mu.Unlock()
	return h.f.Close()
}
