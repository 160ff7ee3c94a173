package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

func TestLogHeader(t *testing.T) {
	h := appendLogHeader(nil, 42)
	if len(h) != logHeaderSize {
		t.Fatalf("header is %d bytes", len(h))
	}
	if base, err := parseLogHeader(h); err != nil || base != 42 {
		t.Fatalf("parse = %d, %v", base, err)
	}
	damage := map[string]func(b []byte){
		"magic":   func(b []byte) { b[0] = 'X' },
		"version": func(b []byte) { b[7] = 9 },
		"base":    func(b []byte) { b[15]++ },
		"crc":     func(b []byte) { b[19]++ },
	}
	for name, f := range damage {
		b := appendLogHeader(nil, 42)
		f(b)
		if _, err := parseLogHeader(b); err == nil {
			t.Errorf("%s damaged: accepted", name)
		}
	}
	if _, err := parseLogHeader(h[:10]); err == nil {
		t.Error("short header accepted")
	}
	if _, err := parseLogHeader(appendLogHeader(nil, 0)); err == nil {
		t.Error("base 0 accepted")
	}
}

func TestScanRecords(t *testing.T) {
	r1 := appendRecord(nil, []byte("one"))
	r2 := appendRecord(nil, []byte("second"))
	both := append(append([]byte(nil), r1...), r2...)
	withLen := func(b []byte, n uint32) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint32(b, n)
		return b
	}
	tests := []struct {
		name  string
		in    []byte
		want  []string
		valid int
		stop  error
	}{
		{"empty", nil, nil, 0, nil},
		{"two", both, []string{"one", "second"}, len(both), nil},
		{"short header", append(bytes.Clone(r1), 0, 0, 0), []string{"one"}, len(r1), errShortRecord},
		{"short payload", both[:len(both)-1], []string{"one"}, len(r1), errShortRecord},
		{"zero length", append(bytes.Clone(r1), make([]byte, 12)...), []string{"one"}, len(r1), errRecordLen},
		{"over max", withLen(r1, MaxRecordSize+1), nil, 0, errRecordLen},
		{"bad crc", append(bytes.Clone(r1), withLen(r2, 5)...), []string{"one"}, len(r1), errRecordCRC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			valid, stop, err := scanRecords(bytes.NewReader(tt.in), int64(len(tt.in)), func(p []byte) error {
				got = append(got, string(p))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if valid != int64(tt.valid) || !errors.Is(stop, tt.stop) || len(got) != len(tt.want) {
				t.Fatalf("valid %d stop %v records %q; want %d %v %q", valid, stop, got, tt.valid, tt.stop, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("record %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestScanDoesNotTrustLength: a length prefix just under the cap, with
// little data behind it, must not make the scanner allocate the length.
func TestScanDoesNotTrustLength(t *testing.T) {
	in := make([]byte, 64)
	binary.BigEndian.PutUint32(in, MaxRecordSize-1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	valid, stop, err := scanRecords(bytes.NewReader(in), int64(len(in)), func([]byte) error { return nil })
	runtime.ReadMemStats(&after)
	if valid != 0 || !errors.Is(stop, errShortRecord) || err != nil {
		t.Fatalf("valid %d stop %v err %v", valid, stop, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("scanning 64 bytes allocated %d bytes", grew)
	}
}
