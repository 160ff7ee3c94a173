package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// decodeRecords parses the uncompressed records of a batch (test only).
func decodeRecords(t *testing.T, batch []byte) (values [][]byte, deltas []int64) {
	t.Helper()
	b := batch[batchHeaderSize:]
	next := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			t.Fatalf("bad varint")
		}
		b = b[n:]
		return v
	}
	for len(b) > 0 {
		length := next()
		rest := b[length:]
		if b[0] != 0 {
			t.Fatalf("record attributes %d", b[0])
		}
		b = b[1:]
		if ts := next(); ts != 0 {
			t.Fatalf("timestamp delta %d", ts)
		}
		deltas = append(deltas, next())
		if k := next(); k != -1 {
			t.Fatalf("key length %d", k)
		}
		vl := next()
		values = append(values, b[:vl])
		b = b[vl:]
		if h := next(); h != 0 {
			t.Fatalf("header count %d", h)
		}
		if len(b) != len(rest) {
			t.Fatalf("record length mismatch")
		}
	}
	return values, deltas
}

func TestBuildBatch(t *testing.T) {
	recs := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte("x"), 300)}
	b := BuildBatch(42, 1234, recs)
	hs, err := ValidateBatches(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := hs[0]
	want := BatchHeader{
		BaseOffset: 42, Length: int32(len(b) - 12), PartitionLeaderEpoch: -1, Magic: 2, CRC: h.CRC,
		LastOffsetDelta: 2, FirstTimestamp: 1234, MaxTimestamp: 1234, ProducerID: -1, ProducerEpoch: -1,
		BaseSequence: -1, NumRecords: 3,
	}
	if h != want {
		t.Fatalf("header %+v\nwant   %+v", h, want)
	}
	if h.LastOffset() != 44 || h.Size() != len(b) {
		t.Fatalf("LastOffset %d Size %d", h.LastOffset(), h.Size())
	}
	values, deltas := decodeRecords(t, b)
	for i := range recs {
		if !bytes.Equal(values[i], recs[i]) || deltas[i] != int64(i) {
			t.Fatalf("record %d: %q delta %d", i, values[i], deltas[i])
		}
	}
	if p, err := ParseBatchHeader(b); err != nil || p != h {
		t.Fatalf("ParseBatchHeader = %+v, %v", p, err)
	}
	if _, err := ValidateBatches(BuildBatch(0, 0, nil), 0); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("empty batch validated: %v", err)
	}
}

// resealed fixes the CRC after a mutation.
func resealed(b []byte) []byte {
	binary.BigEndian.PutUint32(b[posCRC:], batchCRC(b))
	return b
}

func TestValidateBatchesRejects(t *testing.T) {
	good := BuildBatch(0, 1, [][]byte{[]byte("hello"), []byte("world")})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		b    []byte
		max  int
		want error
	}{
		{"empty", nil, 0, ErrCorruptBatch},
		{"short header", good[:60], 0, ErrCorruptBatch},
		{"truncated", good[:len(good)-1], 0, ErrCorruptBatch},
		{"trailing bytes", append(append([]byte(nil), good...), 0), 0, ErrCorruptBatch},
		{"too large", good, len(good) - 1, ErrBatchTooLarge},
		{"length below 49", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[posLength:], 48); return b }), 0, ErrCorruptBatch},
		{"negative length", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[posLength:], 0x80000000); return b }), 0, ErrCorruptBatch},
		{"huge length", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[posLength:], 0x7fffffff); return b }), 0, ErrCorruptBatch},
		{"magic 1", mut(func(b []byte) []byte { b[posMagic] = 1; return resealed(b) }), 0, ErrCorruptBatch},
		{"bad crc", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 0, ErrCorruptBatch},
		{"negative count", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[posRecordCount:], 0xffffffff); return resealed(b) }), 0, ErrCorruptBatch},
		{"zero count", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[posRecordCount:], 0); return resealed(b) }), 0, ErrCorruptBatch},
		{"negative delta", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[posLastOffsetDelta:], 0xffffffff)
			return resealed(b)
		}), 0, ErrCorruptBatch},
		{"delta mismatch", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[posLastOffsetDelta:], 5); return resealed(b) }), 0, ErrCorruptBatch},
		{"count too big", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[posRecordCount:], 1000)
			binary.BigEndian.PutUint32(b[posLastOffsetDelta:], 999)
			return resealed(b)
		}), 0, ErrCorruptBatch},
		{"codec 7", mut(func(b []byte) []byte { b[posAttributes+1] |= 7; return resealed(b) }), 0, ErrCorruptBatch},
	}
	for _, c := range cases {
		if _, err := ValidateBatches(c.b, c.max); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// CRC does not cover the base offset: rewriting it keeps a batch valid.
	moved := mut(func(b []byte) []byte { putBaseOffset(b, 1<<40); return b })
	if _, err := ValidateBatches(append(moved, good...), len(good)); err != nil {
		t.Fatalf("two batches, base offset rewritten: %v", err)
	}
	// A compressed batch may hold any count of records per delta.
	gz := mut(func(b []byte) []byte { b[posAttributes+1] |= 1; return resealed(b) })
	if _, err := ValidateBatches(gz, 0); err != nil {
		t.Fatalf("gzip batch: %v", err)
	}
	if _, err := ParseBatchHeader(good[:60]); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("ParseBatchHeader short: %v", err)
	}
}

// FuzzValidateBatches: never panic, never accept something inconsistent.
func FuzzValidateBatches(f *testing.F) {
	one := BuildBatch(0, 1, [][]byte{[]byte("k")})
	two := append(BuildBatch(5, 2, [][]byte{[]byte("a"), []byte("bb")}), one...)
	f.Add(one, 0)
	f.Add(two, 100)
	f.Add(one[:61], 0)
	f.Add(append(one, 0, 0, 0), 0)
	f.Add([]byte{}, 0)
	f.Add(bytes.Repeat([]byte{0xff}, 70), 1<<20)
	f.Fuzz(func(t *testing.T, b []byte, maxBatch int) {
		hs, err := ValidateBatches(b, maxBatch)
		if _, perr := ParseBatchHeader(b); perr == nil && len(b) < batchHeaderSize {
			t.Fatal("ParseBatchHeader accepted a short input")
		}
		if err != nil {
			if !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrBatchTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		total := 0
		for _, h := range hs {
			if h.Magic != 2 || h.Length < minBatchLength || h.NumRecords < 1 || h.LastOffsetDelta < 0 {
				t.Fatalf("accepted bad header %+v", h)
			}
			if maxBatch > 0 && h.Size() > maxBatch {
				t.Fatalf("accepted batch of %d over %d", h.Size(), maxBatch)
			}
			total += h.Size()
		}
		if total != len(b) {
			t.Fatalf("headers cover %d of %d bytes", total, len(b))
		}
	})
}
