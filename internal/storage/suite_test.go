package storage

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestLog runs the shared log suite on the real file system and on MemFS.
func TestLog(t *testing.T) {
	for _, fx := range []struct {
		name string
		new  fsFactory
	}{{"OSFS", osFactory}, {"MemFS", memFactory}} {
		t.Run(fx.name, func(t *testing.T) { runLogSuite(t, fx.new) })
	}
}

func runLogSuite(t *testing.T, newFS fsFactory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, fsys FS, dir string)
	}{
		{"RoundTripAcrossRolls", testRoundTripAcrossRolls},
		{"ReadMiddleOfBatch", testReadMiddleOfBatch},
		{"MaxBytes", testMaxBytes},
		{"HighWatermark", testHighWatermark},
		{"ConcurrentAppends", testConcurrentAppends},
		{"IndexRebuild", testIndexRebuild},
		{"TimeIndex", testTimeIndex},
		{"RetentionByTime", testRetentionByTime},
		{"RetentionByBytes", testRetentionByBytes},
		{"DeleteRecordsBefore", testDeleteRecordsBefore},
		{"CloseOpenKeepsAll", testCloseOpenKeepsAll},
		{"RollByAge", testRollByAge},
		{"RollAndSegmentOptions", testRollAndSegmentOptions},
		{"ScanHeaders", testScanHeaders},
		{"AppendRejectsBadFraming", testAppendRejectsBadFraming},
		{"SyncPolicies", testSyncPolicies},
		{"StrayFiles", testStrayFiles},
		{"Delete", testDelete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys, dir := newFS(t)
			tc.fn(t, fsys, dir)
		})
	}
}

