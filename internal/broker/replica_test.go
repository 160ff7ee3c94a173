package broker

import (
	"bytes"
	"testing"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/meta"
)

// FuzzDecodeReplEntry: a Raft entry of a replicated partition comes from
// another node; decoding it never panics, and what encodes decodes back.
func FuzzDecodeReplEntry(f *testing.F) {
	f.Add(appendReplEntry(nil, 1, 2, -1, []byte("batches")))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		origin, id, at, batches, err := decodeReplEntry(b)
		if err != nil {
			return
		}
		if again := appendReplEntry(nil, origin, id, at, batches); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, decoded from %x", again, b)
		}
	})
}

// FuzzDecodeReplSnapshot: a Raft snapshot's data comes from another node;
// decoding it never panics, the two versions written decode back, and
// anything else is an empty snapshot's (end 0, no acks).
func FuzzDecodeReplSnapshot(f *testing.F) {
	f.Add(encodeReplSnapshot(77))
	f.Add(encodeReplSnapshotAcks(77, make([]byte, 40)))
	f.Add([]byte{2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		end, acks := decodeReplSnapshotAcks(b)
		switch {
		case len(b) == 9 && b[0] == 1:
			if !bytes.Equal(encodeReplSnapshot(end), b) || acks != nil {
				t.Fatalf("version 1 %x decoded as %d %x", b, end, acks)
			}
		case len(b) >= 9 && b[0] == 2:
			if !bytes.Equal(encodeReplSnapshotAcks(end, acks), b) {
				t.Fatalf("version 2 %x decoded as %d %x", b, end, acks)
			}
		default:
			if end != 0 || acks != nil {
				t.Fatalf("%x decoded as %d %x", b, end, acks)
			}
		}
	})
}

// FuzzDecodeAppliedCheckpoint: a checkpoint read back after a crash may
// be anything; only what was written is taken.
func FuzzDecodeAppliedCheckpoint(f *testing.F) {
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, ok := decodeAppliedCheckpoint(b); ok && len(b) != 20 {
			t.Fatalf("accepted %x", b)
		}
	})
}

func TestAppliedCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, _, ok := readAppliedCheckpoint(dir); ok {
		t.Fatal("a missing checkpoint read as present")
	}
	if err := writeAppliedCheckpoint(dir, 42, 1234); err != nil {
		t.Fatal(err)
	}
	if i, e, ok := readAppliedCheckpoint(dir); !ok || i != 42 || e != 1234 {
		t.Fatalf("read %d %d %v", i, e, ok)
	}
}

func TestPartitionGroupNeverReserved(t *testing.T) {
	seen := map[cluster.GroupID]bool{}
	var id meta.TopicID
	for i := range int32(1000) {
		id[0] = byte(i)
		g := partitionGroup(id, i%7)
		if g == 0 || g == cluster.MetaGroup {
			t.Fatalf("group %d", g)
		}
		seen[g] = true
	}
	if len(seen) < 990 {
		t.Fatalf("%d distinct groups of 1000", len(seen))
	}
}

func TestStampLeaderEpoch(t *testing.T) {
	b := make([]byte, 61+10)
	b[11] = byte(len(b) - 12)
	stampLeaderEpoch(b, 7)
	if b[15] != 7 {
		t.Fatalf("epoch not stamped: %x", b[12:16])
	}
}
