package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"slices"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testRecord is one record to encode by hand, field by field.
type testRecord struct {
	tsDelta    int64
	offDelta   int32
	key, value []byte // nil encodes as null (-1)
	headers    [][2][]byte
}

func appendTestRecord(dst []byte, r testRecord) []byte {
	var body []byte
	body = append(body, 0) // attributes
	body = binary.AppendVarint(body, r.tsDelta)
	body = binary.AppendVarint(body, int64(r.offDelta))
	appendBytes := func(b []byte) {
		if b == nil {
			body = binary.AppendVarint(body, -1)
			return
		}
		body = binary.AppendVarint(body, int64(len(b)))
		body = append(body, b...)
	}
	appendBytes(r.key)
	appendBytes(r.value)
	body = binary.AppendVarint(body, int64(len(r.headers)))
	for _, h := range r.headers {
		appendBytes(h[0])
		appendBytes(h[1])
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

// recordsFor encodes one record per timestamp, offset deltas 0, 1, ...,
// with a mix of null and non-null keys, values of varying size, headers.
func recordsFor(firstTs int64, tss []int64) []byte {
	var b []byte
	for i, ts := range tss {
		r := testRecord{tsDelta: ts - firstTs, offDelta: int32(i), value: bytes.Repeat([]byte{byte('a' + i%26)}, 10+i*7%300)}
		if i%5 != 0 {
			r.key = []byte(fmt.Sprintf("key-%d", i))
		}
		for h := range i % 3 {
			r.headers = append(r.headers, [2][]byte{[]byte(fmt.Sprintf("h%d", h)), nil})
			if h == 1 {
				r.headers[h][1] = []byte("header value")
			}
		}
		b = appendTestRecord(b, r)
	}
	return b
}

// assembleBatch wraps already-encoded (and possibly compressed) records in
// a RecordBatch v2 header with a valid CRC.
func assembleBatch(base int64, attrs int16, firstTs, maxTs int64, n, lastDelta int32, recs []byte) []byte {
	b := make([]byte, batchHeaderBytes, batchHeaderBytes+len(recs))
	be := binary.BigEndian
	be.PutUint64(b[0:], uint64(base))
	be.PutUint32(b[8:], uint32(batchHeaderBytes-12+len(recs)))
	be.PutUint32(b[12:], 0)
	b[16] = 2
	be.PutUint16(b[21:], uint16(attrs))
	be.PutUint32(b[23:], uint32(lastDelta))
	be.PutUint64(b[27:], uint64(firstTs))
	be.PutUint64(b[35:], uint64(maxTs))
	be.PutUint64(b[43:], ^uint64(0))
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], ^uint32(0))
	be.PutUint32(b[57:], uint32(n))
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// makeBatch builds a batch at base holding one record per timestamp,
// compressed with c.
func makeBatch(t testing.TB, c testCodec, logAppend bool, base int64, tss []int64) []byte {
	t.Helper()
	attrs := c.codec
	if logAppend {
		attrs |= batchLogAppendBit
	}
	return assembleBatch(base, attrs, tss[0], slices.Max(tss), int32(len(tss)), int32(len(tss)-1), c.compress(t, recordsFor(tss[0], tss)))
}

type testCodec struct {
	name     string
	codec    int16
	compress func(testing.TB, []byte) []byte
}

var testCodecs = []testCodec{
	{"none", 0, func(_ testing.TB, b []byte) []byte { return b }},
	{"gzip", 1, func(t testing.TB, b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}},
	{"snappy", 2, func(_ testing.TB, b []byte) []byte { return snappy.Encode(nil, b) }},
	{"snappy-xerial", 2, func(_ testing.TB, b []byte) []byte { return xerialEncode(b, 1000) }},
	{"lz4", 3, func(t testing.TB, b []byte) []byte {
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}},
	{"zstd", 4, func(t testing.TB, b []byte) []byte {
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(b, nil)
	}},
}

// xerialEncode frames b the way the Java client's snappy stream does:
// magic, version 1, compatible version 1, then chunks of at most chunk
// bytes, each a big-endian length and a raw snappy block.
func xerialEncode(b []byte, chunk int) []byte {
	out := append([]byte(nil), xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(b) > 0 {
		n := min(chunk, len(b))
		block := snappy.Encode(nil, b[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		b = b[n:]
	}
	return out
}

// decodeAll collects every record of batch.
func decodeAll(batch []byte, limit int) ([]recordStamp, error) {
	var got []recordStamp
	err := eachBatchRecord(batch, limit, func(r recordStamp) bool { got = append(got, r); return true })
	return got, err
}

func TestEachBatchRecordEveryCodec(t *testing.T) {
	tss := []int64{1000, 1000, 1005, 1003, 1010, 990, 1020} // not in order: deltas may be negative
	for i := 7; i < 60; i++ {
		tss = append(tss, 1020+int64(i))
	}
	for _, c := range testCodecs {
		for _, logAppend := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/logAppend=%v", c.name, logAppend), func(t *testing.T) {
				batch := makeBatch(t, c, logAppend, 500, tss)
				got, err := decodeAll(append(batch, "next batch"...), maxDecodedBatchBytes)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tss) {
					t.Fatalf("%d records, want %d", len(got), len(tss))
				}
				for i, r := range got {
					want := recordStamp{Offset: 500 + int64(i), Timestamp: tss[i]}
					if logAppend {
						want.Timestamp = slices.Max(tss)
					}
					if r != want {
						t.Errorf("record %d = %+v, want %+v", i, r, want)
					}
				}
			})
		}
	}
}

