package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
)

// twin is a PartitionLog to run the partition's tests on, with a way to
// hold durability (appends stay pending, the high watermark stays put)
// and to let it go again.
type twin struct {
	name string
	open func(t *testing.T) (l PartitionLog, hold, release func())
}

// twins are the logs every partition test runs on: the segmented disk log
// over the in-memory file system (durability held by holding its fsyncs),
// and memLog, whose Read also returns what is not committed yet, as a
// replicated log's will.
var twins = []twin{
	{"disk", func(t *testing.T) (PartitionLog, func(), func()) {
		ffs := storage.NewFaultFS(storage.NewMemFS())
		l, err := openDiskLog("/data/t-0", storage.Options{FS: ffs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ffs.ReleaseSyncs(); l.Close() })
		return l, ffs.HoldSyncs, ffs.ReleaseSyncs
	}},
	{"memory", func(t *testing.T) (PartitionLog, func(), func()) {
		l := newMemLog(true)
		hold := func() { l.mu.Lock(); l.auto = false; l.mu.Unlock() }
		release := func() { l.mu.Lock(); l.auto = true; l.commitLocked(l.end); l.mu.Unlock() }
		return l, hold, release
	}},
}

func eachTwin(t *testing.T, test func(t *testing.T, p *Partition, hold, release func())) {
	for _, tw := range twins {
		t.Run(tw.name, func(t *testing.T) {
			l, hold, release := tw.open(t)
			p, err := newPartition("t", 0, l, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			test(t, p, hold, release)
		})
	}
}

// mustAppend appends and waits for durability, returning the base offset.
func mustAppend(t *testing.T, p *Partition, batch []byte) int64 {
	t.Helper()
	res, ap, err := p.Append(batch)
	if err != nil {
		t.Fatal(err)
	}
	if ap != nil {
		if err := ap.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	return res.BaseOffset
}

// batchOffsets returns the first and last offset of every batch in data.
func batchOffsets(t *testing.T, data []byte) [][2]int64 {
	t.Helper()
	var out [][2]int64
	for len(data) > 0 {
		h, err := storage.ParseBatchHeader(data)
		if err != nil || h.Size() > len(data) {
			t.Fatalf("read returned a broken batch: %v", err)
		}
		out = append(out, [2]int64{h.BaseOffset, h.LastOffset()})
		data = data[h.Size():]
	}
	return out
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed polls for ch to close (the disk log's writer completes an
// fsync on its own goroutine).
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not within 5s", what)
	}
}

// TestPartitionReadsStopAtTheHighWatermark: what is appended but not yet
// durable is neither read, nor counted in the offsets, nor found by time,
// nor announced to watchers; once durable it is all four.
func TestPartitionReadsStopAtTheHighWatermark(t *testing.T) {
	eachTwin(t, func(t *testing.T, p *Partition, hold, release func()) {
		mustAppend(t, p, storage.BuildBatch(0, 100, [][]byte{[]byte("a0"), []byte("a1")}))
		watch := p.Watch()
		hold()
		res, pending, err := p.Append(storage.BuildBatch(0, 200, [][]byte{[]byte("b0")}))
		if err != nil || res.BaseOffset != 2 || pending == nil {
			t.Fatalf("append while held: %+v, pending %v, %v", res, pending, err)
		}

		if start, hw, lso := p.Offsets(); start != 0 || hw != 2 || lso != 2 {
			t.Fatalf("offsets while held: %d %d %d, want 0 2 2", start, hw, lso)
		}
		for _, iso := range []IsolationLevel{ReadUncommitted, ReadCommitted} {
			data, err := p.Read(0, 1<<20, iso)
			if got := batchOffsets(t, data); err != nil || fmt.Sprint(got) != "[[0 1]]" {
				t.Fatalf("isolation %d: read %v, %v; want only the durable batch", iso, got, err)
			}
			if data, err := p.Read(2, 1<<20, iso); data != nil || err != nil {
				t.Fatalf("isolation %d: read at the high watermark: %d bytes, %v", iso, len(data), err)
			}
			if _, err := p.Read(3, 1<<20, iso); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("isolation %d: read past the high watermark: %v", iso, err)
			}
		}
		if _, _, ok, err := p.OffsetForTimestamp(150); ok || err != nil {
			t.Fatalf("offset for a timestamp only a pending batch has: ok=%v %v", ok, err)
		}
		if off, ts, ok, err := p.MaxTimestamp(); !ok || err != nil || off != 0 || ts != 100 {
			t.Fatalf("max timestamp while held: %d %d %v %v, want 0 100", off, ts, ok, err)
		}
		if closed(watch) || closed(pending.Done()) {
			t.Fatalf("watch fired %v, append done %v before the batch is durable", closed(watch), closed(pending.Done()))
		}

		release()
		if err := pending.Wait(); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, watch, "watch after the batch became durable")
		if _, hw, lso := p.Offsets(); hw != 3 || lso != 3 {
			t.Fatalf("offsets after release: hw %d lso %d, want 3 3", hw, lso)
		}
		data, err := p.Read(0, 1<<20, ReadCommitted)
		if got := batchOffsets(t, data); err != nil || fmt.Sprint(got) != "[[0 1] [2 2]]" {
			t.Fatalf("read after release: %v, %v", got, err)
		}
		if off, ts, ok, err := p.OffsetForTimestamp(150); !ok || err != nil || off != 2 || ts != 200 {
			t.Fatalf("offset for timestamp 150: %d %d %v %v, want 2 200", off, ts, ok, err)
		}
		if closed(p.Watch()) {
			t.Fatal("a new watch is closed with nothing new")
		}
	})
}