func testRoundTripAcrossRolls(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{SegmentBytes: 3000, IndexIntervalBytes: 256})
	var want [][]byte
	next := int64(0)
	for i := range 120 {
		n := 1 + i%4
		b := batchOf(i, n, 50+i%97, int64(1000+i))
		a := mustAppend(t, l, b)
		if a.BaseOffset != next || a.LastOffset != next+int64(n-1) {
			t.Fatalf("append %d: offsets %d..%d, want %d..%d", i, a.BaseOffset, a.LastOffset, next, next+int64(n-1))
		}
		next += int64(n)
		want = append(want, withOffset(b, a.BaseOffset))
	}
	if n := len(l.SegmentBaseOffsets()); n < 5 {
		t.Fatalf("%d segments, want many rolls", n)
	}
	got := readLog(t, l)
	if len(got) != len(want) {
		t.Fatalf("read %d batches, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameBatch(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	checkContiguous(t, got, 0)
	// Every single offset reads back its own batch, old segments and active.
	for i, b := range want {
		h, _ := ParseBatchHeader(b)
		for off := h.BaseOffset; off <= h.LastOffset(); off++ {
			data, err := l.Read(off, 1)
			if err != nil || !sameBatch(data, b) {
				t.Fatalf("Read(%d) = %d bytes, %v; want batch %d", off, len(data), err, i)
			}
		}
	}
	var sum int64
	for _, b := range want {
		sum += int64(len(b))
	}
	if l.Size() != sum {
		t.Fatalf("Size = %d, want %d", l.Size(), sum)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func testReadMiddleOfBatch(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{})
	defer l.Close()
	b1 := batchOf(1, 5, 10, 1)
	b2 := batchOf(2, 5, 10, 2)
	mustAppend(t, l, b1)
	mustAppend(t, l, b2)
	data, err := l.Read(7, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseBatchHeader(data)
	if err != nil || h.BaseOffset != 5 || len(data) != len(b2) {
		t.Fatalf("Read(7) = batch at %d (%d bytes), %v; want the batch at 5", h.BaseOffset, len(data), err)
	}
}

func testMaxBytes(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{})
	defer l.Close()
	var sizes []int
	for i := range 10 {
		b := batchOf(i, 2, 100, 1)
		sizes = append(sizes, len(b))
		mustAppend(t, l, b)
	}
	cases := []struct {
		maxBytes int
		batches  int
	}{
		{0, 1}, {1, 1}, {sizes[0] - 1, 1}, {sizes[0], 1}, {sizes[0] + 1, 1},
		{2 * sizes[0], 2}, {2*sizes[0] + sizes[0]/2, 2}, {1 << 20, 10},
	}
	for _, c := range cases {
		data, err := l.Read(0, c.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := ValidateBatches(data, 0)
		if err != nil || len(hs) != c.batches {
			t.Errorf("Read(0, %d): %d batches, %v; want %d", c.maxBytes, len(hs), err, c.batches)
		}
	}
}

func testHighWatermark(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{})
	defer l.Close()
	if hw := l.HighWatermark(); hw != 0 {
		t.Fatalf("empty log hw = %d", hw)
	}
	if data, err := l.Read(0, 100); err != nil || data != nil {
		t.Fatalf("Read at hw = %v, %v; want nil, nil", data, err)
	}
	if _, err := l.Read(1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read past hw: %v", err)
	}
	ch := l.Changed()
	a := mustAppend(t, l, batchOf(1, 3, 10, 1))
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed after the high watermark moved")
	}
	if hw := l.HighWatermark(); hw != a.LastOffset+1 || hw != 3 {
		t.Fatalf("hw = %d, want 3", hw)
	}
	if data, err := l.Read(3, 100); err != nil || data != nil {
		t.Fatalf("Read at hw = %v, %v", data, err)
	}
	select {
	case <-l.Changed():
		t.Fatal("new Changed channel already closed")
	default:
	}
}

func testConcurrentAppends(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{SegmentBytes: 64 << 10})
	const writers, each = 8, 40
	var mu sync.Mutex
	want := map[int64][]byte{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last int64 = -1
			for i := range each {
				b := batchOf(w*1000+i, 1+i%3, 64, 5)
				a, err := l.Append(b)
				if err != nil {
					t.Error(err)
					return
				}
				if a.BaseOffset <= last {
					t.Errorf("offsets not in call order: %d after %d", a.BaseOffset, last)
				}
				last = a.LastOffset
				if err := a.Wait(); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[a.BaseOffset] = withOffset(b, a.BaseOffset)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got := readLog(t, l)
	if len(got) != writers*each {
		t.Fatalf("read %d batches, want %d", len(got), writers*each)
	}
	checkContiguous(t, got, 0)
	for _, b := range got {
		h, _ := ParseBatchHeader(b)
		if !sameBatch(want[h.BaseOffset], b) {
			t.Fatalf("batch at %d differs", h.BaseOffset)
		}
	}
	l.Close()
}

func testIndexRebuild(t *testing.T, fsys FS, dir string) {
	o := Options{SegmentBytes: 4000, IndexIntervalBytes: 200}
	l := mustOpen(t, fsys, dir, o)
	for i := range 60 {
		mustAppend(t, l, batchOf(i, 2, 60, int64(100+i)))
	}
	want := readLog(t, l)
	bases := l.SegmentBaseOffsets()
	l.Close()
	// Delete every index, and damage one more the other way.
	for _, b := range bases {
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if err := fsys.Remove(segPath(dir, b, suf)); err != nil {
				t.Fatal(err)
			}
		}
	}
	l = mustOpen(t, fsys, dir, o)
	got := readLog(t, l)
	if len(got) != len(want) {
		t.Fatalf("after rebuild read %d batches, want %d", len(got), len(want))
	}
	for _, b := range bases[:len(bases)-1] {
		if fileSize(t, fsys, segPath(dir, b, indexSuffix)) == 0 {
			t.Fatalf("index of segment %d not rebuilt", b)
		}
	}
	off, ts, ok, err := l.OffsetForTimestamp(130)
	if err != nil || !ok || ts != 130 || off != 60 {
		t.Fatalf("OffsetForTimestamp(130) = %d, %d, %v, %v", off, ts, ok, err)
	}
	// Garbage in an old segment's index: reads still right.
	writeFileBytes(t, fsys, segPath(dir, bases[1], indexSuffix), []byte{0, 0, 0, 9, 0, 0, 0, 3, 0xff})
	l.Close()
	l = mustOpen(t, fsys, dir, o)
	defer l.Close()
	if got := readLog(t, l); len(got) != len(want) {
		t.Fatalf("after damaged index read %d batches, want %d", len(got), len(want))
	}
}

func testTimeIndex(t *testing.T, fsys FS, dir string) {
	o := Options{SegmentBytes: 3000, IndexIntervalBytes: 100}
	l := mustOpen(t, fsys, dir, o)
	// Timestamps rise by 10 per batch, with one out-of-order batch.
	tss := []int64{}
	for i := range 80 {
		ts := int64(1000 + 10*i)
		if i == 40 {
			ts = 500
		}
		tss = append(tss, ts)
		mustAppend(t, l, batchOf(i, 1, 80, ts))
	}
	check := func() {
		t.Helper()
		for _, q := range []int64{0, 999, 1000, 1001, 1395, 1400, 1405, 1790, 1800} {
			wantOff, wantTs, wantOK := int64(-1), int64(0), false
			for i, ts := range tss {
				if ts >= q {
					wantOff, wantTs, wantOK = int64(i), ts, true
					break
				}
			}
			off, ts, ok, err := l.OffsetForTimestamp(q)
			if err != nil || ok != wantOK || ok && (off != wantOff || ts != wantTs) {
				t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d, %v", q, off, ts, ok, err, wantOff, wantTs, wantOK)
			}
		}
	}
	check()
	l.Close()
	l = mustOpen(t, fsys, dir, o)
	defer l.Close()
	check()
	// Below the start: answers never point under it.
	if err := l.DeleteRecordsBefore(45); err != nil {
		t.Fatal(err)
	}
	if off, _, ok, _ := l.OffsetForTimestamp(0); !ok || off != 45 {
		t.Fatalf("OffsetForTimestamp after DeleteRecordsBefore = %d, %v; want 45", off, ok)
	}
}

func testRetentionByTime(t *testing.T, fsys FS, dir string) {
	clk := newClock()
	l := mustOpen(t, fsys, dir, Options{SegmentBytes: 1000, Now: clk.Now})
	defer l.Close()
	now := clk.Now().UnixMilli()
	for i := range 30 {
		// Old data first, then recent data.
		ts := now - int64(time.Hour/time.Millisecond) + int64(i)
		if i >= 20 {
			ts = now
		}
		mustAppend(t, l, batchOf(i, 1, 100, ts))
	}
	before := l.SegmentBaseOffsets()
	n, err := l.EnforceRetention(30*time.Minute, -1)
	if err != nil || n == 0 {
		t.Fatalf("EnforceRetention = %d, %v", n, err)
	}
	after := l.SegmentBaseOffsets()
	if len(after) != len(before)-n {
		t.Fatalf("segments %v -> %v, deleted %d", before, after, n)
	}
	if start := l.StartOffset(); start != after[0] || start > 20 {
		t.Fatalf("start = %d, segments %v", start, after)
	}
	got := readLog(t, l)
	checkContiguous(t, got, l.StartOffset())
	if _, err := l.Read(0, 10); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read below start: %v", err)
	}
	// Nothing left to expire; later everything but the active segment goes.
	if n, _ := l.EnforceRetention(30*time.Minute, -1); n != 0 {
		t.Fatalf("second pass deleted %d", n)
	}
	clk.Advance(2 * time.Hour)
	l.EnforceRetention(30*time.Minute, -1)
	if segs := l.SegmentBaseOffsets(); len(segs) != 1 {
		t.Fatalf("segments %v, want only the active one", segs)
	}
	if _, err := l.Read(l.StartOffset(), 10); err != nil {
		t.Fatal(err)
	}
}