func TestEachBatchRecordStopsWhenAsked(t *testing.T) {
	batch := makeBatch(t, testCodecs[0], false, 0, []int64{1, 2, 3, 4, 5})
	n := 0
	if err := eachBatchRecord(batch, maxDecodedBatchBytes, func(recordStamp) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Fatalf("saw %d records, err %v; want 3, nil", n, err)
	}
}

// An uncompressed batch is decoded in place.
func TestEachBatchRecordUncompressedAllocatesNothing(t *testing.T) {
	batch := makeBatch(t, testCodecs[0], false, 0, []int64{1, 2, 3, 4, 5})
	n := 0
	allocs := testing.AllocsPerRun(10, func() {
		if err := eachBatchRecord(batch, maxDecodedBatchBytes, func(recordStamp) bool { n++; return true }); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || n != 55 {
		t.Fatalf("%v allocations, %d records seen", allocs, n)
	}
}

// TestEachBatchRecordLimitIsExact: a batch decompressing to exactly the
// limit decodes; one byte less fails with errDecodedBatchTooLarge.
func TestEachBatchRecordLimitIsExact(t *testing.T) {
	tss := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	size := len(recordsFor(1, tss))
	for _, c := range testCodecs[1:] {
		t.Run(c.name, func(t *testing.T) {
			batch := makeBatch(t, c, false, 0, tss)
			if got, err := decodeAll(batch, size); err != nil || len(got) != len(tss) {
				t.Fatalf("limit %d = size: %d records, %v", size, len(got), err)
			}
			if _, err := decodeAll(batch, size-1); !errors.Is(err, errDecodedBatchTooLarge) {
				t.Fatalf("limit %d < size %d: %v, want errDecodedBatchTooLarge", size-1, size, err)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bomb compresses n zero bytes with codec into a batch claiming one record.
func bomb(t testing.TB, codec string, n int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var id int16
	switch codec {
	case "gzip":
		w, id = gzip.NewWriter(&buf), 1
	case "lz4":
		w, id = lz4.NewWriter(&buf), 3
	case "zstd":
		enc, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		w, id = enc, 4
	case "snappy", "snappy-xerial":
		zero := make([]byte, n)
		if codec == "snappy" {
			return assembleBatch(0, 2, 0, 0, 1, 0, snappy.Encode(nil, zero))
		}
		return assembleBatch(0, 2, 0, 0, 1, 0, xerialEncode(zero, 32<<10))
	}
	if _, err := io.CopyN(w, zeros{}, n); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return assembleBatch(0, id, 0, 0, 1, 0, buf.Bytes())
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestEachBatchRecordBombs: a batch that decompresses far past the limit
// fails with errDecodedBatchTooLarge having allocated about the limit
// (plus the codec's own buffers), not the bomb's size.
func TestEachBatchRecordBombs(t *testing.T) {
	const limit = 1 << 20
	for _, codec := range []string{"gzip", "snappy", "snappy-xerial", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			b := bomb(t, codec, 64<<20)
			var err error
			n := allocated(func() { _, err = decodeAll(b, limit) })
			if !errors.Is(err, errDecodedBatchTooLarge) {
				t.Fatalf("%d-byte bomb: %v, want errDecodedBatchTooLarge", len(b), err)
			}
			// lz4 takes a 4 MiB block buffer; readBounded doubles up to limit.
			if n > 3*limit+8<<20 {
				t.Fatalf("allocated %d bytes decoding a bomb with limit %d", n, limit)
			}
		})
	}
	// At the production limit, with a bomb four times over it.
	for _, codec := range []string{"gzip", "zstd"} {
		t.Run(codec+"/production limit", func(t *testing.T) {
			if testing.Short() {
				t.Skip("builds a 256 MiB bomb")
			}
			b := bomb(t, codec, 4*maxDecodedBatchBytes)
			var err error
			n := allocated(func() { _, err = decodeAll(b, maxDecodedBatchBytes) })
			if !errors.Is(err, errDecodedBatchTooLarge) {
				t.Fatalf("%d-byte bomb: %v, want errDecodedBatchTooLarge", len(b), err)
			}
			if n > 3*maxDecodedBatchBytes {
				t.Fatalf("allocated %d bytes decoding a bomb with limit %d", n, maxDecodedBatchBytes)
			}
		})
	}
}

// TestEachBatchRecordZstdWindowCap: a zstd frame asking for a window past
// zstdMaxWindow is refused rather than allocated.
func TestEachBatchRecordZstdWindowCap(t *testing.T) {
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithWindowSize(64<<20), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(enc, zeros{}, 16<<20); err != nil {
		t.Fatal(err)
	}
	enc.Close()
	batch := assembleBatch(0, 4, 0, 0, 1, 0, buf.Bytes())
	if _, err := decodeAll(batch, maxDecodedBatchBytes); err == nil {
		t.Fatal("64 MiB window accepted")
	}
}

func TestEachBatchRecordRejectsMalformed(t *testing.T) {
	rec := func(r testRecord) []byte { return appendTestRecord(nil, r) }
	ok := rec(testRecord{value: []byte("v")})
	for _, tc := range []struct {
		name      string
		n         int32
		lastDelta int32
		attrs     int16
		recs      []byte
	}{
		{"no records bytes", 1, 0, 0, nil},
		{"negative record count", -1, 0, 0, nil},
		{"negative last offset delta", 1, -1, 0, ok},
		{"fewer records than counted", 2, 1, 0, ok},
		{"trailing bytes", 1, 0, 0, append(slices.Clone(ok), 0)},
		{"record length past end", 1, 0, 0, ok[:len(ok)-1]},
		{"negative record length", 1, 0, 0, binary.AppendVarint(nil, -2)},
		{"record longer than its fields", 1, 0, 0, func() []byte {
			b := slices.Clone(ok)
			b[0] += 2 // zigzag: length + 1
			return append(b, 0)
		}()},
		{"key length below -1", 1, 0, 0, []byte{12, 0, 0, 0, 3, 0, 0}},
		{"null header key", 1, 0, 0, rec(testRecord{headers: [][2][]byte{{nil, nil}}})},
		{"offset delta past last", 1, 0, 0, rec(testRecord{offDelta: 1})},
		{"negative offset delta", 1, 0, 0, rec(testRecord{offDelta: -1})},
		{"huge header count", 1, 0, 0, []byte{20, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f}},
		{"varint over 10 bytes", 1, 0, 0, bytes.Repeat([]byte{0xff}, 12)},
		{"codec 5", 1, 0, 5, ok},
		{"codec 7", 1, 0, 7, ok},
		{"gzip garbage", 1, 0, 1, ok},
		{"snappy garbage", 1, 0, 2, []byte{40, 0xff, 0xff, 0xff}},
		{"xerial truncated", 1, 0, 2, append(slices.Clone(xerialMagic), 0, 0, 0, 1)},
		{"xerial chunk past end", 1, 0, 2, append(xerialEncode(ok, 100), 0, 0, 0, 9, 1)},
		{"lz4 garbage", 1, 0, 3, ok},
		{"zstd garbage", 1, 0, 4, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := assembleBatch(0, tc.attrs, 0, 0, tc.n, tc.lastDelta, tc.recs)
			if _, err := decodeAll(batch, 1<<20); !errors.Is(err, storage.ErrCorruptBatch) {
				t.Fatalf("err %v, want ErrCorruptBatch", err)
			}
		})
	}
	good := assembleBatch(0, 0, 0, 0, 1, 0, ok)
	for _, b := range [][]byte{nil, good[:60], good[:len(good)-1]} {
		if _, err := decodeAll(b, 1<<20); !errors.Is(err, storage.ErrCorruptBatch) {
			t.Errorf("%d of %d bytes: err %v, want ErrCorruptBatch", len(b), len(good), err)
		}
	}
}

// FuzzDecodeBatchRecords: whatever the bytes, decoding never panics, stays
// within the batch's offsets and record count, and, for uncompressed
// batches, agrees with kmsg's record codec.
func FuzzDecodeBatchRecords(f *testing.F) {
	tss := []int64{100, 99, 105, 101, 200}
	for _, c := range testCodecs {
		f.Add(makeBatch(f, c, false, 7, tss))
		f.Add(makeBatch(f, c, true, 7, tss))
	}
	f.Add(assembleBatch(0, 0, 0, 0, 1, 0, appendTestRecord(nil, testRecord{headers: [][2][]byte{{[]byte("k"), nil}}})))
	f.Fuzz(func(t *testing.T, batch []byte) {
		var got []recordStamp
		err := eachBatchRecord(batch, 1<<20, func(r recordStamp) bool { got = append(got, r); return true })
		if err != nil {
			return
		}
		h, _ := storage.ParseBatchHeader(batch)
		if len(got) != int(h.NumRecords) {
			t.Fatalf("%d records, header counts %d", len(got), h.NumRecords)
		}
		for _, r := range got {
			if r.Offset < h.BaseOffset || r.Offset > h.LastOffset() {
				t.Fatalf("offset %d outside %d..%d", r.Offset, h.BaseOffset, h.LastOffset())
			}
		}
		if h.Attributes&batchCodecMask != 0 {
			return
		}
		rest := batch[batchHeaderBytes:h.Size()]
		for i, r := range got {
			length, n := binary.Varint(rest)
			var kr kmsg.Record
			if err := kr.ReadFrom(rest[:n+int(length)]); err != nil {
				t.Fatalf("record %d: we decoded it, kmsg says %v", i, err)
			}
			rest = rest[n+int(length):]
			want := recordStamp{Offset: h.BaseOffset + int64(kr.OffsetDelta), Timestamp: h.FirstTimestamp + kr.TimestampDelta64}
			if h.Attributes&batchLogAppendBit != 0 {
				want.Timestamp = h.MaxTimestamp
			}
			if r != want {
				t.Fatalf("record %d: %+v, kmsg %+v", i, r, want)
			}
		}
	})
}

// openTestPartition returns a partition over an in-memory log holding
// batches appended in order.
func openTestPartition(t *testing.T, batches ...[]byte) *Partition {
	t.Helper()
	l, err := openDiskLog(t.TempDir(), storage.Options{FS: storage.NewMemFS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for _, b := range batches {
		_, ap, err := l.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := ap.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	p, err := newPartition("t", 0, l, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPartitionOffsetForTimestampFindsTheRecord(t *testing.T) {
	gz, zs := testCodecs[1], testCodecs[5]
	// Garbage inside a valid batch: the CRC is right, the gzip stream is not.
	broken := assembleBatch(0, 1, 700, 710, 3, 2, []byte("not gzip at all"))
	// A header claiming a max timestamp (900) none of its records has.
	liar := assembleBatch(0, 0, 500, 900, 2, 1, recordsFor(500, []int64{500, 501}))
	p := openTestPartition(t,
		makeBatch(t, gz, false, 0, []int64{100, 300, 101, 102, 103}), // 0-4
		makeBatch(t, zs, false, 0, []int64{301, 302, 303, 304, 305}), // 5-9
		broken, // 10-12
		liar,   // 13-14
		makeBatch(t, testCodecs[0], false, 0, []int64{900, 950}), // 15-16
	)
	for _, tc := range []struct {
		name     string
		deleteTo int64
		ts       int64
		want     recordStamp
		none     bool
	}{
		{"first record", 0, 0, recordStamp{0, 100}, false},
		{"first by offset, not by time", 0, 102, recordStamp{1, 300}, false},
		{"out-of-order record", 0, 200, recordStamp{1, 300}, false},
		{"next compressed batch", 0, 303, recordStamp{7, 303}, false},
		{"between records", 0, 302, recordStamp{6, 302}, false},
		{"undecodable batch: its first offset", 0, 705, recordStamp{10, 710}, false},
		{"header lies: the next batch", 0, 800, recordStamp{15, 900}, false},
		{"last record", 0, 950, recordStamp{16, 950}, false},
		{"none that new", 0, 951, recordStamp{}, true},
		{"below the log start: skipped", 3, 101, recordStamp{3, 102}, false},
		{"only match below the log start: next batch", 3, 200, recordStamp{5, 301}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := p.log.DeleteRecordsBefore(tc.deleteTo); err != nil {
				t.Fatal(err)
			}
			got, ok, err := p.recordForTimestamp(tc.ts)
			if err != nil || ok == tc.none || ok && got != tc.want {
				t.Fatalf("ts %d: %+v ok=%v err=%v, want %+v", tc.ts, got, ok, err, tc.want)
			}
		})
	}
}

func TestPartitionMaxTimestampFindsTheRecord(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batches [][]byte
		want    recordStamp
	}{
		{"first of equal maxima", [][]byte{
			makeBatch(t, testCodecs[0], false, 0, []int64{1, 2}),
			makeBatch(t, testCodecs[3], false, 0, []int64{100, 105, 105, 102}),
		}, recordStamp{3, 105}},
		{"LogAppendTime: first record", [][]byte{
			makeBatch(t, testCodecs[4], true, 0, []int64{7, 9, 8}),
		}, recordStamp{0, 9}},
		{"undecodable: the batch's last offset", [][]byte{
			makeBatch(t, testCodecs[0], false, 0, []int64{1, 2}),
			assembleBatch(0, 4, 50, 60, 3, 2, []byte("not zstd")),
		}, recordStamp{4, 60}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openTestPartition(t, tc.batches...)
			got, ok, err := p.maxTimestampRecord()
			if err != nil || !ok || got != tc.want {
				t.Fatalf("%+v ok=%v err=%v, want %+v", got, ok, err, tc.want)
			}
		})
	}
	p := openTestPartition(t)
	if _, ok, err := p.maxTimestampRecord(); ok || err != nil {
		t.Fatalf("empty log: ok=%v err=%v", ok, err)
	}
}
