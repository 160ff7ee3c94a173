package offsets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// FuzzReplay scans arbitrary bytes as a log body. It must not panic; a
// malformed record is ErrCorrupt; the valid prefix must scan again to the
// same offsets with nothing left over.
func FuzzReplay(f *testing.F) {
	var good []byte
	for _, r := range []record{
		{kind: kindCommit, group: "g", commits: []Commit{c("a", 0, 1), c("b", 2, 3)}},
		{kind: kindDelete, group: "g", partitions: []Partition{{"a", 0}}},
		{kind: kindDeleteGroup, group: "h"},
		{kind: kindDeleteTopic, topic: "b"},
		{kind: kindCommitSeq, group: "g", commits: []Commit{{Seq: 7, Topic: "a", Partition: 1, Offset: 2}}},
		{kind: kindNextSeq, next: 9},
	} {
		good = appendRecord(good, &r)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(bytes.Clone(good), "garbage"...))
	f.Add([]byte{0, 0, 0, 5, 1, 2, 3, 4, 1, 0, 1, 'g', 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		replay := func(b []byte) (state, int64, error, error) {
			st := make(state)
			valid, stop, err := scanRecords(bytes.NewReader(b), int64(len(b)), func(p []byte) error {
				r, err := decodeRecord(p)
				if err != nil {
					return err
				}
				st.apply(&r)
				return nil
			})
			return st, valid, stop, err
		}
		st, valid, stop, err := replay(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if (stop == nil) != (valid == int64(len(data))) {
			t.Fatalf("valid %d of %d, stop %v", valid, len(data), stop)
		}
		st2, valid2, stop2, err2 := replay(data[:valid])
		if err2 != nil || stop2 != nil || valid2 != valid {
			t.Fatalf("prefix replay: valid %d stop %v err %v", valid2, stop2, err2)
		}
		var a, b []byte
		for _, r := range st.records() {
			a = appendRecord(a, &r)
		}
		for _, r := range st2.records() {
			b = appendRecord(b, &r)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("replay is not deterministic")
		}
	})
}
