package broker

// How a partition stores what producers send, when the topic says so
// (compression.type other than producer, message.timestamp.type
// LogAppendTime). As Kafka does:
//
//   - a batch whose codec differs from the topic's is recompressed: its
//     records are decompressed (bounded by maxDecodedBatchBytes), checked
//     record by record, and compressed again with the topic's codec at
//     its level; the header keeps its offsets, producer id, epoch, base
//     sequence and timestamps, and gets the new codec, length and CRC;
//   - under LogAppendTime every batch is stamped: the timestamp-type
//     attribute bit set and MaxTimestamp made the append time, which a
//     consumer reads as every record's timestamp, and which the produce
//     response returns.
//
// A batch already in the topic's codec is stored as sent (only stamped
// under LogAppendTime). Failures are ErrCorruptMessage: the producer sent
// records that do not decode.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/sluice-mq/sluice/internal/storage"
)

// storedForm is how a topic stores batches.
type storedForm struct {
	codec         int16 // -1: as the producer sent it
	level         int   // the codec's level config
	logAppendTime bool
}

const (
	posAttributes   = 21
	posMaxTimestamp = 35
	posLength       = 8
	posCRC          = 17
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recompress returns batches in the topic's codec (batches itself when
// every batch already is). headers are batches' headers, as
// ValidateBatches returned them.
func (f *storedForm) recompress(batches []byte, headers []storage.BatchHeader) ([]byte, error) {
	if !slices.ContainsFunc(headers, func(h storage.BatchHeader) bool { return h.Attributes&batchCodecMask != f.codec }) {
		return batches, nil
	}
	out := make([]byte, 0, len(batches))
	pos := 0
	for _, h := range headers {
		batch := batches[pos : pos+int(h.Size())]
		pos += int(h.Size())
		src, dst := h.Attributes&batchCodecMask, f.codec
		if dst == src {
			out = append(out, batch...)
			continue
		}
		if h.LastOffsetDelta != h.NumRecords-1 {
			// Offsets with gaps only a log cleaner writes.
			return nil, fmt.Errorf("%w: last offset delta %d for %d records", ErrCorruptMessage, h.LastOffsetDelta, h.NumRecords)
		}
		recs := batch[batchHeaderBytes:]
		if src != 0 {
			var err error
			if recs, err = decompress(src, recs, maxDecodedBatchBytes); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCorruptMessage, err)
			}
		}
		start := len(out)
		out = append(out, batch[:batchHeaderBytes]...)
		out = append(out, recs...)
		b := out[start:]
		setAttributes(b, h.Attributes&^batchCodecMask)
		seal(b)
		// The records must decode before they are stored in a form no
		// longer the producer's.
		if err := eachBatchRecord(b, maxDecodedBatchBytes, func(recordStamp) bool { return true }); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorruptMessage, err)
		}
		if dst != 0 {
			packed, err := compress(dst, f.level, recs)
			if err != nil {
				return nil, err
			}
			out = append(out[:start+batchHeaderBytes], packed...)
			b = out[start:]
			setAttributes(b, h.Attributes&^batchCodecMask|dst)
			seal(b)
		}
	}
	return out, nil
}

// stamp returns a copy of batches (whole, valid batches) with every batch
// stamped LogAppendTime at: the timestamp-type attribute set and
// MaxTimestamp made at.
func stamp(batches []byte, at int64) []byte {
	out := bytes.Clone(batches)
	for b := out; len(b) >= batchHeaderBytes; {
		size := 12 + int(binary.BigEndian.Uint32(b[posLength:]))
		batch := b[:size]
		setAttributes(batch, int16(binary.BigEndian.Uint16(batch[posAttributes:]))|batchLogAppendBit)
		binary.BigEndian.PutUint64(batch[posMaxTimestamp:], uint64(at))
		seal(batch)
		b = b[size:]
	}
	return out
}

func setAttributes(b []byte, attr int16) { binary.BigEndian.PutUint16(b[posAttributes:], uint16(attr)) }

// seal sets a batch's length and CRC from its bytes.
func seal(b []byte) {
	binary.BigEndian.PutUint32(b[posLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[posCRC:], crc32.Checksum(b[posAttributes:], castagnoli))
}

// compress compresses records with codec (1 gzip, 2 snappy, 3 lz4, 4
// zstd) at level (the topic's compression.<codec>.level).
func compress(codec int16, level int, recs []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch codec {
	case 1:
		if level < -1 || level > 9 {
			return nil, fmt.Errorf("broker: gzip level %d", level)
		}
		pool := &gzipWriters[level+1]
		zw, _ := pool.Get().(*gzip.Writer)
		if zw == nil {
			var err error
			if zw, err = gzip.NewWriterLevel(&buf, level); err != nil {
				return nil, err
			}
		} else {
			zw.Reset(&buf)
		}
		if _, err := zw.Write(recs); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		zw.Reset(nil)
		pool.Put(zw)
	case 2:
		xerialFrame(&buf, recs)
	case 3:
		zw := lz4.NewWriter(&buf)
		lvl := lz4.Fast
		if level > 2 {
			lvl = lz4.CompressionLevel(1 << (8 + min(level, 9)))
		}
		if err := zw.Apply(lz4.CompressionLevelOption(lvl)); err != nil {
			return nil, err
		}
		if _, err := zw.Write(recs); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case 4:
		enc, err := zstdEncoder(level)
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(recs, nil), nil
	default:
		return nil, errors.New("broker: unknown codec")
	}
	return buf.Bytes(), nil
}

// xerialFrame writes Xerial-framed snappy, the form the Java client
// writes and every client reads: the magic, versions 1 and 1, then raw
// snappy blocks of up to 32 KiB of input, each after its 4-byte length.
func xerialFrame(buf *bytes.Buffer, src []byte) {
	buf.Write(xerialMagic)
	buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
	var n [4]byte
	for len(src) > 0 {
		chunk := src[:min(len(src), 32<<10)]
		src = src[len(chunk):]
		enc := snappy.Encode(nil, chunk)
		binary.BigEndian.PutUint32(n[:], uint32(len(enc)))
		buf.Write(n[:])
		buf.Write(enc)
	}
}

// gzipWriters pools gzip writers by level (-1 to 9 at index level+1): a
// writer costs about a megabyte to make.
var gzipWriters [11]sync.Pool

var zstdEncoders = struct {
	sync.Mutex
	byLevel map[int]*zstd.Encoder
}{byLevel: map[int]*zstd.Encoder{}}

// zstdEncoder returns the shared encoder of a level; EncodeAll may be
// called on it concurrently.
func zstdEncoder(level int) (*zstd.Encoder, error) {
	zstdEncoders.Lock()
	defer zstdEncoders.Unlock()
	if e, ok := zstdEncoders.byLevel[level]; ok {
		return e, nil
	}
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdMaxWindow))
	if err != nil {
		return nil, err
	}
	zstdEncoders.byLevel[level] = e
	return e, nil
}
