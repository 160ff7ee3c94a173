package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	tmpSuffix       = ".tmp"
	baseDigits      = 20
)

// segmentName is the file name of the segment with base offset base and the
// given suffix: 20 zero-padded decimal digits, so names sort by offset.
func segmentName(base int64, suffix string) string {
	s := strconv.FormatInt(base, 10)
	return strings.Repeat("0", max(0, baseDigits-len(s))) + s + suffix
}

// parseSegmentName returns the base offset of a segment file name with the
// given suffix.
func parseSegmentName(name, suffix string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != baseDigits {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// segment is one data file and its two indexes.
type segment struct {
	base     int64
	path     string // data file path without suffix: dir/00000000000000000000
	offLimit int64  // recovery: offsets here are below this (the next segment's base)

	// Guarded by Log.mu. For the active segment these move forward as the
	// writer commits; for older segments they are fixed.
	size  int64         // readable bytes: up to the high watermark for the active segment
	maxTs int64         // largest batch MaxTimestamp, noTimestamp if none
	idx   []offsetEntry // active segment only; older segments search the file
	tidx  []timeEntry   // active segment only
	// successor is the segment that replaced this one when it was
	// compacted (compact.go); readers that find this one gone follow it.
	successor *segment

	// Guarded by handleCache.mu.
	files   *segFiles
	pinned  bool // the active segment: its files stay open, outside the LRU
	deleted bool
}

func (s *segment) dataPath() string      { return s.path + logSuffix }
func (s *segment) indexPath() string     { return s.path + indexSuffix }
func (s *segment) timeIndexPath() string { return s.path + timeIndexSuffix }

func newSegment(dir string, base int64) *segment {
	return &segment{base: base, path: filepath.Join(dir, segmentName(base, "")), maxTs: noTimestamp, offLimit: math.MaxInt64}
}

// segFiles are the open files of a segment, shared by readers through
// handleCache. index and timeindex open on first use.
type segFiles struct {
	data, index, timeindex File
	refs                   int
	doomed                 bool // dropped from the cache while in use: close on last release
}

func (f *segFiles) close() {
	for _, x := range []File{f.data, f.index, f.timeindex} {
		if x != nil {
			x.Close()
		}
	}
}

var errSegmentGone = errors.New("storage: segment deleted")

// handleCache bounds the file descriptors held for old segments: at most
// max segments have open files, least recently used closed first. Files
// are reference counted so that eviction or deletion never closes a file
// under a reader. mu is a leaf lock; opening a file happens under it.
type handleCache struct {
	fs  FS
	max int

	mu     sync.Mutex
	lru    []*segment // unpinned segments with open files, most recent last
	closed bool
}

// acquire returns s's files with a reference held; release it with release.
func (c *handleCache) acquire(s *segment) (*segFiles, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, ErrClosed
	case s.deleted:
		return nil, errSegmentGone
	}
	if s.files == nil {
		f, err := c.fs.OpenFile(s.dataPath(), false)
		if err != nil {
			return nil, fmt.Errorf("storage: open segment: %w", err)
		}
		s.files = &segFiles{data: f}
		c.lru = append(c.lru, s)
		c.evictLocked()
	} else if !s.pinned {
		c.touchLocked(s)
	}
	s.files.refs++
	return s.files, nil
}

func (c *handleCache) release(f *segFiles) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.refs--
	if f.refs == 0 && f.doomed {
		f.close()
	}
}

// indexFiles opens (once) and returns the index files of a segment whose
// files are acquired. A missing index file yields nil, not an error.
func (c *handleCache) indexFiles(s *segment, f *segFiles) (index, timeindex File, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.deleted {
		// Dropped, or replaced by a compacted copy whose index files may
		// now sit at this path: open nothing more, scan without them.
		return f.index, f.timeindex, nil
	}
	if f.index == nil {
		if f.index, err = c.openIfExists(s.indexPath()); err != nil {
			return nil, nil, err
		}
	}
	if f.timeindex == nil {
		if f.timeindex, err = c.openIfExists(s.timeIndexPath()); err != nil {
			return nil, nil, err
		}
	}
	return f.index, f.timeindex, nil
}

func (c *handleCache) openIfExists(name string) (File, error) {
	f, err := c.fs.OpenFile(name, false)
	if isNotExist(err) {
		return nil, nil
	}
	return f, err
}

func (c *handleCache) touchLocked(s *segment) {
	for i, x := range c.lru {
		if x == s {
			copy(c.lru[i:], c.lru[i+1:])
			c.lru[len(c.lru)-1] = s
			return
		}
	}
}

func (c *handleCache) removeLocked(s *segment) {
	for i, x := range c.lru {
		if x == s {
			c.lru = append(c.lru[:i], c.lru[i+1:]...)
			return
		}
	}
}

// dropFilesLocked detaches s's files, closing them now or on last release.
func (c *handleCache) dropFilesLocked(s *segment) {
	f := s.files
	if f == nil {
		return
	}
	s.files = nil
	if f.refs == 0 {
		f.close()
	} else {
		f.doomed = true
	}
}

