package broker

import (
	"encoding/binary"
	"fmt"

	"github.com/sluice-mq/sluice/internal/storage"
)

// The cleaner's view of a batch: its records one by one, each with its
// raw bytes (length prefix included), so that a cleaned batch is the kept
// records copied verbatim behind the original header. A record's offset
// and timestamp deltas are relative to the header's base offset and
// first timestamp, which a cleaned batch keeps, so the copies stay right.

const (
	controlBit = 0x20 // batch attributes: a control batch (transaction marker)
)

// cleanRecord is one record of a batch as the cleaner sees it.
type cleanRecord struct {
	raw       []byte // the whole record, length prefix included
	offset    int64
	key       []byte
	keyNull   bool
	valueNull bool // a tombstone
}

// batchRecords decodes the records of the RecordBatch v2 batch (one whole
// batch, header h), decompressed to at most maxDecodedBatchBytes, and
// calls fn with each. The slices fn gets are only valid during the call.
func batchRecords(h storage.BatchHeader, batch []byte, fn func(cleanRecord)) error {
	if h.Size() != len(batch) || h.NumRecords < 0 || h.LastOffsetDelta < 0 {
		return corruptf("batch at %d: %d bytes, %d records", h.BaseOffset, len(batch), h.NumRecords)
	}
	recs := batch[batchHeaderBytes:]
	if codec := h.Attributes & batchCodecMask; codec != 0 && h.NumRecords > 0 {
		var err error
		if recs, err = decompress(codec, recs, maxDecodedBatchBytes); err != nil {
			return err
		}
	}
	r := recordReader{b: recs}
	for i := int32(0); i < h.NumRecords; i++ {
		whole := r.b
		length := r.varint32()
		body := r.take(length)
		if r.err != nil {
			return fmt.Errorf("batch at %d record %d: %w", h.BaseOffset, i, r.err)
		}
		raw := whole[:len(whole)-len(r.b)]
		br := recordReader{b: body}
		br.int8()     // attributes
		br.varint64() // timestamp delta
		offDelta := br.varint32()
		rec := cleanRecord{raw: raw, offset: h.BaseOffset + int64(offDelta)}
		if n := br.varint32(); n < 0 {
			rec.keyNull = true
		} else {
			rec.key = br.take(n)
		}
		rec.valueNull = br.varint32() < 0
		if br.err != nil {
			return fmt.Errorf("batch at %d record %d: %w", h.BaseOffset, i, br.err)
		}
		if offDelta < 0 || offDelta > h.LastOffsetDelta {
			return corruptf("batch at %d record %d: offset delta %d outside 0..%d", h.BaseOffset, i, offDelta, h.LastOffsetDelta)
		}
		fn(rec)
	}
	if len(r.b) != 0 {
		return corruptf("batch at %d: %d bytes after %d records", h.BaseOffset, len(r.b), h.NumRecords)
	}
	return nil
}

// controlType returns the type of the marker in a control batch: 0 abort,
// 1 commit (the second int16 of the first record's key), or -1 when the
// batch holds no readable marker.
func controlType(h storage.BatchHeader, batch []byte) int16 {
	t := int16(-1)
	_ = batchRecords(h, batch, func(r cleanRecord) {
		if t == -1 && len(r.key) >= 4 {
			t = int16(binary.BigEndian.Uint16(r.key[2:]))
		}
	})
	return t
}

// rebuildBatch returns a copy of the batch (header h) holding only the
// records kept (their raw bytes, in order): the header keeps its base
// offset, last offset delta, timestamps, producer id, epoch and base
// sequence, so offsets and producer state are unchanged; the records are
// compressed again with the batch's codec at level. With no record kept
// the result is the bare header with a record count of 0 (Kafka's empty
// batch, kept to remember a producer's last sequence).
func rebuildBatch(h storage.BatchHeader, batch []byte, kept [][]byte, level int) ([]byte, error) {
	var recs []byte
	for _, r := range kept {
		recs = append(recs, r...)
	}
	codec := h.Attributes & batchCodecMask
	attrs := h.Attributes
	if len(kept) == 0 {
		attrs &^= batchCodecMask
	} else if codec != 0 {
		packed, err := compress(codec, level, recs)
		if err != nil {
			return nil, err
		}
		recs = packed
	}
	out := make([]byte, 0, batchHeaderBytes+len(recs))
	out = append(out, batch[:batchHeaderBytes]...)
	out = append(out, recs...)
	binary.BigEndian.PutUint32(out[57:], uint32(len(kept))) // record count
	setAttributes(out, attrs)
	seal(out)
	return out, nil
}

// defaultCodecLevel is the level the cleaner recompresses a codec with
// when it is not the topic's own (whose level config then applies).
func defaultCodecLevel(codec int16) int {
	switch codec {
	case 1:
		return -1
	case 3:
		return 9
	case 4:
		return 3
	}
	return 0
}
