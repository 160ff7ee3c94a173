package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func ackEntries(pairs ...[2]int64) []byte {
	var b []byte
	for _, p := range pairs {
		b = appendAckEntry(b, p[0], p[1])
	}
	return b
}

func openAckRecord(t testing.TB, dir string) *AckRecord {
	t.Helper()
	a, err := OpenAckRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Applied entries come back from Entries as the set and the largest mark,
// and again after a reopen from the file.
func TestAckRecordApplyReopen(t *testing.T) {
	dir := t.TempDir()
	a := openAckRecord(t, dir)
	for _, b := range [][]byte{
		ackEntries([2]int64{0, 5}, [2]int64{7, 9}),
		ackEntries([2]int64{12, math.MinInt64}), // a mark
		ackEntries([2]int64{5, 7}, [2]int64{10, math.MinInt64}),
		nil,
	} {
		if err := a.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	want := ackEntries([2]int64{0, 9}, [2]int64{12, math.MinInt64})
	if got := a.Entries(); !bytes.Equal(got, want) {
		t.Fatalf("Entries %x, want %x", got, want)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openAckRecord(t, dir)
	defer b.Close()
	if got := b.Entries(); !bytes.Equal(got, want) {
		t.Fatalf("after reopen Entries %x, want %x", got, want)
	}

	b.TrimBelow(4)
	want = ackEntries([2]int64{4, 9}, [2]int64{12, math.MinInt64})
	if got := b.Entries(); !bytes.Equal(got, want) {
		t.Fatalf("after TrimBelow(4) Entries %x, want %x", got, want)
	}
}

// Input that is not whole entries with good CRCs is refused whole: nothing
// applied, nothing written.
func TestAckRecordRefusesMalformed(t *testing.T) {
	dir := t.TempDir()
	a := openAckRecord(t, dir)
	if err := a.Apply(ackEntries([2]int64{0, 3})); err != nil {
		t.Fatal(err)
	}
	good := ackEntries([2]int64{10, 20}, [2]int64{30, math.MinInt64})
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	for name, b := range map[string][]byte{
		"torn":    good[:len(good)-1],
		"short":   good[:7],
		"bad CRC": badCRC,
		"extra":   append(bytes.Clone(good), 0),
	} {
		if err := a.Apply(b); !errors.Is(err, ErrBadAckEntries) {
			t.Errorf("%s: Apply = %v, want ErrBadAckEntries", name, err)
		}
	}
	want := ackEntries([2]int64{0, 3})
	if got := a.Entries(); !bytes.Equal(got, want) {
		t.Fatalf("after refused input Entries %x, want %x", got, want)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(good); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Apply after Close = %v", err)
	}
	b := openAckRecord(t, dir)
	defer b.Close()
	if got := b.Entries(); !bytes.Equal(got, want) {
		t.Fatalf("refused input reached the file: Entries %x, want %x", got, want)
	}
}

// A file grown well past its set is rewritten from the set.
func TestAckRecordCompacts(t *testing.T) {
	dir := t.TempDir()
	a := openAckRecord(t, dir)
	defer a.Close()
	one := ackEntries([2]int64{0, 1})
	many := bytes.Repeat(one, (2<<20)/ackEntryLen) // the same settle, 2 MiB of it
	if err := a.Apply(many); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, ackFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != ackHeaderLen+ackEntryLen {
		t.Fatalf("ack file is %d bytes after compaction, want %d", fi.Size(), ackHeaderLen+ackEntryLen)
	}
	if got := a.Entries(); !bytes.Equal(got, one) {
		t.Fatalf("Entries %x, want %x", got, one)
	}
}

// FuzzAckRecordApply feeds arbitrary bytes, as from another node, to
// Apply: it never panics and refuses exactly what is not whole good
// entries. The same bytes, cut into 16-byte (from, to) pairs and given
// good CRCs, are then applied as entries: every range is settled, the
// largest mark kept, and the state's Entries, applied afresh or reopened
// from the file, give the same Entries.
func FuzzAckRecordApply(f *testing.F) {
	f.Add([]byte{})
	f.Add(ackEntries([2]int64{0, 10}))
	f.Add(ackEntries([2]int64{5, math.MinInt64}, [2]int64{0, 3}, [2]int64{2, 8}))
	f.Add(ackEntries([2]int64{math.MinInt64, math.MaxInt64}, [2]int64{-4, -9}))
	f.Add(ackEntries([2]int64{3, 3}, [2]int64{1, 0}))
	f.Add(ackEntries([2]int64{0, 10})[:19])
	f.Add(append(ackEntries([2]int64{0, 10}), 1, 2, 3))
	bad := ackEntries([2]int64{0, 10})
	bad[3] ^= 0x40
	f.Add(bad)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		a := openAckRecord(t, dir)
		defer a.Close()
		if err := a.Apply(ackEntries([2]int64{100, 200}, [2]int64{7, math.MinInt64})); err != nil {
			t.Fatal(err)
		}
		before := a.Entries()
		err := a.Apply(data)
		whole := len(data)%ackEntryLen == 0 && validAckEntries(data) == len(data)
		switch {
		case whole && err != nil:
			t.Fatalf("whole good entries refused: %v", err)
		case !whole && !errors.Is(err, ErrBadAckEntries):
			t.Fatalf("malformed input: Apply = %v, want ErrBadAckEntries", err)
		case !whole && !bytes.Equal(a.Entries(), before):
			t.Fatal("malformed input changed the record")
		}

		var enc []byte
		for p := data; len(p) >= 16; p = p[16:] {
			enc = appendAckEntry(enc, int64(binary.BigEndian.Uint64(p)), int64(binary.BigEndian.Uint64(p[8:])))
		}
		if err := a.Apply(enc); err != nil {
			t.Fatalf("good entries refused: %v", err)
		}
		got := a.Entries()
		if len(got)%ackEntryLen != 0 || validAckEntries(got) != len(got) {
			t.Fatalf("Entries are not whole good entries: %x", got)
		}
		set, mark := decodeAcks(got)
		for i := 1; i < len(set.r); i++ {
			if set.r[i-1].to >= set.r[i].from {
				t.Fatalf("Entries' ranges overlap or touch: %v", set.r)
			}
		}
		for _, p := range [][]byte{enc, data} {
			if !whole && len(p) == len(data) {
				continue
			}
			for ; len(p) >= ackEntryLen; p = p[ackEntryLen:] {
				from, to := int64(binary.BigEndian.Uint64(p)), int64(binary.BigEndian.Uint64(p[8:]))
				if from > to && mark < from {
					t.Fatalf("mark %d below an applied mark %d", mark, from)
				}
				if from < to && set.count(from, to) != to-from {
					t.Fatalf("applied range [%d,%d) missing from %v", from, to, set.r)
				}
			}
		}

		fresh := openAckRecord(t, t.TempDir())
		defer fresh.Close()
		if err := fresh.Apply(got); err != nil {
			t.Fatal(err)
		}
		if again := fresh.Entries(); !bytes.Equal(again, got) {
			t.Fatalf("Entries applied afresh give %x, want %x", again, got)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		b := openAckRecord(t, dir)
		defer b.Close()
		if again := b.Entries(); !bytes.Equal(again, got) {
			t.Fatalf("reopened Entries %x, want %x", again, got)
		}
	})
}
