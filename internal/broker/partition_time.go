package broker

// Timestamp lookups, record-level.
//
// OffsetForTimestamp answers the first record at or above the log start
// whose timestamp is at or after a target, with that record's offset and
// timestamp. The log's time index finds the first batch whose max
// timestamp is that new; that batch is read and decoded (records.go) to
// find the record. If none of its records qualify (they sit below the log
// start, or the batch header's max timestamp disagrees with its records)
// the search moves on to the next such batch, up to maxTimestampBatches
// batches.
//
// MaxTimestamp answers the first record holding the largest timestamp:
// the batch with the largest max timestamp in the active segment (records
// are normally timestamped in order, so the newest segment holds it),
// decoded to find the record.
//
// Where a batch cannot be decoded — it decompresses past
// maxDecodedBatchBytes, or its compressed records are malformed (storage
// checks the batch CRC, not what is inside) — the answer falls back to
// batch granularity: the batch's first offset (at or above the log start)
// for a target timestamp, its last offset for the maximum, with the
// batch's max timestamp. A consumer seeking by time then sees a few older
// records first, never misses one.
//
// Both see only what a read sees: records below the high watermark.

import (
	"errors"

	"github.com/sluice-mq/sluice/internal/storage"
)

// maxTimestampBatches bounds how many batches one timestamp lookup
// decodes before settling for a batch-granular answer.
const maxTimestampBatches = 8

// OffsetForTimestamp returns the offset and timestamp of the first record
// at or above the log start, below the high watermark, stamped at or
// after ts; ok is false when there is none.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	rec, ok, err := p.recordForTimestamp(ts)
	if err != nil || !ok {
		return -1, -1, false, coreError(err)
	}
	return rec.Offset, rec.Timestamp, true, nil
}

func (p *Partition) recordForTimestamp(ts int64) (recordStamp, bool, error) {
	l := p.log
	off, bts, ok, err := l.OffsetForTimestamp(ts)
	if err != nil || !ok {
		return recordStamp{}, false, err
	}
	// off is the first offset of a batch whose max timestamp is >= ts, or
	// the log start inside it; bts is that max timestamp.
	for range maxTimestampBatches {
		batch, h, err := p.readBatch(off)
		if err != nil {
			return recordStamp{}, false, err
		}
		if batch == nil { // the log start moved past it, or it is not visible
			if off >= l.HighWatermark() {
				return recordStamp{}, false, nil
			}
			return recordStamp{Offset: max(off, l.StartOffset()), Timestamp: bts}, true, nil
		}
		var hit recordStamp
		found := false
		err = eachBatchRecord(batch, maxDecodedBatchBytes, func(r recordStamp) bool {
			if r.Offset >= off && r.Timestamp >= ts {
				hit, found = r, true
			}
			return !found
		})
		if err != nil {
			return recordStamp{Offset: off, Timestamp: bts}, true, nil // batch granularity
		}
		if found {
			return hit, true, nil
		}
		// Nothing at or after ts from off on: the next batch that claims one.
		found = false
		err = l.ScanHeaders(h.LastOffset()+1, func(n storage.BatchHeader) bool {
			if n.MaxTimestamp >= ts {
				off, bts, found = n.BaseOffset, n.MaxTimestamp, true
			}
			return !found
		})
		if err != nil || !found {
			return recordStamp{}, false, err
		}
	}
	return recordStamp{Offset: off, Timestamp: bts}, true, nil
}

// MaxTimestamp returns the offset and timestamp of the first record
// holding the largest timestamp among the visible records of the active
// segment; ok is false when there is none.
func (p *Partition) MaxTimestamp() (offset, timestamp int64, ok bool, err error) {
	rec, ok, err := p.maxTimestampRecord()
	if err != nil || !ok {
		return -1, -1, false, coreError(err)
	}
	return rec.Offset, rec.Timestamp, true, nil
}

func (p *Partition) maxTimestampRecord() (recordStamp, bool, error) {
	l := p.log
	bases := l.SegmentBaseOffsets()
	if len(bases) == 0 {
		return recordStamp{}, false, nil
	}
	from, hw := max(bases[len(bases)-1], l.StartOffset()), l.HighWatermark()
	var (
		batchAnswer recordStamp
		found       bool
	)
	batchAnswer.Timestamp = -1
	err := l.ScanHeaders(from, func(h storage.BatchHeader) bool {
		if h.LastOffset() >= hw {
			return false
		}
		if h.MaxTimestamp > batchAnswer.Timestamp {
			batchAnswer, found = recordStamp{Offset: h.LastOffset(), Timestamp: h.MaxTimestamp}, true
		}
		return true
	})
	if err != nil || !found {
		return recordStamp{}, false, err
	}
	batch, _, err := p.readBatch(batchAnswer.Offset)
	if err != nil || batch == nil {
		return batchAnswer, err == nil, err
	}
	start := l.StartOffset()
	best, found := recordStamp{Timestamp: -1}, false
	err = eachBatchRecord(batch, maxDecodedBatchBytes, func(r recordStamp) bool {
		if r.Offset >= start && (!found || r.Timestamp > best.Timestamp) {
			best, found = r, true
		}
		return true
	})
	if err != nil || !found {
		return batchAnswer, true, nil
	}
	return best, true, nil
}

// readBatch reads the one visible batch holding off. A nil batch and nil
// error mean there is nothing there any more (retention or DeleteRecords
// moved the log start past it) or not yet (it is at or past the high
// watermark).
func (p *Partition) readBatch(off int64) ([]byte, storage.BatchHeader, error) {
	l := p.log
	hw := l.HighWatermark()
	if off >= hw {
		return nil, storage.BatchHeader{}, nil
	}
	batch, err := l.Read(off, 1) // Read returns at least one whole batch
	if errors.Is(err, storage.ErrOffsetOutOfRange) || len(batch) == 0 {
		return nil, storage.BatchHeader{}, nil
	}
	if err != nil {
		return nil, storage.BatchHeader{}, err
	}
	h, err := storage.ParseBatchHeader(batch)
	if err == nil && h.LastOffset() >= hw {
		return nil, storage.BatchHeader{}, nil
	}
	return batch, h, err
}
