package storage

// This file holds the exported Log API. Bodies are placeholders to be
// replaced by the real implementation.

import "time"

// Log is one segmented append-only log (a Kafka partition or a queue).
// All methods are safe for concurrent use.
type Log struct{}

// Open opens (creating if needed) the log in dir, recovering its tail.
func Open(dir string, opts Options) (*Log, error) { panic("todo") }

// Append appends one or more concatenated RecordBatch v2 batches. Each batch
// must already be validated (ValidateBatches). Append rewrites each batch's
// BaseOffset in place to the assigned offset (CRC is unaffected) and copies
// the bytes; the caller may reuse b after Append returns. Offsets are
// assigned in call order, so two Appends from one goroutine land in order.
func (l *Log) Append(b []byte) (*Appended, error) { panic("todo") }

// Read returns whole batches starting at the batch that contains offset,
// up to maxBytes, but always at least one whole batch if any is available
// (even past maxBytes). It returns only data below the high watermark.
// Reading at the high watermark returns (nil, nil). Below StartOffset or
// above HighWatermark: ErrOffsetOutOfRange.
func (l *Log) Read(offset int64, maxBytes int) ([]byte, error) { panic("todo") }

// StartOffset is the first offset still readable.
func (l *Log) StartOffset() int64 { panic("todo") }

// HighWatermark is the offset after the last durable record (by the policy).
func (l *Log) HighWatermark() int64 { panic("todo") }

// Changed returns a channel closed the next time the high watermark moves
// (or the log closes). For long-poll fetches.
func (l *Log) Changed() <-chan struct{} { panic("todo") }

// OffsetForTimestamp returns the first offset whose batch max timestamp is
// >= ts, and that batch's max timestamp; ok=false if none.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	panic("todo")
}

// DeleteRecordsBefore moves the log start to offset (durably) and deletes
// segments wholly below it.
func (l *Log) DeleteRecordsBefore(offset int64) error { panic("todo") }

// EnforceRetention deletes whole oldest segments (never the active one)
// whose newest record is older than retention (<0: unlimited), or while the
// log is larger than retentionBytes (<0: unlimited). Returns segments deleted.
func (l *Log) EnforceRetention(retention time.Duration, retentionBytes int64) (int, error) {
	panic("todo")
}

// Roll closes the active segment (if non-empty) and starts a new one.
func (l *Log) Roll() error { panic("todo") }

// SetSegmentOptions changes roll thresholds at run time.
func (l *Log) SetSegmentOptions(segmentBytes int64, segmentAge time.Duration) { panic("todo") }

// Size is the total bytes in all segments.
func (l *Log) Size() int64 { panic("todo") }

// ScanHeaders calls fn for each batch header from the batch containing
// from to the high watermark, stopping if fn returns false. Used to rebuild
// producer state at start.
func (l *Log) ScanHeaders(from int64, fn func(BatchHeader) bool) error { panic("todo") }

// SegmentBaseOffsets lists base offsets of the segments, oldest first.
func (l *Log) SegmentBaseOffsets() []int64 { panic("todo") }

// Sync forces everything written to disk now.
func (l *Log) Sync() error { panic("todo") }

// Close flushes, fsyncs and closes the log. Pending appends complete.
func (l *Log) Close() error { panic("todo") }

// Delete closes the log and removes its directory.
func (l *Log) Delete() error { panic("todo") }

// ParseBatchHeader decodes the first 61 bytes of b.
func ParseBatchHeader(b []byte) (BatchHeader, error) { panic("todo") }

// ValidateBatches checks that b is one or more complete RecordBatch v2
// (magic 2) with valid CRC32C, each at most maxBatch bytes, records count
// consistent (NumRecords >= 1, LastOffsetDelta == NumRecords-1 for
// uncompressed, non-negative lengths), and returns their headers. It never
// panics and never allocates in proportion to untrusted lengths.
func ValidateBatches(b []byte, maxBatch int) ([]BatchHeader, error) { panic("todo") }

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
func OSFS() FS { panic("todo") }