// TestPartitionReadSizes: a read returns whole batches up to maxBytes, and
// always the first whole batch even when it is larger.
func TestPartitionReadSizes(t *testing.T) {
	eachTwin(t, func(t *testing.T, p *Partition, _, _ func()) {
		one := storage.BuildBatch(0, 1, [][]byte{make([]byte, 100)})
		for range 3 {
			mustAppend(t, p, one)
		}
		for _, tc := range []struct {
			offset int64
			max    int
			want   string
		}{
			{0, 1, "[[0 0]]"},
			{0, len(one), "[[0 0]]"},
			{0, 2*len(one) + 1, "[[0 0] [1 1]]"},
			{1, 1 << 20, "[[1 1] [2 2]]"},
		} {
			data, err := p.Read(tc.offset, tc.max, ReadUncommitted)
			if got := fmt.Sprint(batchOffsets(t, data)); err != nil || got != tc.want {
				t.Errorf("read %d max %d: %s, %v; want %s", tc.offset, tc.max, got, err, tc.want)
			}
		}
	})
}

func TestVisiblePrefix(t *testing.T) {
	var data []byte
	for base := int64(0); base < 6; base += 2 {
		b := storage.BuildBatch(0, 1, [][]byte{{1}, {2}})
		binary.BigEndian.PutUint64(b, uint64(base))
		data = append(data, b...)
	}
	size := len(data) / 3
	for _, tc := range []struct {
		end  int64
		want int
	}{{0, 0}, {1, 0}, {2, size}, {3, size}, {5, 2 * size}, {6, 3 * size}, {100, 3 * size}} {
		if got := visiblePrefix(data, tc.end); got != tc.want {
			t.Errorf("end %d: %d bytes, want %d", tc.end, got, tc.want)
		}
	}
	if got := visiblePrefix(data[:len(data)-1], 100); got != 2*size {
		t.Errorf("torn last batch: %d bytes, want %d", got, 2*size)
	}
}

