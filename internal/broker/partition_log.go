package broker

import (
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
)

// PartitionLog is the log a Partition is written against: an ordered
// sequence of RecordBatch v2 batches with contiguous offsets, a movable
// start, and a high watermark below which everything is durable. Today it
// is a segmented storage.Log (openDiskLog); a replicated log (its high
// watermark the commit index) is to implement the same interface.
//
// It is kept as narrow as the partition allows: the partition decides
// everything a front end sees (what is valid to append, which producer
// batches are duplicates, what is visible to which isolation level, how
// a timestamp maps to a record) and asks the log only for these. An
// implementation must be safe for concurrent use.
type PartitionLog interface {
	// Append assigns the next offsets to batches (one or more whole,
	// validated batches; their base offsets are rewritten) and starts
	// making them durable; durable completes when they are, or fails.
	// It keeps no reference to batches once it returns: the Kafka front
	// end reuses the request's memory for the next request.
	Append(batches []byte) (baseOffset int64, durable Pending, err error)
	// Read returns whole batches from the one holding offset, up to
	// maxBytes but at least one whole batch if any is there, and nil at
	// the end. It may return batches at or past HighWatermark: the
	// partition cuts what it does not show. Below StartOffset, or past
	// the end: an error matching storage.ErrOffsetOutOfRange.
	Read(offset int64, maxBytes int) ([]byte, error)
	// ScanHeaders calls fn with the header of each batch from the one
	// holding from (the start, if from is below it) until fn returns
	// false or the batches run out.
	ScanHeaders(from int64, fn func(storage.BatchHeader) bool) error
	// OffsetForTimestamp returns the base offset (or the start, if the
	// batch straddles it) of the first batch whose max timestamp is at
	// or after ts, and that max timestamp; ok is false if none is.
	OffsetForTimestamp(ts int64) (offset, maxTimestamp int64, ok bool, err error)

	// StartOffset is the first offset still held.
	StartOffset() int64
	// HighWatermark is the offset after the last durable batch.
	HighWatermark() int64
	// Changed returns a channel closed the next time HighWatermark moves
	// (or the log closes).
	Changed() <-chan struct{}
	// SegmentBaseOffsets are the first offsets of the log's segments, in
	// order: the partition scans the last ones to rebuild producer state
	// and to find the newest timestamps without reading the whole log.
	SegmentBaseOffsets() []int64
	// Size is the bytes the log holds.
	Size() int64

	// DeleteRecordsBefore durably moves the start up to offset (at most
	// HighWatermark) and drops the segments wholly below it.
	DeleteRecordsBefore(offset int64) error
	// EnforceRetention drops the oldest segments past the retention time
	// or size (<= 0: no limit) and returns how many it dropped.
	EnforceRetention(retention time.Duration, retentionBytes int64) (int, error)
	// SetSegmentOptions changes when segments roll (<= 0: the defaults).
	SetSegmentOptions(segmentBytes int64, segmentAge time.Duration)

	// Failed returns why the log refuses appends (a failed write or
	// fsync stays failed), nil if it does not.
	Failed() error
	// Recover reopens a failed log from what is durable.
	Recover() error
	// Close flushes and closes the log; Delete closes it and removes its
	// data.
	Close() error
	Delete() error
}

// Pending is an append on its way to durability.
type Pending interface {
	// Done is closed when Wait would not block.
	Done() <-chan struct{}
	// Wait blocks until the append is durable and returns why it is not,
	// if it failed. A failed append is never reported durable.
	Wait() error
}

// diskLog is a storage.Log as a PartitionLog.
type diskLog struct{ *storage.Log }

// openDiskLog opens (creating or recovering) the segmented log in dir as
// a PartitionLog.
func openDiskLog(dir string, opts storage.Options) (PartitionLog, error) {
	l, err := storage.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	return diskLog{l}, nil
}

func (d diskLog) Append(batches []byte) (int64, Pending, error) {
	ap, err := d.Log.Append(batches)
	if err != nil {
		return 0, nil, err
	}
	return ap.BaseOffset, ap, nil
}
