package storage

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// buildLog writes n batches of 2 records (timestamps 100+i) with small
// segments and returns the batches as stored.
func buildLog(t *testing.T, fsys FS, dir string, o Options, n int) [][]byte {
	t.Helper()
	l := mustOpen(t, fsys, dir, o)
	var want [][]byte
	for i := range n {
		b := batchOf(i, 2, 40, int64(100+i))
		a := mustAppend(t, l, b)
		want = append(want, withOffset(b, a.BaseOffset))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

func checkPrefix(t *testing.T, got, want [][]byte, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("recovered %d batches, want %d", len(got), n)
	}
	for i := range n {
		if !sameBatch(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
}

// TestRecoverActiveTail damages the active segment's data. Recovery
// validates from the last index entry on, so the cases that damage the
// middle run without index entries (a huge interval): then every batch is
// checked. Damage after the last entry is caught either way.
func TestRecoverActiveTail(t *testing.T) {
	for _, c := range []struct {
		name     string
		damage   func(data []byte, size int) []byte
		keep     int // batches kept of 20
		interval int
	}{
		{"clean", func(d []byte, _ int) []byte { return d }, 20, 0},
		{"partial batch", func(d []byte, size int) []byte { return d[:len(d)-size/2] }, 19, 0},
		{"partial header", func(d []byte, size int) []byte { return d[:len(d)-size+20] }, 19, 0},
		{"garbage after", func(d []byte, _ int) []byte { return append(d, bytes.Repeat([]byte{7}, 100)...) }, 20, 0},
		{"zeros after", func(d []byte, _ int) []byte { return append(d, make([]byte, 4096)...) }, 20, 0},
		{"bad crc in middle", func(d []byte, size int) []byte { d[10*size+70] ^= 0xff; return d }, 10, 1 << 20},
		{"bad crc first", func(d []byte, size int) []byte { d[70] ^= 0xff; return d }, 0, 1 << 20},
		{"offset goes back", func(d []byte, size int) []byte { putBaseOffset(d[15*size:], 3); return d }, 15, 1 << 20},
		{"bad crc after last entry", func(d []byte, size int) []byte { d[19*size+70] ^= 0xff; return d }, 19, 0},
		{"empty", func(d []byte, _ int) []byte { return nil }, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{IndexIntervalBytes: 150}
			if c.interval > 0 {
				o.IndexIntervalBytes = c.interval
			}
			mem, dir := NewMemFS(), "/d/log"
			want := buildLog(t, mem, dir, o, 20)
			name := segPath(dir, 0, logSuffix)
			data := c.damage(readFileBytes(t, mem, name), len(want[0]))
			writeFileBytes(t, mem, name, data)
			l := mustOpen(t, mem, dir, o)
			defer l.Close()
			got := readLog(t, l)
			checkPrefix(t, got, want, c.keep)
			if size := fileSize(t, mem, name); size != int64(c.keep*len(want[0])) {
				t.Fatalf("data file %d bytes, want %d", size, c.keep*len(want[0]))
			}
			if hw := l.HighWatermark(); hw != int64(2*c.keep) {
				t.Fatalf("hw %d", hw)
			}
			// Indexes match the recovered data: lookups everywhere work.
			for i := range c.keep {
				if data, err := l.Read(int64(2*i+1), 1); err != nil || !sameBatch(data, want[i]) {
					t.Fatalf("Read(%d): %v", 2*i+1, err)
				}
			}
			if c.keep > 0 {
				off, _, ok, err := l.OffsetForTimestamp(int64(100 + c.keep - 1))
				if err != nil || !ok || off != int64(2*(c.keep-1)) {
					t.Fatalf("OffsetForTimestamp = %d, %v, %v", off, ok, err)
				}
			}
			a := mustAppend(t, l, batchOf(99, 1, 5, 1))
			if a.BaseOffset != int64(2*c.keep) {
				t.Fatalf("next append at %d", a.BaseOffset)
			}
		})
	}
}

func TestRecoverDamagedActiveIndexes(t *testing.T) {
	o := Options{IndexIntervalBytes: 150}
	for _, c := range []struct {
		name   string
		damage func(mem *MemFS, dir string)
	}{
		{"index truncated", func(mem *MemFS, dir string) {
			b := readFileBytes(t, mem, segPath(dir, 0, indexSuffix))
			writeFileBytes(t, mem, segPath(dir, 0, indexSuffix), b[:len(b)-12])
		}},
		{"time index lost", func(mem *MemFS, dir string) { mem.Remove(segPath(dir, 0, timeIndexSuffix)) }},
		{"time index short", func(mem *MemFS, dir string) {
			b := readFileBytes(t, mem, segPath(dir, 0, timeIndexSuffix))
			writeFileBytes(t, mem, segPath(dir, 0, timeIndexSuffix), b[:len(b)/2/12*12])
		}},
		{"index points wrong", func(mem *MemFS, dir string) {
			b := readFileBytes(t, mem, segPath(dir, 0, indexSuffix))
			b[len(b)-1]++
			writeFileBytes(t, mem, segPath(dir, 0, indexSuffix), b)
		}},
		{"time index lies", func(mem *MemFS, dir string) {
			b := readFileBytes(t, mem, segPath(dir, 0, timeIndexSuffix))
			b[len(b)-12-5]++
			writeFileBytes(t, mem, segPath(dir, 0, timeIndexSuffix), b)
		}},
		{"garbage", func(mem *MemFS, dir string) {
			writeFileBytes(t, mem, segPath(dir, 0, indexSuffix), bytes.Repeat([]byte{0xab}, 800))
			writeFileBytes(t, mem, segPath(dir, 0, timeIndexSuffix), bytes.Repeat([]byte{0x01}, 120))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem, dir := NewMemFS(), "/d/log"
			want := buildLog(t, mem, dir, o, 30)
			good := readFileBytes(t, mem, segPath(dir, 0, indexSuffix))
			goodT := readFileBytes(t, mem, segPath(dir, 0, timeIndexSuffix))
			if len(good) < 16 || len(goodT) < 24 {
				t.Fatalf("test needs several index entries: %d, %d bytes", len(good), len(goodT))
			}
			c.damage(mem, dir)
			l := mustOpen(t, mem, dir, o)
			checkPrefix(t, readLog(t, l), want, 30)
			for i := range 30 {
				off, ts, ok, err := l.OffsetForTimestamp(int64(100 + i))
				if err != nil || !ok || off != int64(2*i) || ts != int64(100+i) {
					t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v, %v", 100+i, off, ts, ok, err)
				}
			}
			l.Close()
			if got := readFileBytes(t, mem, segPath(dir, 0, indexSuffix)); !bytes.Equal(got, good) {
				t.Fatalf("index not restored:\n%x\n%x", got, good)
			}
			if got := readFileBytes(t, mem, segPath(dir, 0, timeIndexSuffix)); !bytes.Equal(got, goodT) {
				t.Fatalf("time index not restored:\n%x\n%x", got, goodT)
			}
		})
	}
}

func TestRecoverOldSegment(t *testing.T) {
	o := Options{SegmentBytes: 1200, IndexIntervalBytes: 150}
	mem, dir := NewMemFS(), "/d/log"
	want := buildLog(t, mem, dir, o, 40)
	l := mustOpen(t, mem, dir, o)
	bases := l.SegmentBaseOffsets()
	l.Close()
	if len(bases) < 4 {
		t.Fatalf("segments %v", bases)
	}
	// Tear the tail of the second segment: it is cut back and the log
	// keeps the later segments, with a gap in offsets.
	name := segPath(dir, bases[1], logSuffix)
	data := readFileBytes(t, mem, name)
	writeFileBytes(t, mem, name, data[:len(data)-10])
	l = mustOpen(t, mem, dir, o)
	defer l.Close()
	got := readLog(t, l)
	if len(got) != len(want)-1 {
		t.Fatalf("recovered %d batches, want %d", len(got), len(want)-1)
	}
	lost := (bases[2] - 2) / 2 // the last batch of segment 1
	for i, j := 0, 0; i < len(want); i++ {
		if int64(i) == lost {
			continue
		}
		if !sameBatch(got[j], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
		j++
	}
	// Reading inside the gap returns the next batch.
	if data, err := l.Read(bases[2]-1, 1); err != nil || !sameBatch(data, want[lost+1]) {
		t.Fatalf("Read in gap: %v", err)
	}
}

func TestCheckpoint(t *testing.T) {
	o := Options{SegmentBytes: 1000}
	mem, dir := NewMemFS(), "/d/log"
	buildLog(t, mem, dir, o, 20)
	l := mustOpen(t, mem, dir, o)
	if err := l.DeleteRecordsBefore(9); err != nil {
		t.Fatal(err)
	}
	first := l.SegmentBaseOffsets()[0]
	l.Close()
	ck := dir + "/" + checkpointName
	b := readFileBytes(t, mem, ck)
	if start, ok := decodeCheckpoint(b); !ok || start != 9 {
		t.Fatalf("checkpoint %x = %d, %v", b, start, ok)
	}
	// A damaged checkpoint is ignored: the start falls back to the first segment.
	b[9] ^= 1
	writeFileBytes(t, mem, ck, b)
	l = mustOpen(t, mem, dir, o)
	if s := l.StartOffset(); s != first {
		t.Fatalf("start with bad checkpoint = %d, want %d", s, first)
	}
	l.Close()
	// A checkpoint past the data: the log restarts empty at it.
	writeFileBytes(t, mem, ck, encodeCheckpoint(100))
	l = mustOpen(t, mem, dir, o)
	defer l.Close()
	if s, hw := l.StartOffset(), l.HighWatermark(); s != 100 || hw != 100 {
		t.Fatalf("start %d hw %d, want 100 100", s, hw)
	}
	if a := mustAppend(t, l, batchOf(1, 1, 1, 1)); a.BaseOffset != 100 {
		t.Fatalf("append at %d", a.BaseOffset)
	}
}

// FuzzRecovery opens a log whose first segment holds arbitrary bytes
// (seeded with valid batches), with arbitrary index files; with old set,
// that segment is an older one, followed by a valid active segment.
//
// Open must never panic or fail, and must leave a prefix of the bytes.
// Without index files it must keep exactly the longest valid prefix.
// With index files, recovery trusts data before the last index entry that
// checks out (index entries only ever point at fsync'd data), so a forged
// index can vouch for garbage: then reads must still only return framed
// batches or ErrCorruptBatch.
func FuzzRecovery(f *testing.F) {
	var valid []byte
	for i := range 6 {
		valid = append(valid, withOffset(batchOf(i, 2, 30, int64(i)), int64(2*i))...)
	}
	idx := appendOffsetEntries(nil, []offsetEntry{{2, uint32(len(valid) / 6)}, {6, uint32(len(valid) / 2)}})
	tidx := appendTimeEntries(nil, []timeEntry{{1, 2}, {3, 6}})
	for _, old := range []bool{false, true} {
		f.Add(valid, []byte{}, []byte{}, old)
		f.Add(valid, idx, tidx, old)
		f.Add(valid[:len(valid)-3], idx, []byte{}, old)
		f.Add(append(append([]byte(nil), valid...), 1, 2, 3), []byte{0, 0, 0, 4, 0, 0, 0, 200}, tidx, old)
		f.Add([]byte{}, []byte{1, 2, 3}, []byte{0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1}, old)
		f.Add(valid[:61], []byte{}, bytes.Repeat([]byte{0xff}, 24), old)
		f.Add(append(bytes.Repeat([]byte{'0'}, 100), valid...), idx, tidx, old)
	}
	const activeBase = 1 << 20
	active := withOffset(batchOf(77, 1, 10, 5), activeBase)
	f.Fuzz(func(t *testing.T, data, index, timeindex []byte, old bool) {
		mem, dir := NewMemFS(), "/d/log"
		if err := mem.MkdirAll(dir); err != nil {
			t.Fatal(err)
		}
		writeFileBytes(t, mem, segPath(dir, 0, logSuffix), data)
		writeFileBytes(t, mem, segPath(dir, 0, indexSuffix), index)
		writeFileBytes(t, mem, segPath(dir, 0, timeIndexSuffix), timeindex)
		if old {
			writeFileBytes(t, mem, segPath(dir, activeBase, logSuffix), active)
		}
		o := Options{FS: mem, IndexIntervalBytes: 100, MaxBatchBytes: 1 << 16}
		l, err := Open(dir, o)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		kept := readFileBytes(t, mem, segPath(dir, 0, logSuffix))
		if !bytes.HasPrefix(data, kept) {
			t.Fatal("recovered file is not a prefix of the original")
		}
		if old {
			if r, err := l.Read(activeBase, 1); err != nil || !bytes.Equal(r, active) {
				t.Fatalf("active segment lost: %v", err)
			}
		}
		if len(index) == 0 && len(timeindex) == 0 {
			checkExactRecovery(t, l, data, kept, old, activeBase)
		} else {
			checkReadsFramed(t, l)
		}
		a, err := l.Append(batchOf(1, 1, 1, 1))
		if err == nil {
			err = a.Wait()
		}
		if err != nil {
			t.Fatal(err)
		}
		if r, err := l.Read(a.BaseOffset, 1); err != nil || len(r) == 0 {
			t.Fatalf("Read of the new batch: %v", err)
		}
	})
}

// checkExactRecovery: recovery kept exactly the valid prefix, and every
// offset and timestamp in it is found.
func checkExactRecovery(t *testing.T, l *Log, data, kept []byte, old bool, activeBase int64) {
	limit := int64(math.MaxInt64)
	if old {
		limit = activeBase
	}
	want := validPrefix(data, limit)
	if len(kept) != len(want) {
		t.Fatalf("kept %d bytes, valid prefix is %d", len(kept), len(want))
	}
	got := readLog(t, l)
	if old {
		got = got[:len(got)-1] // the active segment's batch
	}
	if !bytes.Equal(bytes.Join(got, nil), want) {
		t.Fatal("read back differs from the valid prefix")
	}
	for _, b := range got {
		h, _ := ParseBatchHeader(b)
		if r, err := l.Read(h.LastOffset(), 1); err != nil || !bytes.Equal(r, b) {
			t.Fatalf("Read(%d): %v", h.LastOffset(), err)
		}
		if h.MaxTimestamp >= 0 {
			if off, _, ok, err := l.OffsetForTimestamp(h.MaxTimestamp); err != nil || !ok || off > h.BaseOffset {
				t.Fatalf("OffsetForTimestamp(%d) = %d, %v, %v; batch at %d", h.MaxTimestamp, off, ok, err, h.BaseOffset)
			}
		}
	}
}

// checkReadsFramed reads the whole log tolerating ErrCorruptBatch.
func checkReadsFramed(t *testing.T, l *Log) {
	for off, n := l.StartOffset(), 0; off < l.HighWatermark() && n < 10000; n++ {
		data, err := l.Read(off, 1<<12)
		if errors.Is(err, ErrCorruptBatch) {
			return
		}
		if err != nil || len(data) == 0 {
			t.Fatalf("Read(%d) = %d bytes, %v", off, len(data), err)
		}
		var last int64
		for len(data) > 0 {
			h, err := ParseBatchHeader(data)
			if err != nil || checkFraming(h, int64(len(data))) != nil {
				t.Fatalf("Read(%d) returned unframed bytes: %v", off, err)
			}
			last = h.LastOffset()
			data = data[h.Size():]
		}
		if last < off {
			t.Fatalf("Read(%d) returned batches ending at %d", off, last)
		}
		off = last + 1
	}
}

// validPrefix is the longest prefix of data made of intact batches with
// increasing offsets, computed independently of recovery.
func validPrefix(data []byte, offLimit int64) []byte {
	end, next := 0, int64(0)
	for end < len(data) {
		rest := data[end:]
		if len(rest) < batchHeaderSize {
			break
		}
		h := parseHeader(rest)
		if h.Length < minBatchLength || int(h.Length)+12 > len(rest) || h.Magic != 2 ||
			h.LastOffsetDelta < 0 || h.NumRecords < 0 || h.BaseOffset < next || h.BaseOffset > math.MaxInt32 || h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta) || h.LastOffset() >= offLimit ||
			batchCRC(rest[:h.Size()]) != h.CRC {
			break
		}
		next = h.LastOffset() + 1
		end += h.Size()
	}
	return data[:end]
}
