package kafka

// ListOffsets, versions 1-8.
//
// Timestamp -1 is the latest offset (the high watermark), -2 and -4 the
// earliest (the log start; there is no tiered storage, so earliest-local
// is the same). Isolation level is ignored: without transactions the last
// stable offset is the high watermark.
//
// Any other timestamp answers the first record at or above the log start
// whose timestamp is at or after it, with that record's offset and
// timestamp, as Kafka does. The time index finds the first batch whose
// max timestamp is that new; that batch is read and decoded (records.go)
// to find the record. If none of its records qualify (they sit below the
// log start, or the batch header's max timestamp disagrees with its
// records) the search moves on to the next such batch, up to
// maxTimestampBatches batches. When no record is that new the answer is
// offset -1, timestamp -1, as Kafka does.
//
// -3 (v7+) is the first record holding the largest timestamp: the batch
// with the largest max timestamp in the active segment (records are
// normally timestamped in order, so the newest segment holds it), decoded
// to find the record.
//
// Where a batch cannot be decoded — it decompresses past
// maxDecodedBatchBytes, or its compressed records are malformed (storage
// checks the batch CRC, not what is inside) — the answer falls back to
// batch granularity: the batch's first offset (at or above the log start)
// for a target timestamp, its last offset for -3, with the batch's max
// timestamp. A consumer seeking by time then sees a few older records
// first, never misses one.

import (
	"errors"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxTimestampBatches bounds how many batches one timestamp lookup
// decodes before settling for a batch-granular answer.
const maxTimestampBatches = 8

func handleListOffsets(c *conn, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, topicOK := c.s.broker.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset = -1, -1
			if !topicOK || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				sp.ErrorCode = listOffset(t.Partitions[rp.Partition], rp.Timestamp, &sp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func listOffset(p *broker.Partition, ts int64, sp *kmsg.ListOffsetsResponseTopicPartition) int16 {
	var (
		rec recordStamp
		ok  bool
		err error
	)
	switch ts {
	case -1:
		sp.Offset = p.Log.HighWatermark()
		return 0
	case -2, -4:
		sp.Offset = p.Log.StartOffset()
		return 0
	case -3:
		rec, ok, err = maxTimestampRecord(p)
	default:
		rec, ok, err = recordForTimestamp(p.Log, ts)
	}
	if err != nil {
		return kerr.KafkaStorageError.Code
	}
	if ok {
		sp.Offset, sp.Timestamp = rec.Offset, rec.Timestamp
	}
	return 0
}

// recordForTimestamp finds the first record at or above the log start
// with a timestamp at or after ts.
func recordForTimestamp(l *storage.Log, ts int64) (recordStamp, bool, error) {
	off, bts, ok, err := l.OffsetForTimestamp(ts)
	if err != nil || !ok {
		return recordStamp{}, false, err
	}
	// off is the first offset of a batch whose max timestamp is >= ts, or
	// the log start inside it; bts is that max timestamp.
	for range maxTimestampBatches {
		batch, h, err := readBatch(l, off)
		if err != nil {
			return recordStamp{}, false, err
		}
		if batch == nil { // the log start moved past it meanwhile
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

// maxTimestampRecord finds the first record holding the largest timestamp.
func maxTimestampRecord(p *broker.Partition) (recordStamp, bool, error) {
	last, mts, ok, err := p.MaxTimestamp()
	if err != nil || !ok {
		return recordStamp{}, false, err
	}
	batchAnswer := recordStamp{Offset: last, Timestamp: mts}
	batch, _, err := readBatch(p.Log, last)
	if err != nil || batch == nil {
		return batchAnswer, err == nil, err
	}
	start := p.Log.StartOffset()
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

// readBatch reads the one batch holding off. A nil batch and nil error
// mean there is nothing there any more: retention or DeleteRecords moved
// the log start past it, or it is at the high watermark.
func readBatch(l *storage.Log, off int64) ([]byte, storage.BatchHeader, error) {
	batch, err := l.Read(off, 1) // Read returns at least one whole batch
	if errors.Is(err, storage.ErrOffsetOutOfRange) || len(batch) == 0 {
		return nil, storage.BatchHeader{}, nil
	}
	if err != nil {
		return nil, storage.BatchHeader{}, err
	}
	h, err := storage.ParseBatchHeader(batch)
	return batch, h, err
}