// TestPartitionAppendValidates: the partition, not the front end, decides
// what may be appended; a refused request appends nothing.
func TestPartitionAppendValidates(t *testing.T) {
	eachTwin(t, func(t *testing.T, p *Partition, _, _ func()) {
		good := storage.BuildBatch(0, 1, [][]byte{[]byte("ok")})
		badCRC := append([]byte(nil), good...)
		badCRC[len(badCRC)-1] ^= 0xff
		big := storage.BuildBatch(0, 1, [][]byte{make([]byte, 2000)})
		txn := producerBatch(9, 0, 0, 1)
		binary.BigEndian.PutUint16(txn[21:], transactionalBit|controlBit)
		binary.BigEndian.PutUint32(txn[17:], crcOf(txn))
		p.maxMessageBytes.Store(1000)
		for _, tc := range []struct {
			name          string
			batches       []byte
			core, storage error
		}{
			{"nothing", nil, ErrCorruptMessage, storage.ErrCorruptBatch},
			{"bad crc", badCRC, ErrCorruptMessage, storage.ErrCorruptBatch},
			{"good then torn", append(append([]byte(nil), good...), good[:30]...), ErrCorruptMessage, storage.ErrCorruptBatch},
			{"over max.message.bytes", big, ErrMessageTooLarge, storage.ErrBatchTooLarge},
			{"control batch from a client", txn, ErrControlBatch, nil},
		} {
			_, ap, err := p.Append(tc.batches)
			if !errors.Is(err, tc.core) || tc.storage != nil && !errors.Is(err, tc.storage) || ap != nil {
				t.Errorf("%s: %v (pending %v), want %v", tc.name, err, ap != nil, tc.core)
			}
		}
		if _, hw, _ := p.Offsets(); hw != 0 || p.Size() != 0 {
			t.Fatalf("refused appends left hw %d, %d bytes", hw, p.Size())
		}
		// The limit follows the topic's configuration.
		p.configure(resolvedConfig{maxMessageBytes: 4000})
		if base := mustAppend(t, p, big); base != 0 {
			t.Fatalf("after raising the limit: base %d", base)
		}
	})
}

// crcOf is the CRC32C a batch's header must hold.
func crcOf(b []byte) uint32 { return crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) }

// TestPartitionTimestamps: offset for timestamp is the first record at or
// after it, at or above the log start; max timestamp is the first record
// with the largest one.
func TestPartitionTimestamps(t *testing.T) {
	eachTwin(t, func(t *testing.T, p *Partition, _, _ func()) {
		if _, _, ok, err := p.MaxTimestamp(); ok || err != nil {
			t.Fatalf("empty partition: max timestamp ok=%v %v", ok, err)
		}
		mustAppend(t, p, storage.BuildBatch(0, 100, [][]byte{{0}, {1}}))      // 0-1
		mustAppend(t, p, storage.BuildBatch(0, 200, [][]byte{{2}, {3}, {4}})) // 2-4
		mustAppend(t, p, storage.BuildBatch(0, 300, [][]byte{{5}}))           // 5
		lookup := func(ts int64) string {
			off, stamp, ok, err := p.OffsetForTimestamp(ts)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return "none"
			}
			return fmt.Sprint(off, "@", stamp)
		}
		for _, tc := range []struct {
			ts   int64
			want string
		}{{0, "0@100"}, {100, "0@100"}, {150, "2@200"}, {300, "5@300"}, {301, "none"}} {
			if got := lookup(tc.ts); got != tc.want {
				t.Errorf("timestamp %d: %s, want %s", tc.ts, got, tc.want)
			}
		}
		if off, ts, ok, err := p.MaxTimestamp(); !ok || err != nil || off != 5 || ts != 300 {
			t.Fatalf("max timestamp: %d %d %v %v, want 5 300", off, ts, ok, err)
		}
		if _, err := p.DeleteRecordsBefore(3); err != nil {
			t.Fatal(err)
		}
		if got := lookup(0); got != "3@200" {
			t.Fatalf("after deleting below 3: timestamp 0 answers %s, want 3@200", got)
		}
	})
}