func (c *handleCache) evictLocked() {
	for len(c.lru) > c.max {
		s := c.lru[0]
		c.lru = c.lru[1:]
		c.dropFilesLocked(s)
	}
}

// pin installs the writer's open files as the active segment's handles.
func (c *handleCache) pin(s *segment, f *segFiles) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.files, s.pinned = f, true
}

// unpin hands a segment that stopped being active over to the LRU.
func (c *handleCache) unpin(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.pinned = false
	if s.files != nil && !s.deleted {
		c.lru = append(c.lru, s)
		c.evictLocked()
	}
}

// drop forgets a deleted segment.
func (c *handleCache) drop(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.deleted = true
	c.removeLocked(s)
	c.dropFilesLocked(s)
}

// closeAll closes every file; later acquires fail with ErrClosed.
func (c *handleCache) closeAll(segs []*segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, s := range segs {
		c.dropFilesLocked(s)
	}
	c.lru = nil
}

// scanner walks batch headers of one data file forward through a small
// reusable window, reading the file with ReadAt.
type scanner struct {
	f      File
	limit  int64 // scan [pos, limit)
	buf    []byte
	bufOff int64 // file position of buf[0]
	bufLen int
}

func newScanner(f File, limit int64, buf []byte) *scanner {
	return &scanner{f: f, limit: limit, buf: buf, bufOff: -1}
}

// window returns n bytes at pos (n <= len(s.buf)), reading if needed.
func (s *scanner) window(pos int64, n int) ([]byte, error) {
	if s.bufOff >= 0 && pos >= s.bufOff && pos+int64(n) <= s.bufOff+int64(s.bufLen) {
		off := int(pos - s.bufOff)
		return s.buf[off : off+n], nil
	}
	want := int(min(int64(len(s.buf)), s.limit-pos))
	if want < n {
		return nil, fmt.Errorf("storage: scanner: %d bytes at %d past limit %d", n, pos, s.limit)
	}
	if err := readFull(s.f, s.buf[:want], pos); err != nil {
		s.bufOff = -1
		return nil, err
	}
	s.bufOff, s.bufLen = pos, want
	return s.buf[:n], nil
}

// header reads the batch header at pos. ok=false means the bytes there are
// not a well-framed batch ending by the limit (a torn or corrupt tail);
// err is an I/O error.
func (s *scanner) header(pos int64) (h BatchHeader, ok bool, err error) {
	if s.limit-pos < batchHeaderSize {
		return BatchHeader{}, false, nil
	}
	b, err := s.window(pos, batchHeaderSize)
	if err != nil {
		return BatchHeader{}, false, err
	}
	h = parseHeader(b)
	return h, checkFraming(h, s.limit-pos) == nil, nil
}

// crcOK verifies the CRC of the batch with header h at pos, streaming it
// through the window so that memory does not depend on the batch length.
func (s *scanner) crcOK(h BatchHeader, pos int64) (bool, error) {
	crc := uint32(0)
	end := pos + int64(h.Size())
	for p := pos + posAttributes; p < end; {
		n := int(min(int64(len(s.buf)), end-p))
		b, err := s.window(p, n)
		if err != nil {
			return false, err
		}
		crc = crc32.Update(crc, castagnoli, b)
		p += int64(n)
	}
	return crc == h.CRC, nil
}

// scanResult is what scanBatches learned.
type scanResult struct {
	end      int64 // position after the last good batch
	next     int64 // offset after the last good batch; unchanged if none
	lastBase int64 // base offset of the last good batch; -1 if none
	maxTs    int64
	bad      bool // stopped at a bad batch before the limit
}

// scanBatches validates batches of segment s from pos to the scanner's
// limit: framing, offsets increasing from next, representable relative to
// the segment base and below s.offLimit, and the CRC when verify is set.
// fn sees every good batch. It stops at the first bad batch; only I/O
// errors are errors.
func scanBatches(sc *scanner, s *segment, pos, next int64, verify bool, fn func(h BatchHeader, pos int64)) (scanResult, error) {
	r := scanResult{end: pos, next: next, lastBase: -1, maxTs: noTimestamp}
	for pos < sc.limit {
		h, ok, err := sc.header(pos)
		if err != nil {
			return r, err
		}
		if ok && (h.BaseOffset < r.next || !relFits(s.base, h.BaseOffset) ||
			h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta) || h.LastOffset() >= s.offLimit) {
			ok = false // offsets must increase and fit the segment's relative offsets
		}
		if ok && verify {
			if ok, err = sc.crcOK(h, pos); err != nil {
				return r, err
			}
		}
		if !ok {
			r.bad = true
			return r, nil
		}
		if fn != nil {
			fn(h, pos)
		}
		r.next, r.lastBase = h.LastOffset()+1, h.BaseOffset
		r.maxTs = max(r.maxTs, h.MaxTimestamp)
		pos += int64(h.Size())
		r.end = pos
	}
	return r, nil
}

// putBaseOffset rewrites the BaseOffset field of the batch at b.
func putBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[posBaseOffset:], uint64(off)) }
