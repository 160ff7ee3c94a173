package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// RecordBatch v2 layout (big-endian), byte positions of the fixed header.
const (
	batchHeaderSize  = 61                                 // fixed header, records follow
	batchLogOverhead = 12                                 // BaseOffset + Length: bytes not counted by Length
	minBatchLength   = batchHeaderSize - batchLogOverhead // smallest legal Length (49)

	posBaseOffset      = 0
	posLength          = 8
	posLeaderEpoch     = 12
	posMagic           = 16
	posCRC             = 17
	posAttributes      = 21 // CRC covers from here to the end of the batch
	posLastOffsetDelta = 23
	posFirstTimestamp  = 27
	posMaxTimestamp    = 35
	posProducerID      = 43
	posProducerEpoch   = 51
	posBaseSequence    = 53
	posRecordCount     = 57

	compressionMask = 0x07
	maxCodec        = 4 // zstd
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ParseBatchHeader decodes the first 61 bytes of b. It fails with
// ErrCorruptBatch when b is shorter than a header or the magic byte is not
// 2 (the layout below only holds for v2). It checks nothing else.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < batchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrCorruptBatch, len(b), batchHeaderSize)
	}
	h := parseHeader(b)
	if h.Magic != 2 {
		return BatchHeader{}, fmt.Errorf("%w: magic %d", ErrCorruptBatch, h.Magic)
	}
	return h, nil
}

// parseHeader decodes a header from b, which holds at least 61 bytes.
func parseHeader(b []byte) BatchHeader {
	_ = b[batchHeaderSize-1]
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[posBaseOffset:])),
		Length:               int32(be.Uint32(b[posLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[posLeaderEpoch:])),
		Magic:                int8(b[posMagic]),
		CRC:                  be.Uint32(b[posCRC:]),
		Attributes:           int16(be.Uint16(b[posAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[posLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[posFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[posMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[posProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[posProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[posBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[posRecordCount:])),
	}
}

// checkFraming checks what every stored batch must satisfy, whoever wrote
// it: a sane length that fits in avail bytes, magic 2, non-negative counts.
// It does not look at the CRC.
func checkFraming(h BatchHeader, avail int64) error {
	switch {
	case h.Length < minBatchLength:
		return fmt.Errorf("%w: batch length %d", ErrCorruptBatch, h.Length)
	case int64(h.Length)+batchLogOverhead > avail:
		return fmt.Errorf("%w: batch of %d bytes truncated to %d", ErrCorruptBatch, int64(h.Length)+batchLogOverhead, avail)
	case h.Magic != 2:
		return fmt.Errorf("%w: magic %d", ErrCorruptBatch, h.Magic)
	case h.LastOffsetDelta < 0:
		return fmt.Errorf("%w: last offset delta %d", ErrCorruptBatch, h.LastOffsetDelta)
	case h.NumRecords < 0:
		return fmt.Errorf("%w: record count %d", ErrCorruptBatch, h.NumRecords)
	}
	return nil
}

// batchCRC is the checksum a batch's CRC field must hold.
func batchCRC(batch []byte) uint32 { return crc32.Checksum(batch[posAttributes:], castagnoli) }

// ValidateBatches checks that b is one or more complete RecordBatch v2
// (magic 2) with valid CRC32C, each at most maxBatch bytes, records count
// consistent (NumRecords >= 1, LastOffsetDelta == NumRecords-1 for
// uncompressed, non-negative lengths), and returns their headers. It never
// panics and never allocates in proportion to untrusted lengths.
//
// A batch over maxBatch fails with ErrBatchTooLarge, anything else with
// ErrCorruptBatch. maxBatch <= 0 means no limit beyond len(b).
func ValidateBatches(b []byte, maxBatch int) ([]BatchHeader, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: no batches", ErrCorruptBatch)
	}
	var hs []BatchHeader // at most len(b)/61 entries: bounded by the input itself
	for pos, i := 0, 0; pos < len(b); i++ {
		rest := b[pos:]
		if len(rest) < batchHeaderSize {
			return nil, fmt.Errorf("%w: batch %d: %d trailing bytes", ErrCorruptBatch, i, len(rest))
		}
		h := parseHeader(rest)
		size := int64(h.Length) + batchLogOverhead
		if maxBatch > 0 && size > int64(maxBatch) {
			return nil, fmt.Errorf("%w: batch %d is %d bytes, limit %d", ErrBatchTooLarge, i, size, maxBatch)
		}
		if err := checkFraming(h, int64(len(rest))); err != nil {
			return nil, fmt.Errorf("batch %d: %w", i, err)
		}
		batch := rest[:size]
		if got := batchCRC(batch); got != h.CRC {
			return nil, fmt.Errorf("%w: batch %d: crc %08x, computed %08x", ErrCorruptBatch, i, h.CRC, got)
		}
		codec := h.Attributes & compressionMask
		switch {
		case codec > maxCodec:
			return nil, fmt.Errorf("%w: batch %d: compression codec %d", ErrCorruptBatch, i, codec)
		case h.NumRecords < 1:
			return nil, fmt.Errorf("%w: batch %d: record count %d", ErrCorruptBatch, i, h.NumRecords)
		case codec == 0 && h.LastOffsetDelta != h.NumRecords-1:
			return nil, fmt.Errorf("%w: batch %d: last offset delta %d for %d records", ErrCorruptBatch, i, h.LastOffsetDelta, h.NumRecords)
		case codec == 0 && int64(h.NumRecords) > int64(h.Length-minBatchLength):
			// Every uncompressed record takes at least one byte.
			return nil, fmt.Errorf("%w: batch %d: %d records in %d bytes", ErrCorruptBatch, i, h.NumRecords, h.Length-minBatchLength)
		}
		hs = append(hs, h)
		pos += int(size)
	}
	return hs, nil
}

// BuildBatch returns one uncompressed RecordBatch v2 holding records as
// record values (null keys, no headers), every record timestamped ts (ms),
// with offsets baseOffset, baseOffset+1, ... . Producer id, epoch and base
// sequence are -1 (not idempotent), partition leader epoch -1. The CRC is
// set, so the result passes ValidateBatches when records is not empty.
//
// It is what the storage tests use, and what other packages' tests and the
// AMQP side can use to store plain messages.
func BuildBatch(baseOffset int64, ts int64, records [][]byte) []byte {
	recs := make([]Record, len(records))
	for i, v := range records {
		recs[i].Value = v
		if v == nil {
			recs[i].Value = []byte{}
		}
	}
	return BuildRecordBatch(baseOffset, ts, recs)
}
