package storage

import (
	"bytes"
	"errors"
	"testing"
)

// regionBytes reads a region through its copying reader and, on the real
// file system, through the file it names, and checks that both agree.
func regionBytes(t *testing.T, r *Region) []byte {
	t.Helper()
	got := make([]byte, r.Len())
	if err := r.ReadAt(got, 0); err != nil {
		t.Fatalf("Region.ReadAt: %v", err)
	}
	if f, pos, ok := r.File(); ok {
		direct := make([]byte, r.Len())
		if _, err := f.ReadAt(direct, pos); err != nil {
			t.Fatalf("read the region's file: %v", err)
		}
		if !bytes.Equal(direct, got) {
			t.Fatalf("the region's file holds other bytes than Region.ReadAt returns")
		}
	}
	return got
}

// visibleBatches cuts data after its last whole batch ending below end.
func visibleBatches(t *testing.T, data []byte, end int64) []byte {
	t.Helper()
	hs, err := ValidateBatches(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range hs {
		if h.LastOffset() >= end {
			break
		}
		n += h.Size()
	}
	return data[:n]
}

// A region is exactly what Read returns, cut at the visible end, for any
// offset (batch starts, middles, gaps), limit and end, on both file systems.
func TestReadRegionMatchesRead(t *testing.T) {
	for name, factory := range map[string]func(*testing.T) (FS, string){"os": osFactory, "mem": memFactory} {
		t.Run(name, func(t *testing.T) {
			fsys, dir := factory(t)
			l := mustOpen(t, fsys, dir, Options{SegmentBytes: 8 << 10, IndexIntervalBytes: 512})
			defer l.Close()
			for i := range 120 {
				mustAppend(t, l, batchOf(i, 1+i%4, 50+i%200, 1_700_000_000_000+int64(i)))
			}
			if _, err := l.CompactSegment(0, keepEvery(2)); err != nil { // gaps in the first segment
				t.Fatal(err)
			}
			hw := l.HighWatermark()
			checked := 0
			for off := int64(0); off < hw; off += 3 {
				for _, maxBytes := range []int{1, 300, 2000, 1 << 20} {
					for _, end := range []int64{off, off + 1, off + 10, hw} {
						data, err := l.Read(off, maxBytes)
						if err != nil {
							t.Fatal(err)
						}
						want := visibleBatches(t, data, end)
						copyUnder := []int{0, 500, 100000}[checked%3]
						r, err := l.ReadRegion(off, maxBytes, end, copyUnder)
						if err != nil {
							t.Fatal(err)
						}
						if len(want) == 0 {
							if r != nil {
								t.Fatalf("ReadRegion(%d, %d, %d) = %d bytes, Read has none visible", off, maxBytes, end, r.Len())
							}
							continue
						}
						if r == nil {
							t.Fatalf("ReadRegion(%d, %d, %d) = nil, want %d bytes", off, maxBytes, end, len(want))
						}
						if got := regionBytes(t, r); !bytes.Equal(got, want) {
							t.Fatalf("ReadRegion(%d, %d, %d): %d bytes differ from Read's %d", off, maxBytes, end, len(got), len(want))
						}
						hs, _ := ValidateBatches(want, 0)
						if r.End() != hs[len(hs)-1].LastOffset()+1 {
							t.Fatalf("ReadRegion(%d, %d, %d).End() = %d, want %d", off, maxBytes, end, r.End(), hs[len(hs)-1].LastOffset()+1)
						}
						if inMemory := r.Bytes() != nil; inMemory != (r.Len() < copyUnder) {
							t.Fatalf("ReadRegion(%d, %d, %d, copyUnder %d): %d bytes, in memory %v", off, maxBytes, end, copyUnder, r.Len(), inMemory)
						}
						if r.Bytes() != nil && !bytes.Equal(r.Bytes(), want) {
							t.Fatalf("ReadRegion(%d, %d, %d): bytes in memory differ from Read's", off, maxBytes, end)
						}
						if r.ReadAt(make([]byte, 1), int64(r.Len())) == nil {
							t.Fatal("ReadAt past the region's end succeeded")
						}
						r.Release()
						checked++
					}
				}
			}
			if checked < 100 {
				t.Fatalf("only %d regions checked", checked)
			}
			if _, err := l.ReadRegion(hw+1, 100, hw+1, 0); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("ReadRegion past the high watermark: %v, want ErrOffsetOutOfRange", err)
			}
			if r, err := l.ReadRegion(hw, 100, hw, 0); r != nil || err != nil {
				t.Fatalf("ReadRegion at the high watermark: %v, %v; want nothing", r, err)
			}
		})
	}
}

// A held region keeps its bytes while the cleaner replaces its segment and
// retention deletes it: the file stays open until Release, and a new
// read sees the new state.
func TestRegionOutlivesCompactionAndDeletion(t *testing.T) {
	for name, factory := range map[string]func(*testing.T) (FS, string){"os": osFactory, "mem": memFactory} {
		t.Run(name, func(t *testing.T) {
			fsys, dir := factory(t)
			l, _ := compactFixture(t, fsys, dir, 120)
			defer l.Close()
			segs := l.Segments()
			r0, err := l.ReadRegion(0, 1<<20, l.HighWatermark(), 0)
			if err != nil || r0 == nil {
				t.Fatalf("region of segment 0: %v, %v", r0, err)
			}
			before0 := regionBytes(t, r0)
			r1, err := l.ReadRegion(segs[1].Base, 1<<20, l.HighWatermark(), 0)
			if err != nil || r1 == nil {
				t.Fatalf("region of segment 1: %v, %v", r1, err)
			}
			before1 := regionBytes(t, r1)

			if _, err := l.CompactSegment(0, keepEvery(5)); err != nil {
				t.Fatal(err)
			}
			if err := l.DeleteRecordsBefore(segs[2].Base); err != nil {
				t.Fatal(err)
			}
			if l.StartOffset() != segs[2].Base {
				t.Fatalf("log start %d, want %d: segment 1 not deleted", l.StartOffset(), segs[2].Base)
			}
			if got := regionBytes(t, r0); !bytes.Equal(got, before0) {
				t.Fatal("a held region changed when the cleaner replaced its segment")
			}
			if got := regionBytes(t, r1); !bytes.Equal(got, before1) {
				t.Fatal("a held region changed when retention deleted its segment")
			}
			r0.Release()
			r1.Release()
			if _, err := l.ReadRegion(segs[1].Base, 1<<20, l.HighWatermark(), 0); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("region below the new log start: %v, want ErrOffsetOutOfRange", err)
			}
		})
	}
}