func testRetentionByBytes(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{SegmentBytes: 1000})
	defer l.Close()
	for i := range 40 {
		mustAppend(t, l, batchOf(i, 1, 100, 1))
	}
	if n, _ := l.EnforceRetention(-1, -1); n != 0 {
		t.Fatalf("unlimited retention deleted %d", n)
	}
	n, err := l.EnforceRetention(-1, 2500)
	if err != nil || n == 0 {
		t.Fatalf("EnforceRetention = %d, %v", n, err)
	}
	if size := l.Size(); size > 2500+1000 {
		t.Fatalf("size %d after retention to 2500", size)
	}
	var sum int64
	for _, b := range readLog(t, l) {
		sum += int64(len(b))
	}
	if sum != l.Size() {
		t.Fatalf("readable %d bytes, Size %d", sum, l.Size())
	}
	l.EnforceRetention(-1, 0)
	if segs := l.SegmentBaseOffsets(); len(segs) != 1 {
		t.Fatalf("retention 0 left %v; want only the active segment", segs)
	}
}

func testDeleteRecordsBefore(t *testing.T, fsys FS, dir string) {
	o := Options{SegmentBytes: 1000}
	l := mustOpen(t, fsys, dir, o)
	for i := range 30 {
		mustAppend(t, l, batchOf(i, 1, 100, 1))
	}
	if err := l.DeleteRecordsBefore(100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("DeleteRecordsBefore past hw: %v", err)
	}
	if err := l.DeleteRecordsBefore(17); err != nil {
		t.Fatal(err)
	}
	if s := l.StartOffset(); s != 17 {
		t.Fatalf("start = %d", s)
	}
	if segs := l.SegmentBaseOffsets(); segs[0] > 17 || len(segs) > 1 && segs[1] <= 17 {
		t.Fatalf("segments after delete: %v", segs)
	}
	if _, err := l.Read(16, 10); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read below start: %v", err)
	}
	if err := l.DeleteRecordsBefore(5); err != nil || l.StartOffset() != 17 {
		t.Fatalf("moving the start back: %v, start %d", err, l.StartOffset())
	}
	l.Close()
	l = mustOpen(t, fsys, dir, o)
	defer l.Close()
	if s := l.StartOffset(); s != 17 {
		t.Fatalf("start after reopen = %d", s)
	}
	if data, err := l.Read(17, 1); err != nil || len(data) == 0 {
		t.Fatalf("Read(17) after reopen: %v", err)
	}
	got := readLog(t, l)
	checkContiguous(t, got, 17)
	if h, _ := ParseBatchHeader(got[len(got)-1]); h.LastOffset() != 29 {
		t.Fatalf("last offset %d", h.LastOffset())
	}
	// All the way to the high watermark.
	if err := l.DeleteRecordsBefore(30); err != nil {
		t.Fatal(err)
	}
	if data, err := l.Read(30, 10); err != nil || data != nil {
		t.Fatalf("Read at start == hw: %v, %v", data, err)
	}
	mustAppend(t, l, batchOf(99, 1, 10, 1))
	if data, err := l.Read(30, 10); err != nil || len(data) == 0 {
		t.Fatalf("Read after append: %v", err)
	}
}

