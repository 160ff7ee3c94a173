package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// A sidecar is a small file of opaque bytes that the log's owner keeps
// beside one closed segment (<base>.sidecar): what the owner derived from
// the segment's batches and would otherwise derive again, at every open,
// by reading them (a partition keeps there the segment's aborted
// transactions and the transactions open at its end). The log only keeps
// it true to its segment: a sidecar is valid only for the segment data it
// was written for (its size is recorded), it goes with its segment
// (retention, DeleteRecordsBefore, Delete), a rewrite (CompactSegment,
// RewriteSegment) removes it before the swap, and recovery removes one
// without a segment. A missing, torn or stale sidecar reads as absent;
// the owner derives it again.
//
// File: "SLSC", version 1 (one byte), the segment's data size when it was
// written (int64), the length of the owner's bytes (uint32), those bytes,
// and a CRC32C of everything before it (uint32), all big-endian.

const (
	sidecarSuffix  = ".sidecar"
	sidecarVersion = 1
	sidecarHeader  = 4 + 1 + 8 + 4
	// maxSidecarBytes bounds what a sidecar may hold (and what is read).
	maxSidecarBytes = 16 << 20
)

func (s *segment) sidecarPath() string { return s.path + sidecarSuffix }

// closedSegmentLocked returns the closed segment with base offset base.
func (l *Log) closedSegmentLocked(base int64) *segment {
	for _, s := range l.segs[:max(len(l.segs)-1, 0)] {
		if s.base == base {
			return s
		}
	}
	return nil
}

// SegmentSidecar returns the sidecar of the closed segment with base
// offset base, if it has a valid one (present, intact, written for the
// segment's data as it is now).
func (l *Log) SegmentSidecar(base int64) ([]byte, bool) {
	l.mu.Lock()
	s := l.closedSegmentLocked(base)
	closed := l.closed
	var size int64
	if s != nil {
		size = s.size
	}
	l.mu.Unlock()
	if s == nil || closed {
		return nil, false
	}
	f, err := l.fs.OpenFile(s.sidecarPath(), false)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil || n < sidecarHeader+4 || n > sidecarHeader+4+maxSidecarBytes {
		return nil, false
	}
	b := make([]byte, n)
	if readFull(f, b, 0) != nil {
		return nil, false
	}
	data, written, ok := decodeSidecar(b)
	if !ok || written != size {
		return nil, false
	}
	return data, true
}

// SetSegmentSidecar durably makes data the sidecar of the closed segment
// with base offset base, if that segment still holds size bytes (the data
// the caller derived its bytes from); else it fails with ErrNoSegment.
func (l *Log) SetSegmentSidecar(base, size int64, data []byte) error {
	if len(data) > maxSidecarBytes {
		return fmt.Errorf("storage: sidecar of %d bytes, at most %d", len(data), maxSidecarBytes)
	}
	l.adminMu.Lock() // no rewrite, retention or Delete meanwhile
	defer l.adminMu.Unlock()
	l.mu.Lock()
	s := l.closedSegmentLocked(base)
	closed := l.closed
	l.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case s == nil || s.size != size:
		return fmt.Errorf("%w at %d of %d bytes", ErrNoSegment, base, size)
	}
	tmp := s.sidecarPath() + tmpSuffix
	if err := writeWhole(l.fs, tmp, encodeSidecar(size, data)); err != nil {
		l.removeQuietly(tmp)
		return err
	}
	if err := l.fs.Rename(tmp, s.sidecarPath()); err != nil {
		l.removeQuietly(tmp)
		return err
	}
	return l.fs.SyncDir(l.dir)
}

func encodeSidecar(size int64, data []byte) []byte {
	b := make([]byte, 0, sidecarHeader+len(data)+4)
	b = append(b, "SLSC"...)
	b = append(b, sidecarVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeSidecar checks a sidecar file's bytes and returns the owner's
// bytes and the segment size they were written for.
func decodeSidecar(b []byte) (data []byte, size int64, ok bool) {
	if len(b) < sidecarHeader+4 || string(b[:4]) != "SLSC" || b[4] != sidecarVersion {
		return nil, 0, false
	}
	n := binary.BigEndian.Uint32(b[13:])
	if uint64(n) != uint64(len(b)-sidecarHeader-4) {
		return nil, 0, false
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, 0, false
	}
	return body[sidecarHeader:], int64(binary.BigEndian.Uint64(b[5:])), true
}
