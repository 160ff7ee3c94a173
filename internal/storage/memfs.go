package storage

import (
	"errors"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ErrCrashed is returned by a MemFS file handle opened before the last
// Crash: the process that owned it is considered dead.
var ErrCrashed = errors.New("storage: file handle invalidated by simulated crash")

// MemFS is an in-memory FS, the twin of OSFS that the shared test suite
// also runs on. It models what survives a power loss: every file keeps a
// durable copy of its contents, updated by File.Sync, and every directory a
// durable set of entries, updated by SyncDir. Crash throws away everything
// that was not made durable that way. Between Crash and Restart the file
// system is "powered off": every operation fails with ErrCrashed, so that
// the process that was running (a Log's goroutines) cannot touch what the
// next process finds.
//
// Simplifications: directories (MkdirAll) and RemoveAll are durable at
// once, and unsynced writes are lost entirely (a real disk may keep some of
// them; FaultFS covers torn writes).
type MemFS struct {
	mu      sync.Mutex
	gen     uint64
	down    bool // between Crash and Restart
	dirs    map[string]bool
	files   map[string]*memNode // current directory entries
	durable map[string]*memNode // entries as of each directory's last SyncDir
}

type memNode struct {
	data      []byte
	durable   []byte
	dirtyFrom int // smallest offset changed since the last Sync; MaxInt if clean
}

// NewMemFS returns an empty in-memory file system with a root directory "/".
func NewMemFS() *MemFS {
	return &MemFS{
		dirs:    map[string]bool{"/": true, ".": true},
		files:   make(map[string]*memNode),
		durable: make(map[string]*memNode),
	}
}

// Crash simulates a power loss: directory entries revert to what the last
// SyncDir of their directory recorded, file contents revert to what the
// last Sync recorded, every open handle fails with ErrCrashed from now on,
// and so does every other operation until Restart.
func (m *MemFS) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.down = true
	m.files = make(map[string]*memNode, len(m.durable))
	seen := make(map[*memNode]bool)
	for name, n := range m.durable {
		m.files[name] = n
		if !seen[n] {
			seen[n] = true
			n.data = append([]byte(nil), n.durable...)
			n.dirtyFrom = math.MaxInt
		}
	}
}

// Restart powers the file system back on after Crash. Handles opened
// before the crash stay dead.
func (m *MemFS) Restart() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = false
}

// CrashAndRestart is Crash followed by Restart.
func (m *MemFS) CrashAndRestart() {
	m.Crash()
	m.Restart()
}

func memPathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// MkdirAll creates dir and its parents. Directories are durable at once.
func (m *MemFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrCrashed
	}
	dir = filepath.Clean(dir)
	for d := dir; ; d = filepath.Dir(d) {
		if _, isFile := m.files[d]; isFile {
			return memPathErr("mkdir", d, fs.ErrExist)
		}
		m.dirs[d] = true
		if p := filepath.Dir(d); p == d {
			break
		}
	}
	return nil
}

// ReadDir lists the names of files and directories directly in dir, sorted.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, ErrCrashed
	}
	dir = filepath.Clean(dir)
	if !m.dirs[dir] {
		return nil, memPathErr("readdir", dir, fs.ErrNotExist)
	}
	var names []string
	for name := range m.files {
		if filepath.Dir(name) == dir {
			names = append(names, filepath.Base(name))
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// OpenFile opens name for reading and writing, creating it if asked.
func (m *MemFS) OpenFile(name string, create bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, ErrCrashed
	}
	name = filepath.Clean(name)
	if m.dirs[name] {
		return nil, memPathErr("open", name, errors.New("is a directory"))
	}
	n, ok := m.files[name]
	if !ok {
		if !create || !m.dirs[filepath.Dir(name)] {
			return nil, memPathErr("open", name, fs.ErrNotExist)
		}
		n = &memNode{dirtyFrom: math.MaxInt}
		m.files[name] = n
	}
	return &memFile{m: m, n: n, name: name, gen: m.gen}, nil
}

// Remove removes a file or an empty directory.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrCrashed
	}
	name = filepath.Clean(name)
	if _, ok := m.files[name]; ok {
		delete(m.files, name)
		return nil
	}
	if m.dirs[name] {
		for f := range m.files {
			if filepath.Dir(f) == name {
				return memPathErr("remove", name, errors.New("directory not empty"))
			}
		}
		delete(m.dirs, name)
		return nil
	}
	return memPathErr("remove", name, fs.ErrNotExist)
}

