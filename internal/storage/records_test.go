package storage

import (
	"bytes"
	"testing"
)

func TestRecordBatchRoundTrip(t *testing.T) {
	recs := []Record{
		{Key: []byte("rk"), Value: []byte("body"), Headers: []RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "nil"}}},
		{Value: []byte{}},
	}
	b := BuildRecordBatch(42, 1000, recs)
	if _, err := ValidateBatches(b, 1<<20); err != nil {
		t.Fatal(err)
	}
	var got []Record
	var offs []int64
	n, err := ReadRecords(b, func(off, ts int64, r Record) bool {
		if ts != 1000 {
			t.Errorf("ts %d", ts)
		}
		offs = append(offs, off)
		got = append(got, r)
		return true
	})
	if err != nil || n != len(b) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if len(got) != 2 || offs[0] != 42 || offs[1] != 43 {
		t.Fatalf("got %v at %v", got, offs)
	}
	if string(got[0].Key) != "rk" || string(got[0].Value) != "body" || len(got[0].Headers) != 2 ||
		got[0].Headers[0].Key != "a" || !bytes.Equal(got[0].Headers[0].Value, []byte("1")) || got[0].Headers[1].Value != nil {
		t.Fatalf("record 0: %+v", got[0])
	}
	if got[1].Key != nil || got[1].Value == nil || len(got[1].Value) != 0 {
		t.Fatalf("record 1: %+v", got[1])
	}
}

func FuzzReadRecords(f *testing.F) {
	f.Add(BuildRecordBatch(0, 1, []Record{{Key: []byte("k"), Value: []byte("v"), Headers: []RecordHeader{{Key: "h"}}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadRecords(b, func(int64, int64, Record) bool { return true })
	})
}

// BuildRecordBatch sizes its buffer exactly, including multi-byte varints
// (offset deltas past 63, values past 63 bytes, many headers), and what it
// writes reads back.
func TestRecordBatchExactSize(t *testing.T) {
	var recs []Record
	for i := range 300 {
		r := Record{Value: bytes.Repeat([]byte{byte(i)}, i*37)}
		if i%3 != 0 {
			r.Key = []byte("key")
		}
		for j := range i % 70 {
			r.Headers = append(r.Headers, RecordHeader{Key: string(rune('a' + j%26)), Value: bytes.Repeat([]byte{1}, j)})
		}
		recs = append(recs, r)
	}
	b := BuildRecordBatch(0, 1, recs)
	if len(b) != cap(b) {
		t.Fatalf("built %d bytes in a buffer of %d", len(b), cap(b))
	}
	i := 0
	if _, err := ReadRecords(b, func(off, _ int64, r Record) bool {
		w := recs[i]
		if off != int64(i) || !bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) ||
			!bytes.Equal(r.Value, w.Value) || len(r.Headers) != len(w.Headers) {
			t.Fatalf("record %d read back wrong", i)
		}
		i++
		return true
	}); err != nil || i != len(recs) {
		t.Fatalf("read %d of %d records: %v", i, len(recs), err)
	}
}