func TestPartitionDeleteRecordsBefore(t *testing.T) {
	eachTwin(t, func(t *testing.T, p *Partition, _, _ func()) {
		for range 3 {
			mustAppend(t, p, storage.BuildBatch(0, 1, [][]byte{{0}, {1}}))
		}
		for _, tc := range []struct {
			offset, want int64
			err          error
		}{
			{-1, -1, ErrOffsetOutOfRange},
			{7, -1, ErrOffsetOutOfRange},
			{3, 3, nil},
			{1, 3, nil}, // below the start: nothing changes
			{6, 6, nil}, // up to the high watermark
		} {
			start, err := p.DeleteRecordsBefore(tc.offset)
			if start != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("delete before %d: start %d, %v; want %d, %v", tc.offset, start, err, tc.want, tc.err)
			}
		}
		if _, err := p.Read(5, 100, ReadUncommitted); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read below the start: %v", err)
		}
		if data, err := p.Read(6, 100, ReadUncommitted); data != nil || err != nil {
			t.Fatalf("read at the start, which is the end: %d bytes, %v", len(data), err)
		}
		if start, hw, _ := p.Offsets(); start != 6 || hw != 6 {
			t.Fatalf("offsets %d %d, want 6 6", start, hw)
		}
		if base := mustAppend(t, p, storage.BuildBatch(0, 1, [][]byte{{0}})); base != 6 {
			t.Fatalf("append after deleting everything: base %d, want 6", base)
		}
	})
}

// TestPartitionDuplicateOfPendingOnReplicatedTwin: on a log whose commits
// come later (memLog held), a retry of a pending batch is answered with
// the original's durability, and a lost original is written again after
// Recover, as on disk (TestPartitionDuplicateWaitsForOriginal).
func TestPartitionDuplicateOfPendingOnReplicatedTwin(t *testing.T) {
	l := newMemLog(false)
	p, err := newPartition("t", 0, l, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, orig, err := p.Append(producerBatch(7, 0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	res, dup, err := p.Append(producerBatch(7, 0, 0, 2))
	if err != nil || !res.Duplicate || dup == nil || res.BaseOffset != 0 {
		t.Fatalf("retry of a pending batch: %+v, pending %v, %v", res, dup != nil, err)
	}
	l.commit()
	if orig.Wait() != nil || dup.Wait() != nil {
		t.Fatal("committed batch reported failed")
	}
	_, orig, _ = p.Append(producerBatch(7, 0, 2, 1))
	_, dup, _ = p.Append(producerBatch(7, 0, 2, 1))
	l.fail(errors.New("lost quorum"))
	if orig.Wait() == nil || dup == nil || dup.Wait() == nil {
		t.Fatal("a lost batch or its retry reported durable")
	}
	if _, _, err := p.Append(producerBatch(7, 0, 2, 1)); !errors.Is(err, ErrStorage) {
		t.Fatalf("append to a failed log: %v, want ErrStorage", err)
	}
	if err := p.Recover(); err != nil {
		t.Fatal(err)
	}
	res, ap, err := p.Append(producerBatch(7, 0, 2, 1))
	if err != nil || res.Duplicate || res.BaseOffset != 2 || ap == nil {
		t.Fatalf("retry after Recover: %+v, %v", res, err)
	}
}

// TestCoreErrors: a log's error reaches the front end under the core's
// name, and still matches the storage one.
func TestCoreErrors(t *testing.T) {
	for _, tc := range []struct{ log, core error }{
		{storage.ErrOffsetOutOfRange, ErrOffsetOutOfRange},
		{storage.ErrBatchTooLarge, ErrMessageTooLarge},
		{storage.ErrCorruptBatch, ErrCorruptMessage},
		{storage.ErrClosed, ErrClosed},
		{errors.New("write: no space left on device"), ErrStorage},
	} {
		err := coreError(fmt.Errorf("segment 0: %w", tc.log))
		if !errors.Is(err, tc.core) || !errors.Is(err, tc.log) {
			t.Errorf("%v: %v matches core %v, log %v", tc.log, err, errors.Is(err, tc.core), errors.Is(err, tc.log))
		}
	}
	if coreError(nil) != nil {
		t.Error("nil is not an error")
	}
}
