package storage

import (
	"errors"
	"os"
)

var errRegionRange = errors.New("storage: read past the end of a region")

// Region is a run of whole batches in one segment's data file, held open
// until Release: what Read would have returned, without the read, so that
// a front end can send the bytes from the file (sendfile) instead of
// through a buffer. While a Region is held, retention may delete its
// segment and the cleaner may replace it; the file stays open (unlinked or
// renamed over, its bytes unchanged) until the last holder releases it.
type Region struct {
	l     *Log
	files *segFiles // nil when data holds the bytes
	data  []byte    // the bytes, for a region read into memory (copyUnder)
	pos   int64     // in the data file
	n     int64
	end   int64 // the offset after the last batch
}

// ReadRegion finds the batches Read(offset, maxBytes) would return, less
// those from the first whose last offset is at or past end (a reader's
// visible end: the high watermark, or the last stable offset), and
// returns where they lie. nil, nil when there are none. Errors are Read's.
// A region shorter than copyUnder bytes is read into memory (Bytes), as
// Read would have, from the window its batch headers were read through
// when it fits there, so that a small read costs no more than Read. The
// caller must Release the Region.
func (l *Log) ReadRegion(offset int64, maxBytes int, end int64, copyUnder int) (*Region, error) {
	segs, hw, err := l.readState(offset)
	if err != nil || offset == hw {
		return nil, err
	}
	end = min(end, hw)
	for i := segIndex(segs, offset); i < len(segs); i++ {
		v, err := l.view(segs, i)
		if err != nil {
			return nil, err
		}
		pos, h, found, err := v.locate(offset)
		if err == nil && found {
			var r *Region
			r, err = v.region(pos, h, maxBytes, end, copyUnder)
			v.release()
			return r, err
		}
		v.release()
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// region walks the batch headers from pos (where the batch with header
// first starts) as readFrom cuts its buffer: whole batches, as many as fit
// in maxBytes (at most MaxReadBytes), at least the first; and only those
// ending below end. The Region takes over v's files, or holds the bytes
// when shorter than copyUnder.
func (v *segView) region(pos int64, first BatchHeader, maxBytes int, end int64, copyUnder int) (*Region, error) {
	limit := max(min(int64(maxBytes), MaxReadBytes), int64(first.Size()))
	r := &Region{l: v.l, pos: pos}
	for at := pos; at < v.size; {
		h, ok, err := v.sc.header(at)
		if err != nil {
			return nil, err
		}
		if !ok {
			if at == pos {
				return nil, v.corrupt(pos)
			}
			break
		}
		if h.LastOffset() >= end || at+int64(h.Size())-pos > limit {
			break
		}
		at += int64(h.Size())
		r.n, r.end = at-pos, h.LastOffset()+1
	}
	switch {
	case r.n == 0:
		return nil, nil
	case r.n < int64(copyUnder):
		r.data = make([]byte, r.n)
		if r.n <= int64(len(*v.buf)) {
			w, err := v.sc.window(pos, int(r.n))
			if err != nil {
				return nil, err
			}
			copy(r.data, w)
		} else if err := readFull(v.files.data, r.data, pos); err != nil {
			return nil, err
		}
		return r, nil
	}
	r.files, v.files = v.files, nil
	return r, nil
}

// Len is the region's length in bytes.
func (r *Region) Len() int { return int(r.n) }

// End is the offset after the region's last batch.
func (r *Region) End() int64 { return r.end }

// Bytes are the region's bytes when it was read into memory (shorter than
// ReadRegion's copyUnder), else nil.
func (r *Region) Bytes() []byte { return r.data }

// ReadAt reads len(p) bytes at off within the region (a copying reader).
func (r *Region) ReadAt(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > r.n {
		return errRegionRange
	}
	if r.data != nil {
		copy(p, r.data[off:])
		return nil
	}
	return readFull(r.files.data, p, r.pos+off)
}

// File returns the open data file and the region's position in it, when
// the log is on the real file system (OSFS); ok=false otherwise. The file
// is the log's, shared with other readers: use positioned I/O only (pread,
// sendfile with an offset), never its seek offset, and not after Release.
func (r *Region) File() (f *os.File, pos int64, ok bool) {
	if r.files == nil {
		return nil, 0, false
	}
	of, ok := r.files.data.(osFile)
	if !ok {
		return nil, 0, false
	}
	return of.File, r.pos, true
}

// Release lets the segment's file close. The Region is unusable after.
func (r *Region) Release() {
	if r.files != nil {
		r.l.cache.release(r.files)
		r.files = nil
	}
}