func testCloseOpenKeepsAll(t *testing.T, fsys FS, dir string) {
	o := Options{SegmentBytes: 2000, IndexIntervalBytes: 300}
	l := mustOpen(t, fsys, dir, o)
	var want [][]byte
	for round := range 3 {
		for i := range 25 {
			b := batchOf(round*100+i, 2, 70, int64(i))
			a := mustAppend(t, l, b)
			want = append(want, withOffset(b, a.BaseOffset))
		}
		size, hw, segs := l.Size(), l.HighWatermark(), l.SegmentBaseOffsets()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(batchOf(0, 1, 1, 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close: %v", err)
		}
		if _, err := l.Read(0, 1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
		select {
		case <-l.Changed():
		default:
			t.Fatal("Changed not closed by Close")
		}
		l = mustOpen(t, fsys, dir, o)
		if l.Size() != size || l.HighWatermark() != hw || fmt.Sprint(l.SegmentBaseOffsets()) != fmt.Sprint(segs) {
			t.Fatalf("reopen: size %d hw %d segs %v; want %d %d %v", l.Size(), l.HighWatermark(), l.SegmentBaseOffsets(), size, hw, segs)
		}
		got := readLog(t, l)
		if len(got) != len(want) {
			t.Fatalf("round %d: read %d batches, want %d", round, len(got), len(want))
		}
		for i := range want {
			if !sameBatch(got[i], want[i]) {
				t.Fatalf("round %d: batch %d differs", round, i)
			}
		}
	}
	l.Close()
}

func testRollByAge(t *testing.T, fsys FS, dir string) {
	clk := newClock()
	o := Options{SegmentAge: time.Hour, Now: clk.Now}
	l := mustOpen(t, fsys, dir, o)
	mustAppend(t, l, batchOf(1, 1, 10, clk.Now().UnixMilli()))
	clk.Advance(59 * time.Minute)
	mustAppend(t, l, batchOf(2, 1, 10, clk.Now().UnixMilli()))
	if segs := l.SegmentBaseOffsets(); len(segs) != 1 {
		t.Fatalf("rolled early: %v", segs)
	}
	clk.Advance(2 * time.Minute)
	mustAppend(t, l, batchOf(3, 1, 10, clk.Now().UnixMilli()))
	if segs := l.SegmentBaseOffsets(); fmt.Sprint(segs) != "[0 2]" {
		t.Fatalf("segments %v, want [0 2]", segs)
	}
	// The age survives a restart: it comes from the first batch's timestamp.
	l.Close()
	l = mustOpen(t, fsys, dir, o)
	defer l.Close()
	clk.Advance(61 * time.Minute)
	mustAppend(t, l, batchOf(4, 1, 10, clk.Now().UnixMilli()))
	if segs := l.SegmentBaseOffsets(); fmt.Sprint(segs) != "[0 2 3]" {
		t.Fatalf("segments %v, want [0 2 3]", segs)
	}
}

func testRollAndSegmentOptions(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{})
	defer l.Close()
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if segs := l.SegmentBaseOffsets(); len(segs) != 1 {
		t.Fatalf("Roll of an empty segment made %v", segs)
	}
	mustAppend(t, l, batchOf(1, 2, 10, 1))
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, batchOf(2, 2, 10, 1))
	if segs := l.SegmentBaseOffsets(); fmt.Sprint(segs) != "[0 2]" {
		t.Fatalf("segments %v", segs)
	}
	l.SetSegmentOptions(100, 0)
	mustAppend(t, l, batchOf(3, 2, 100, 1))
	mustAppend(t, l, batchOf(4, 2, 100, 1))
	if segs := l.SegmentBaseOffsets(); fmt.Sprint(segs) != "[0 2 4 6]" {
		t.Fatalf("segments %v after SetSegmentOptions", segs)
	}
	checkContiguous(t, readLog(t, l), 0)
}

