package storage

import (
	"errors"
	"testing"
)

// A sidecar reads back while its segment is unchanged; it reads as absent
// when torn, when written for another size, after a rewrite of its
// segment; it goes with its segment, and recovery removes an orphan. The
// active segment takes none.
func TestSegmentSidecar(t *testing.T) {
	for name, factory := range map[string]fsFactory{"os": osFactory, "mem": memFactory} {
		t.Run(name, func(t *testing.T) {
			fsys, dir := factory(t)
			l, _ := compactFixture(t, fsys, dir, 200)
			segs := l.Segments()
			s0, s1, active := segs[0], segs[1], segs[len(segs)-1]
			if _, ok := l.SegmentSidecar(s1.Base); ok {
				t.Fatal("a sidecar before any was written")
			}
			if err := l.SetSegmentSidecar(active.Base, active.Bytes, []byte("x")); !errors.Is(err, ErrNoSegment) {
				t.Fatalf("sidecar of the active segment: %v, want ErrNoSegment", err)
			}
			if err := l.SetSegmentSidecar(s1.Base, s1.Bytes+1, []byte("x")); !errors.Is(err, ErrNoSegment) {
				t.Fatalf("sidecar for another size: %v, want ErrNoSegment", err)
			}
			for _, s := range []SegmentInfo{s0, s1} {
				if err := l.SetSegmentSidecar(s.Base, s.Bytes, []byte("summary")); err != nil {
					t.Fatal(err)
				}
			}
			if b, ok := l.SegmentSidecar(s1.Base); !ok || string(b) != "summary" {
				t.Fatalf("sidecar read %q %v", b, ok)
			}

			// Torn: the last byte gone.
			path := segPath(dir, s1.Base, sidecarSuffix)
			whole := readFileBytes(t, fsys, path)
			writeFileBytes(t, fsys, path, whole[:len(whole)-1])
			if _, ok := l.SegmentSidecar(s1.Base); ok {
				t.Fatal("a torn sidecar read as valid")
			}
			// Stale: written for the segment before a rewrite.
			writeFileBytes(t, fsys, path, whole)
			if _, err := l.CompactSegment(s1.Base, keepEvery(3)); err != nil {
				t.Fatal(err)
			}
			if _, ok := l.SegmentSidecar(s1.Base); ok {
				t.Fatal("the sidecar survived a rewrite of its segment")
			}
			writeFileBytes(t, fsys, path, whole) // as if a crash had left it
			if _, ok := l.SegmentSidecar(s1.Base); ok {
				t.Fatal("a sidecar of the segment before its rewrite read as valid")
			}

			// It goes with its segment; recovery removes an orphan.
			if err := l.DeleteRecordsBefore(s1.Base); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.OpenFile(segPath(dir, s0.Base, sidecarSuffix), false); !isNotExist(err) {
				t.Fatalf("sidecar of a deleted segment: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			writeFileBytes(t, fsys, segPath(dir, s0.Base, sidecarSuffix), whole)
			l = mustOpen(t, fsys, dir, Options{SegmentBytes: 4 << 10})
			defer l.Close()
			if _, err := fsys.OpenFile(segPath(dir, s0.Base, sidecarSuffix), false); !isNotExist(err) {
				t.Fatalf("orphan sidecar after recovery: %v", err)
			}
		})
	}
}

// FuzzSidecar: decoding never panics, and what encodes decodes.
func FuzzSidecar(f *testing.F) {
	f.Add(encodeSidecar(123, []byte("abc")))
	f.Add([]byte("SLSC"))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeSidecar(b)
		data, size, ok := decodeSidecar(encodeSidecar(int64(len(b)), b))
		if !ok || size != int64(len(b)) || string(data) != string(b) {
			t.Fatalf("round trip of %q: %q %d %v", b, data, size, ok)
		}
	})
}
