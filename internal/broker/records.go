package broker

// Records inside a stored RecordBatch v2: just enough decoding to tell
// where each record sits (offset) and when it was stamped (timestamp).
// Storage keeps batches whole and never looks inside them; a partition's
// timestamp lookups (Partition.OffsetForTimestamp, MaxTimestamp, which
// Kafka's ListOffsets asks) need record-level answers, so they decode the
// one batch they land on.
//
// The bytes were written by a producer, so nothing in them is trusted:
// every length is checked against what is left, a record must fill its
// length prefix exactly, and decompression stops at maxDecodedBatchBytes.
// A batch that would decompress past that (a "zip bomb", or merely an
// extreme ratio) is reported as errDecodedBatchTooLarge, never allocated.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/sluice-mq/sluice/internal/storage"
)

const (
	// maxDecodedBatchBytes caps the decompressed records of one batch.
	// It is fixed, not derived from max.message.bytes: that limit applies
	// to the compressed batch, can change after the batch was stored, and
	// any factor over it would be as arbitrary. 64 MiB is 64 times the
	// default max.message.bytes and 8 times storage's default largest
	// batch, so ordinary producer data fits; a batch over it is answered
	// at batch granularity (see partition_time.go), not decoded.
	maxDecodedBatchBytes = 64 << 20

	// zstdMaxWindow caps the window a zstd frame may ask the decoder to
	// allocate. 8 MiB is what the zstd format recommends every decoder
	// support, and covers every level up to 19.
	zstdMaxWindow = 8 << 20

	// decodeSlots is how many compressed batches are decompressed at once,
	// across all connections, so that the memory held by decoding is
	// bounded by decodeSlots × maxDecodedBatchBytes, not by the number of
	// concurrent timestamp lookups.
	decodeSlots = 2

	batchHeaderBytes  = 61   // fixed RecordBatch v2 header; records follow
	batchCodecMask    = 0x07 // attributes: compression codec
	batchLogAppendBit = 0x08 // attributes: timestamp type is LogAppendTime
)

var (
	// errDecodedBatchTooLarge: the batch's records decompress past the limit.
	errDecodedBatchTooLarge = errors.New("broker: decompressed record batch over the limit")

	decodeSem = make(chan struct{}, decodeSlots)

	// zstdDecoders holds synchronous stream decoders (concurrency 1 starts
	// no goroutines), reset onto each batch. Their output is read through
	// readBounded, so the window cap and the output cap bound their memory.
	zstdDecoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(maxDecodedBatchBytes),
		)
		if err != nil {
			panic(err) // only for invalid options, which are constant
		}
		return d
	}}

	// xerialMagic opens Xerial-framed snappy (the Java client's framing);
	// 8 bytes of version and compatible version follow it.
	xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}
)

// recordStamp is a record's place in the log and its timestamp.
type recordStamp struct {
	Offset    int64
	Timestamp int64
}

// eachBatchRecord decodes the RecordBatch v2 at the start of batch (bytes
// from storage.Log.Read; anything after the first batch is ignored) and
// calls fn with each record's offset (base offset + offset delta) and
// timestamp (first timestamp + timestamp delta, or the batch's max
// timestamp for a LogAppendTime batch), in stored order, until fn returns
// false. Compressed records are decompressed to at most limit bytes
// (maxDecodedBatchBytes in production).
//
// It never panics and allocates nothing for an uncompressed batch. An
// error (ErrCorruptBatch-wrapped for malformed bytes, or
// errDecodedBatchTooLarge) may come after fn has seen earlier records.
func eachBatchRecord(batch []byte, limit int, fn func(recordStamp) bool) error {
	h, err := storage.ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	if h.Length < batchHeaderBytes-12 || int64(h.Size()) > int64(len(batch)) {
		return corruptf("batch length %d in %d bytes", h.Length, len(batch))
	}
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 {
		return corruptf("last offset delta %d, record count %d", h.LastOffsetDelta, h.NumRecords)
	}
	recs := batch[batchHeaderBytes:h.Size()]
	if codec := h.Attributes & batchCodecMask; codec != 0 {
		if recs, err = decompress(codec, recs, limit); err != nil {
			return err
		}
	}
	logAppend := h.Attributes&batchLogAppendBit != 0
	r := recordReader{b: recs}
	for i := int32(0); i < h.NumRecords && r.err == nil; i++ {
		length := r.varint32()
		body := recordReader{b: r.take(length)}
		body.int8() // attributes: unused
		tsDelta := body.varint64()
		offDelta := body.varint32()
		body.skipBytes(true) // key
		body.skipBytes(true) // value
		for n := body.varint32(); n > 0 && body.err == nil; n-- {
			body.skipBytes(false) // header key
			body.skipBytes(true)  // header value
		}
		switch {
		case r.err != nil:
			return r.err
		case body.err != nil:
			return fmt.Errorf("record %d: %w", i, body.err)
		case len(body.b) != 0:
			return corruptf("record %d: %d bytes past its fields", i, len(body.b))
		case offDelta < 0 || offDelta > h.LastOffsetDelta:
			return corruptf("record %d: offset delta %d outside 0..%d", i, offDelta, h.LastOffsetDelta)
		}
		rs := recordStamp{Offset: h.BaseOffset + int64(offDelta), Timestamp: h.FirstTimestamp + tsDelta}
		if logAppend {
			rs.Timestamp = h.MaxTimestamp
		}
		if !fn(rs) {
			return nil
		}
	}
	switch {
	case r.err != nil:
		return r.err
	case len(r.b) != 0:
		return corruptf("%d bytes after %d records", len(r.b), h.NumRecords)
	}
	return nil
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", storage.ErrCorruptBatch, fmt.Sprintf(format, args...))
}