// RemoveAll removes dir and everything below it, durably at once.
func (m *MemFS) RemoveAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrCrashed
	}
	dir = filepath.Clean(dir)
	under := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) }
	for f := range m.files {
		if under(f) {
			delete(m.files, f)
		}
	}
	for f := range m.durable {
		if under(f) {
			delete(m.durable, f)
		}
	}
	for d := range m.dirs {
		if under(d) {
			delete(m.dirs, d)
		}
	}
	return nil
}

// Rename moves a file to a new name, replacing any file already there.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrCrashed
	}
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	n, ok := m.files[oldname]
	if !ok {
		return memPathErr("rename", oldname, fs.ErrNotExist)
	}
	if !m.dirs[filepath.Dir(newname)] || m.dirs[newname] {
		return memPathErr("rename", newname, fs.ErrNotExist)
	}
	delete(m.files, oldname)
	m.files[newname] = n
	return nil
}

// SyncDir makes the current entries of dir durable.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrCrashed
	}
	dir = filepath.Clean(dir)
	if !m.dirs[dir] {
		return memPathErr("syncdir", dir, fs.ErrNotExist)
	}
	for name := range m.durable {
		if filepath.Dir(name) == dir {
			delete(m.durable, name)
		}
	}
	for name, n := range m.files {
		if filepath.Dir(name) == dir {
			m.durable[name] = n
		}
	}
	return nil
}

type memFile struct {
	m      *MemFS
	n      *memNode
	name   string
	gen    uint64
	closed bool
}

// checkLocked reports why the handle can no longer be used, if it cannot.
func (f *memFile) checkLocked() error {
	if f.closed {
		return fs.ErrClosed
	}
	if f.gen != f.m.gen {
		return ErrCrashed
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.checkLocked(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, memPathErr("read", f.name, errors.New("negative offset"))
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// resize sets the length of n.data, zeroing any bytes it exposes.
func (n *memNode) resize(size int) {
	old := len(n.data)
	if size <= cap(n.data) {
		n.data = n.data[:size]
	} else {
		grown := make([]byte, size, max(size, 2*cap(n.data)))
		copy(grown, n.data)
		n.data = grown
	}
	if size > old {
		clear(n.data[old:size])
	}
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.checkLocked(); err != nil {
		return 0, err
	}
	if off < 0 || off > math.MaxInt32*64 {
		return 0, memPathErr("write", f.name, errors.New("bad offset"))
	}
	end := int(off) + len(p)
	if end > len(f.n.data) {
		f.n.resize(end)
	}
	copy(f.n.data[off:], p)
	f.n.dirtyFrom = min(f.n.dirtyFrom, int(off))
	return len(p), nil
}

func (f *memFile) Truncate(size int64) error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.checkLocked(); err != nil {
		return err
	}
	if size < 0 || size > math.MaxInt32*64 {
		return memPathErr("truncate", f.name, errors.New("bad size"))
	}
	f.n.dirtyFrom = min(f.n.dirtyFrom, len(f.n.data), int(size))
	f.n.resize(int(size))
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.checkLocked(); err != nil {
		return 0, err
	}
	return int64(len(f.n.data)), nil
}

// Sync makes the file's current contents durable. Only the bytes changed
// since the previous Sync are copied.
func (f *memFile) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.checkLocked(); err != nil {
		return err
	}
	n := f.n
	d := min(n.dirtyFrom, len(n.durable), len(n.data))
	n.durable = append(n.durable[:d], n.data[d:]...)
	n.dirtyFrom = math.MaxInt
	return nil
}

func (f *memFile) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	f.closed = true
	return nil
}
