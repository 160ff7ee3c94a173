package storage

import (
	"encoding/binary"
	"hash/crc32"
	"path/filepath"
	"time"
)

// The log start checkpoint: a 20-byte file holding the log start offset
// set by DeleteRecordsBefore. See docs/storage-format.md.
//
//	magic "SLSO" | version uint16 (1) | flags uint16 (0) | start int64 | crc32c uint32
//
// The CRC covers the 16 bytes before it. A missing or invalid checkpoint
// reads as "no checkpoint": the start is then the first segment's base.
const (
	checkpointName    = "log-start-offset.checkpoint"
	checkpointMagic   = "SLSO"
	checkpointVersion = 1
	checkpointSize    = 20
)

func encodeCheckpoint(start int64) []byte {
	b := make([]byte, 0, checkpointSize)
	b = append(b, checkpointMagic...)
	b = binary.BigEndian.AppendUint16(b, checkpointVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeCheckpoint(b []byte) (int64, bool) {
	if len(b) != checkpointSize || string(b[:4]) != checkpointMagic ||
		binary.BigEndian.Uint16(b[4:]) != checkpointVersion ||
		crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
		return 0, false
	}
	start := int64(binary.BigEndian.Uint64(b[8:]))
	return start, start >= 0
}

// readCheckpoint returns the checkpointed start offset, or -1 if there is
// no valid checkpoint.
func readCheckpoint(fsys FS, dir string) (int64, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, checkpointName), false)
	if isNotExist(err) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b := make([]byte, checkpointSize+1)
	n, _ := f.ReadAt(b, 0)
	if start, ok := decodeCheckpoint(b[:n]); ok {
		return start, nil
	}
	return -1, nil
}

// writeCheckpoint replaces the checkpoint atomically: temp file, fsync,
// rename, fsync of the directory.
func writeCheckpoint(fsys FS, dir string, start int64) error {
	name := filepath.Join(dir, checkpointName)
	tmp := name + tmpSuffix
	if err := writeWhole(fsys, tmp, encodeCheckpoint(start)); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}

// DeleteRecordsBefore moves the log start to offset (durably) and deletes
// segments wholly below it. An offset at or below the current start does
// nothing; one above the high watermark fails with ErrOffsetOutOfRange.
// The active segment is never deleted, even when wholly covered.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	l.adminMu.Lock()
	defer l.adminMu.Unlock()
	l.mu.Lock()
	closed, start, hw := l.closed, l.start.Load(), l.hw.Load()
	l.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case offset > hw:
		return ErrOffsetOutOfRange
	case offset <= start:
		return nil
	}
	if err := writeCheckpoint(l.fs, l.dir, offset); err != nil {
		return err
	}
	l.mu.Lock()
	l.start.Store(offset)
	n := 0
	for n+1 < len(l.segs) && l.segs[n+1].base <= offset {
		n++
	}
	victims := l.dropSegmentsLocked(n)
	l.mu.Unlock()
	return l.deleteSegments(victims)
}

// EnforceRetention deletes whole oldest segments (never the active one)
// whose newest record is older than retention (<0: unlimited), or while the
// log is larger than retentionBytes (<0: unlimited). Returns segments deleted.
//
// Time is Options.Now against each segment's largest batch MaxTimestamp; a
// segment without timestamps never expires by time. Deletion stops at the
// first segment that is kept, so the log stays contiguous.
func (l *Log) EnforceRetention(retention time.Duration, retentionBytes int64) (int, error) {
	l.adminMu.Lock()
	defer l.adminMu.Unlock()
	cutoff := l.opts.Now().Add(-retention).UnixMilli()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	total, n := l.size, 0
	for ; n+1 < len(l.segs); n++ {
		s := l.segs[n]
		expired := retention >= 0 && s.maxTs != noTimestamp && s.maxTs < cutoff
		oversize := retentionBytes >= 0 && total > retentionBytes
		if !expired && !oversize {
			break
		}
		total -= s.size
	}
	victims := l.dropSegmentsLocked(n)
	l.mu.Unlock()
	return len(victims), l.deleteSegments(victims)
}

// dropSegmentsLocked removes the n oldest segments from the log and moves
// the start past them. The caller deletes their files.
func (l *Log) dropSegmentsLocked(n int) []*segment {
	if n == 0 {
		return nil
	}
	victims := l.segs[:n:n]
	l.segs = l.segs[n:len(l.segs):len(l.segs)] // append on roll copies
	for _, s := range victims {
		l.size -= s.size
	}
	if b := l.segs[0].base; b > l.start.Load() {
		l.start.Store(b)
	}
	return victims
}

// deleteSegments removes dropped segments' files, data file first so a
// crash leaves at worst orphan indexes, which Open removes.
func (l *Log) deleteSegments(victims []*segment) error {
	if len(victims) == 0 {
		return nil
	}
	var first error
	for _, s := range victims {
		l.cache.drop(s)
		for _, name := range []string{s.dataPath(), s.indexPath(), s.timeIndexPath(), s.sidecarPath()} {
			if err := l.fs.Remove(name); err != nil && !isNotExist(err) && first == nil {
				first = err
			}
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil && first == nil {
		first = err
	}
	return first
}