func testScanHeaders(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{SegmentBytes: 500})
	defer l.Close()
	for i := range 20 {
		mustAppend(t, l, batchOf(i, 2, 50, int64(i)))
	}
	var seen []int64
	err := l.ScanHeaders(5, func(h BatchHeader) bool {
		seen = append(seen, h.BaseOffset)
		return h.BaseOffset < 30
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{4}
	for o := int64(6); o <= 30; o += 2 {
		want = append(want, o)
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("scanned %v, want %v", seen, want)
	}
	n := 0
	if err := l.ScanHeaders(-5, func(BatchHeader) bool { n++; return true }); err != nil || n != 20 {
		t.Fatalf("full scan saw %d, %v", n, err)
	}
	if err := l.ScanHeaders(40, func(BatchHeader) bool { t.Fatal("called at hw"); return true }); err != nil {
		t.Fatal(err)
	}
}

func testAppendRejectsBadFraming(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{MaxBatchBytes: 1000})
	defer l.Close()
	good := batchOf(1, 1, 10, 1)
	badMagic := append([]byte(nil), good...)
	badMagic[posMagic] = 1
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":     {nil, ErrCorruptBatch},
		"short":     {good[:30], ErrCorruptBatch},
		"truncated": {good[:len(good)-1], ErrCorruptBatch},
		"trailing":  {append(append([]byte(nil), good...), 1, 2, 3), ErrCorruptBatch},
		"magic":     {badMagic, ErrCorruptBatch},
		"too large": {batchOf(2, 1, 2000, 1), ErrBatchTooLarge},
	} {
		if _, err := l.Append(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: Append = %v, want %v", name, err, c.want)
		}
	}
	if hw := l.HighWatermark(); hw != 0 {
		t.Fatalf("rejected appends moved hw to %d", hw)
	}
	// Two batches in one call: both land, offsets rewritten in place.
	two := append(batchOf(3, 2, 10, 1), batchOf(4, 3, 10, 1)...)
	a := mustAppend(t, l, two)
	if a.BaseOffset != 0 || a.LastOffset != 4 {
		t.Fatalf("offsets %d..%d", a.BaseOffset, a.LastOffset)
	}
	if hs, err := ValidateBatches(two, 0); err != nil || hs[1].BaseOffset != 2 {
		t.Fatalf("caller's bytes not rewritten: %v %v", hs, err)
	}
}