// recordReader reads the varint-framed fields of records from a
// length-checked slice. The first failure sticks: later reads return zero
// values, and err is checked once per record.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) fail(what string) {
	if r.err == nil {
		r.err = corruptf("%s", what)
	}
	r.b = nil
}

func (r *recordReader) int8() int8 {
	if r.err != nil || len(r.b) < 1 {
		r.fail("truncated record")
		return 0
	}
	v := int8(r.b[0])
	r.b = r.b[1:]
	return v
}

func (r *recordReader) varint64() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) varint32() int32 {
	v := r.varint64()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail("varint out of int32 range")
		return 0
	}
	return int32(v)
}

// take returns the next n bytes, failing on a negative n or too few bytes.
func (r *recordReader) take(n int32) []byte {
	if r.err != nil || n < 0 || int64(n) > int64(len(r.b)) {
		r.fail("length past the end of the records")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// skipBytes skips a varint-length-prefixed byte string; -1 is null.
func (r *recordReader) skipBytes(nullable bool) {
	n := r.varint32()
	if nullable && n == -1 {
		return
	}
	r.take(n)
}

// decompress returns the records of a batch compressed with codec (1 gzip,
// 2 snappy, 3 lz4, 4 zstd), failing with errDecodedBatchTooLarge once the
// output would pass limit. It holds one of decodeSlots while it runs.
func decompress(codec int16, src []byte, limit int) ([]byte, error) {
	decodeSem <- struct{}{}
	defer func() { <-decodeSem }()
	var (
		out []byte
		err error
	)
	switch codec {
	case 1:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(src)); err == nil {
			out, err = readBounded(zr, limit, len(src))
		}
	case 2:
		out, err = snappyDecode(src, limit)
	case 3:
		out, err = readBounded(lz4.NewReader(bytes.NewReader(src)), limit, len(src))
	case 4:
		zd := zstdDecoders.Get().(*zstd.Decoder)
		if err = zd.Reset(bytes.NewReader(src)); err == nil {
			out, err = readBounded(zd, limit, len(src))
		}
		zd.Reset(nil) // drop the reference to src before pooling
		zstdDecoders.Put(zd)
	default:
		return nil, corruptf("compression codec %d", codec)
	}
	if err != nil && !errors.Is(err, errDecodedBatchTooLarge) {
		err = corruptf("codec %d: %v", codec, err)
	}
	return out, err
}

// readBounded reads r to EOF into a buffer that never grows past limit+1
// bytes: reading that last byte means the output is over the limit.
func readBounded(r io.Reader, limit, srcLen int) ([]byte, error) {
	buf := make([]byte, 0, min(max(4*srcLen, 4096), limit+1))
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, errDecodedBatchTooLarge
			}
			grown := make([]byte, len(buf), min(2*cap(buf), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, errDecodedBatchTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// snappyDecode decodes Kafka's two snappy forms: one raw snappy block, or
// Xerial framing (magic, 8 bytes of versions, then chunks each a 4-byte
// big-endian length and a raw block). Each block's declared length is
// checked against what is left of limit before anything is allocated.
func snappyDecode(src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > limit {
			return nil, errDecodedBatchTooLarge
		}
		return snappy.Decode(make([]byte, n), src)
	}
	src = src[len(xerialMagic):]
	if len(src) < 8 {
		return nil, errors.New("xerial header truncated")
	}
	src = src[8:]
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errors.New("xerial chunk length truncated")
		}
		size := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(size) > uint64(len(src)) {
			return nil, fmt.Errorf("xerial chunk of %d bytes in %d", size, len(src))
		}
		chunk := src[:size]
		src = src[size:]
		n, err := snappy.DecodedLen(chunk)
		if err != nil {
			return nil, err
		}
		if n > limit-len(out) {
			return nil, errDecodedBatchTooLarge
		}
		if cap(out)-len(out) < n {
			grown := make([]byte, len(out), min(max(2*cap(out), len(out)+n), limit))
			copy(grown, out)
			out = grown
		}
		d, err := snappy.Decode(out[len(out):len(out)+n], chunk)
		if err != nil {
			return nil, err
		}
		out = append(out, d...) // d is out's own tail: this only extends out
	}
	return out, nil
}
