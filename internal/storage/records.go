package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Record is one record of an uncompressed RecordBatch v2, as the broker
// core stores messages it builds itself (AMQP messages). Key and Value may
// be nil (stored as null).
type Record struct {
	Key, Value []byte
	Headers    []RecordHeader
}

// RecordHeader is a record header; Value may be nil (null).
type RecordHeader struct {
	Key   string
	Value []byte
}

// ErrCompressedBatch: ReadRecords was handed a compressed batch. Batches the
// broker builds with BuildRecordBatch are never compressed.
var ErrCompressedBatch = errors.New("storage: compressed record batch")

// BuildRecordBatch returns one uncompressed RecordBatch v2 holding recs at
// offsets baseOffset, baseOffset+1, ..., each timestamped ts (ms), not
// idempotent, with its CRC set.
func BuildRecordBatch(baseOffset, ts int64, recs []Record) []byte {
	return AppendRecordBatch(nil, baseOffset, ts, recs)
}

// AppendRecordBatch is BuildRecordBatch into dst's spare capacity (a
// buffer the caller reuses): it appends the batch to dst[:0] and returns
// it, allocating only when dst is too small.
func AppendRecordBatch(dst []byte, baseOffset, ts int64, recs []Record) []byte {
	size := batchHeaderSize
	for i, r := range recs {
		n := recordBodySize(i, r)
		size += varintSize(int64(n)) + n
	}
	// At most one exact allocation: each record's body goes straight
	// into b.
	b := dst[:0]
	if cap(b) < size {
		b = make([]byte, 0, size)
	}
	b = b[:batchHeaderSize]
	for i, r := range recs {
		b = binary.AppendVarint(b, int64(recordBodySize(i, r)))
		b = append(b, 0)                     // attributes
		b = binary.AppendVarint(b, 0)        // timestamp delta
		b = binary.AppendVarint(b, int64(i)) // offset delta
		b = appendVarBytes(b, r.Key)
		b = appendVarBytes(b, r.Value)
		b = binary.AppendVarint(b, int64(len(r.Headers)))
		for _, h := range r.Headers {
			b = binary.AppendVarint(b, int64(len(h.Key)))
			b = append(b, h.Key...)
			b = appendVarBytes(b, h.Value)
		}
	}
	be := binary.BigEndian
	be.PutUint64(b[posBaseOffset:], uint64(baseOffset))
	be.PutUint32(b[posLength:], uint32(len(b)-batchLogOverhead))
	be.PutUint32(b[posLeaderEpoch:], 0xffffffff)
	b[posMagic] = 2
	be.PutUint16(b[posAttributes:], 0)
	be.PutUint32(b[posLastOffsetDelta:], uint32(int32(len(recs)-1)))
	be.PutUint64(b[posFirstTimestamp:], uint64(ts))
	be.PutUint64(b[posMaxTimestamp:], uint64(ts))
	be.PutUint64(b[posProducerID:], 0xffffffffffffffff)
	be.PutUint16(b[posProducerEpoch:], 0xffff)
	be.PutUint32(b[posBaseSequence:], 0xffffffff)
	be.PutUint32(b[posRecordCount:], uint32(len(recs)))
	be.PutUint32(b[posCRC:], batchCRC(b))
	return b
}

// recordBodySize is the encoded size of record r at offset delta i, after
// its length prefix, as BuildRecordBatch writes it.
func recordBodySize(i int, r Record) int {
	n := 1 + varintSize(0) + varintSize(int64(i)) + varBytesSize(r.Key) + varBytesSize(r.Value) +
		varintSize(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintSize(int64(len(h.Key))) + len(h.Key) + varBytesSize(h.Value)
	}
	return n
}

// varintSize is the size of x as a zigzag varint.
func varintSize(x int64) int {
	u := uint64(x<<1) ^ uint64(x>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func varBytesSize(v []byte) int {
	if v == nil {
		return varintSize(-1)
	}
	return varintSize(int64(len(v))) + len(v)
}

func appendVarBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

// ReadRecords decodes the uncompressed RecordBatch v2 at the start of b
// (anything after it is ignored) and calls fn for each record with its
// offset and timestamp (ms), until fn returns false. It returns the batch's
// size in bytes. The Record's slices alias b. Malformed bytes give an
// ErrCorruptBatch-wrapped error, never a panic.
func ReadRecords(b []byte, fn func(offset, ts int64, r Record) bool) (int, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return 0, err
	}
	if h.Length < minBatchLength || int64(h.Size()) > int64(len(b)) {
		return 0, fmt.Errorf("%w: batch length %d in %d bytes", ErrCorruptBatch, h.Length, len(b))
	}
	if h.Attributes&compressionMask != 0 {
		return 0, ErrCompressedBatch
	}
	rd := varReader{b: b[batchHeaderSize:h.Size()]}
	for i := int32(0); i < h.NumRecords; i++ {
		n := rd.varint()
		body := varReader{b: rd.take(n)}
		body.take(1)
		tsDelta := body.varint()
		offDelta := body.varint()
		var r Record
		r.Key = body.bytes()
		r.Value = body.bytes()
		nh := body.varint()
		if nh < 0 || nh > int64(len(body.b)) {
			body.err = true
		} else if nh > 0 {
			r.Headers = make([]RecordHeader, 0, nh) // at most one per byte left
		}
		for j := int64(0); j < nh && !body.err; j++ {
			k := body.take(body.varint())
			r.Headers = append(r.Headers, RecordHeader{Key: headerKey(k), Value: body.bytes()})
		}
		if rd.err || body.err || len(body.b) != 0 || offDelta < 0 || offDelta > int64(h.LastOffsetDelta) {
			return 0, fmt.Errorf("%w: record %d malformed", ErrCorruptBatch, i)
		}
		if !fn(h.BaseOffset+offDelta, h.FirstTimestamp+tsDelta, r) {
			break
		}
	}
	return h.Size(), nil
}

// wellKnownKeys holds header keys that recur in most records, so that
// ReadRecords hands out one shared string for each instead of allocating a
// copy per record. It is filled by RegisterHeaderKeys from package init
// functions and only read afterwards.
var wellKnownKeys = map[string]string{}

// RegisterHeaderKeys tells ReadRecords of header keys that recur, e.g. the
// ones the AMQP front end writes on every message. Call it only from an
// init function.
func RegisterHeaderKeys(keys ...string) {
	for _, k := range keys {
		wellKnownKeys[k] = k
	}
}

func headerKey(k []byte) string {
	if s, ok := wellKnownKeys[string(k)]; ok { // no allocation for the lookup
		return s
	}
	return string(k)
}

// varReader reads Kafka varints and varint-prefixed bytes with a sticky
// error.
type varReader struct {
	b   []byte
	err bool
}

func (r *varReader) varint() int64 {
	if r.err {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *varReader) take(n int64) []byte {
	if r.err || n < 0 || n > int64(len(r.b)) {
		r.err = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *varReader) bytes() []byte {
	n := r.varint()
	if n == -1 || r.err {
		return nil
	}
	return r.take(n)
}