func testSyncPolicies(t *testing.T, fsys FS, dir string) {
	for _, p := range []SyncPolicy{SyncInterval, SyncNever} {
		sub := fmt.Sprintf("%s/p%d", dir, p)
		l := mustOpen(t, fsys, sub, Options{Sync: p, SyncInterval: 5 * time.Millisecond})
		for i := range 20 {
			mustAppend(t, l, batchOf(i, 1, 30, 1))
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if hw := l.HighWatermark(); hw != 20 {
			t.Fatalf("policy %d: hw %d", p, hw)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, fsys, sub, Options{Sync: p})
		if n := len(readLog(t, l)); n != 20 {
			t.Fatalf("policy %d: %d batches after reopen", p, n)
		}
		l.Close()
	}
}

func testStrayFiles(t *testing.T, fsys FS, dir string) {
	if err := fsys.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	writeFileBytes(t, fsys, dir+"/"+checkpointName+tmpSuffix, []byte("junk"))
	writeFileBytes(t, fsys, segPath(dir, 0, logSuffix+tmpSuffix), []byte("junk"))
	writeFileBytes(t, fsys, segPath(dir, 500, indexSuffix), []byte("orphan index"))
	writeFileBytes(t, fsys, segPath(dir, 0, logSuffix), nil) // zero-length segment
	l := mustOpen(t, fsys, dir, Options{})
	names, _ := fsys.ReadDir(dir)
	for _, n := range names {
		if n == segmentName(500, indexSuffix) || len(n) > 4 && n[len(n)-4:] == tmpSuffix {
			t.Fatalf("stray file %s survived Open (%v)", n, names)
		}
	}
	mustAppend(t, l, batchOf(1, 1, 10, 1))
	if n := len(readLog(t, l)); n != 1 {
		t.Fatalf("%d batches", n)
	}
	l.Close()
}

func testDelete(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, fsys, dir, Options{})
	mustAppend(t, l, batchOf(1, 1, 10, 1))
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.ReadDir(dir); !isNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
	if _, err := l.Append(batchOf(1, 1, 10, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Delete: %v", err)
	}
}
