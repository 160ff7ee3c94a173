package broker

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/sluice-mq/sluice/internal/testutil"
)

// TestReplicatedPartitionCompactsItsRaftLog: the syncer checkpoints and
// the Raft log drops what the segment log holds, so that the segment log
// is the only long-term copy. A follower that was down while the leader
// compacted catches up from entries rebuilt from the leader's segment
// log: byte for byte the leader's batches, transaction markers included.
// (A replica that lost its directory is not one Raft can take back: it
// rejoins as a new member, through a reassignment.) A leader restarted after
// compacting resumes from its checkpoint, cutting what it wrote after it.
// DeleteRecords moves the log start of every replica.
func TestReplicatedPartitionCompactsItsRaftLog(t *testing.T) {
	net, dirs, nodes := startReplCluster(t)
	produce := func(l *replNode, b []byte) AppendResult { t.Helper(); return replProduce(t, l, b) }
	l := leaderOf(t, nodes)
	down := followerOf(nodes, l)
	down.stop()
	nodes[down.id-1] = nil

	next := int64(0)
	for seq := int32(0); seq < 40; seq++ {
		if res := produce(l, producerBatch(7, 0, seq*3, 3)); res.BaseOffset != next {
			t.Fatalf("batch %d at %d, want %d", seq, res.BaseOffset, next)
		}
		next += 3
	}
	// A transaction's data and its commit marker, replicated as entries.
	txn := producerBatch(8, 0, 0, 2)
	setAttributes(txn, int16(transactionalBit))
	seal(txn)
	if res := produce(l, txn); res.BaseOffset != next {
		t.Fatalf("transactional batch at %d, want %d", res.BaseOffset, next)
	}
	next += 2
	ap, err := l.p.WriteMarker(8, 0, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ap.Wait(); err != nil {
		t.Fatal(err)
	}
	next++
	if res := produce(l, storage.BuildBatch(0, 1000, [][]byte{[]byte("after")})); res.BaseOffset != next {
		t.Fatalf("batch after the marker at %d, want %d", res.BaseOffset, next)
	}
	next++

	diskFirst := func(n *replNode) uint64 {
		f, err := n.p.repl.store.DiskStorage.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	testutil.WaitFor(t, 10*time.Second, "the leader's Raft log compacted", func() bool { return diskFirst(l) > 40 })

	// The follower that was down comes back: everything it missed is
	// older than the leader's Raft log.
	nodes[down.id-1] = startReplNode(t, net, down.id, dirs[down.id])
	back := nodes[down.id-1]
	want := readBatches(t, l.p)
	for _, n := range nodes {
		testutil.WaitFor(t, 20*time.Second, "a replica catches up from rebuilt entries", func() bool {
			_, hw, _ := n.p.Offsets()
			return hw == next
		})
		if got := readBatches(t, n.p); !bytes.Equal(got, want) {
			t.Fatalf("node %d holds %d bytes unlike the leader's %d", n.id, len(got), len(want))
		}
	}
	if _, _, lso := back.p.Offsets(); lso != next {
		t.Fatalf("the rebuilt replica's last stable offset %d, want %d (the marker closed the transaction)", lso, next)
	}

	// The leader restarts after compacting: it resumes from its
	// checkpoint; what it wrote after the checkpoint is cut and applied
	// again, once.
	l.stop()
	nodes[l.id-1] = nil
	rdir := filepath.Join(dirs[l.id], "topics", "t-0.raft")
	index, end, ok := readAppliedCheckpoint(rdir)
	if !ok || end != next {
		t.Fatalf("checkpoint after close: %d %d %v, want end %d", index, end, ok, next)
	}
	nodes[l.id-1] = startReplNode(t, net, l.id, dirs[l.id])
	again := nodes[l.id-1]
	testutil.WaitFor(t, 20*time.Second, "the restarted leader holds everything", func() bool {
		_, hw, _ := again.p.Offsets()
		return hw == next
	})
	if got := readBatches(t, again.p); !bytes.Equal(got, want) {
		t.Fatalf("restarted node %d holds %d bytes unlike before (%d)", again.id, len(got), len(want))
	}
	l = leaderOf(t, nodes)
	if res := produce(l, storage.BuildBatch(0, 2000, [][]byte{[]byte("last")})); res.BaseOffset != next {
		t.Fatalf("batch after the restart at %d, want %d", res.BaseOffset, next)
	}
	next++

	// DeleteRecords is an entry too: every replica's log starts at the
	// same offset after it (the first segment is the active one here, so
	// only the start moves).
	start, err := l.p.DeleteRecordsBefore(9)
	if err != nil || start != 9 {
		t.Fatalf("DeleteRecordsBefore(9) = %d, %v", start, err)
	}
	for _, n := range nodes {
		testutil.WaitFor(t, 10*time.Second, "every replica's log start moved", func() bool {
			s, hw, _ := n.p.Offsets()
			return s == 9 && hw == next
		})
	}
}

// followerOf returns a node of nodes other than l.
func followerOf(nodes []*replNode, l *replNode) *replNode {
	for _, n := range nodes {
		if n != nil && n != l {
			return n
		}
	}
	return nil
}

// readBatches reads a partition's batches from its start.
func readBatches(t *testing.T, p *Partition) []byte {
	t.Helper()
	start, _, _ := p.Offsets()
	return readBatchesFrom(t, p, start)
}

// readBatchesFrom reads a partition's batches from offset from.
func readBatchesFrom(t *testing.T, p *Partition, from int64) []byte {
	t.Helper()
	var out []byte
	_, hw, _ := p.Offsets()
	for at := from; at < hw; {
		b, err := p.Read(at, 1<<20, ReadUncommitted)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			break
		}
		offs := batchOffsets(t, b)
		at = offs[len(offs)-1][1] + 1
		out = append(out, b...)
	}
	return out
}

// TestReplicatedFollowerResetBySnapshot: a follower that was down while
// the leader deleted records and compacted its Raft log needs entries the
// leader can no longer rebuild; it gets the leader's snapshot and empties
// its own log in place to continue where the snapshot ends (the leader's
// log start), then holds
// the leader's batches from there on, byte for byte, and takes new ones.
func TestReplicatedFollowerResetBySnapshot(t *testing.T) {
	net, dirs, nodes := startReplCluster(t)
	l := leaderOf(t, nodes)
	down := followerOf(nodes, l)
	down.stop()
	nodes[down.id-1] = nil
	next := int64(0)
	for seq := int32(0); seq < 30; seq++ {
		replProduce(t, l, producerBatch(7, 0, seq*3, 3))
		next += 3
	}
	if start, err := l.p.DeleteRecordsBefore(45); err != nil || start != 45 {
		t.Fatalf("DeleteRecordsBefore(45) = %d, %v", start, err)
	}
	for seq := int32(30); seq < 35; seq++ {
		replProduce(t, l, producerBatch(7, 0, seq*3, 3))
		next += 3
	}
	testutil.WaitFor(t, 10*time.Second, "the leader's Raft log compacted past the deletion", func() bool {
		f, err := l.p.repl.store.DiskStorage.FirstIndex()
		return err == nil && f > 35
	})
	nodes[down.id-1] = startReplNode(t, net, down.id, dirs[down.id])
	back := nodes[down.id-1]
	testutil.WaitFor(t, 20*time.Second, "the reset follower catches up", func() bool {
		_, hw, _ := back.p.Offsets()
		return hw == next
	})
	// The snapshot is the state just before the first entry the leader's
	// log holds (partitionStorage.Snapshot), not its last checkpoint: the
	// reset follower holds every record the leader does.
	start, _, _ := back.p.Offsets()
	if start != 45 {
		t.Fatalf("the reset follower's log starts at %d, want the leader's 45", start)
	}
	l = leaderOf(t, nodes)
	for seq := int32(35); seq < 40; seq++ {
		if res := replProduce(t, l, producerBatch(7, 0, seq*3, 3)); res.BaseOffset != next {
			t.Fatalf("a batch after the reset at %d, want %d", res.BaseOffset, next)
		}
		next += 3
	}
	testutil.WaitFor(t, 10*time.Second, "the reset follower takes new batches", func() bool {
		_, hw, _ := back.p.Offsets()
		return hw == next
	})
	want := readBatchesFrom(t, l.p, start)
	if got := readBatchesFrom(t, back.p, start); !bytes.Equal(got, want) || len(got) == 0 {
		t.Fatalf("the reset follower holds %d bytes from %d, the leader %d", len(got), start, len(want))
	}
	// A retry of the last batch is still a duplicate.
	if res := replProduce(t, l, producerBatch(7, 0, 39*3, 3)); res.BaseOffset != next-3 {
		t.Fatalf("a retried batch answered at %d, want the original %d", res.BaseOffset, next-3)
	}
}
