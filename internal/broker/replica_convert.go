package broker

// A partition of one replica is a plain log, with no Raft group (replica.go,
// replicated). When a move gives it more replicas or another node (the
// metadata marks it Grouped: meta/reassign.go), the node holding that plain
// log turns it into a Raft group of one voter, itself, before opening it
// as a replicated partition; the move then goes on as for any group:
// the new replicas join as learners and are filled from the segment log.
//
// The group is made as if it had been created with this node as its one
// voter and had then been compacted: entry 1 was its creation (the
// configuration, in the snapshot), entries 2 onwards are the log's
// batches, a run of whole batches each, in the replica index (term 1, and
// kept: applied with the leader epoch the batches hold, not the term, so
// that the copies are the holder's byte for byte); the
// Raft log holds only a snapshot at the last of them, with the log's end
// offset, and the applied checkpoint says the segment log holds them all.
// A new replica is then sent the snapshot of index 1 (its log starts
// where the first entry held whole starts, partitionStorage.Snapshot) and
// entries 2 onwards rebuilt from the segment log, which it applies
// through the same code a follower applies produces with, so that its
// offsets are the holder's. Offsets must follow each other for that: a
// batch that does not start where the one before ended (a compacted log's
// gap) starts the entries afresh, and the records before it are not
// copied to new replicas (ReassignmentCheck refuses compacted topics).
//
// The files are made in a temporary directory and renamed into place, so
// that a crash leaves either the plain log or the whole group; a node that
// finds the plain log again converts it again.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"github.com/sluice-mq/sluice/internal/fsutil"
	"github.com/sluice-mq/sluice/internal/storage"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// convertEntryBytes bounds the batches of one entry made from a plain log
// (a follower is sent entries of up to a MiB per message).
const convertEntryBytes = 256 << 10

// convertsPlainLog reports whether this node must turn its plain log of
// partition i of tp into a Raft group before opening it replicated: the
// partition is Grouped, this node held it alone before the move (or
// holds it alone, with no move), and its Raft log does not exist yet.
func (b *Broker) convertsPlainLog(tp *Topic, i int32, rdir string) bool {
	if !tp.IsGrouped(i) {
		return false
	}
	before := tp.Replicas[i]
	if mv, ok := tp.Reassignments[i]; ok {
		before = mv.Before()
	}
	if !slices.Equal(before, []int32{int32(b.opts.NodeID)}) {
		return false
	}
	_, err := os.Stat(rdir)
	return errors.Is(err, fs.ErrNotExist)
}

// convertPlainLog makes rdir, the Raft log of a group of one voter (self)
// whose entries are the batches of the plain segment log in dir (see the
// file comment).
func convertPlainLog(dir, rdir string, opts storage.Options, self cluster.NodeID) (entries int, end int64, err error) {
	recs, end, err := scanPlainLog(dir, opts)
	if err != nil {
		return 0, 0, err
	}
	tmp := rdir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp) // nothing left once renamed
	last := uint64(len(recs)) + 1
	store, err := multiraft.OpenDiskStorage(tmp)
	if err != nil {
		return 0, 0, err
	}
	snap := &raftpb.Snapshot{
		Data: encodeReplSnapshot(end),
		Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(last), Term: proto.Uint64(1),
			ConfState: &raftpb.ConfState{Voters: []uint64{uint64(self)}}},
	}
	hs := &raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(uint64(self)), Commit: proto.Uint64(last)}
	err = store.Save(hs, nil, snap)
	if err = errors.Join(err, store.Close()); err != nil {
		return 0, 0, err
	}
	idx, err := openReplicaIndex(tmp, 2, 1, 1)
	if err != nil {
		return 0, 0, err
	}
	err = idx.add(recs, nil)
	if err == nil {
		err = idx.sync()
	}
	if err = errors.Join(err, idx.close()); err != nil {
		return 0, 0, err
	}
	if err := writeAppliedCheckpoint(tmp, last, end); err != nil {
		return 0, 0, err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return 0, 0, err
	}
	if err := os.Rename(tmp, rdir); err != nil {
		return 0, 0, err
	}
	if err := fsutil.SyncDir(filepath.Dir(rdir)); err != nil {
		return 0, 0, err
	}
	return len(recs), end, nil
}

// scanPlainLog reads the batch boundaries of the plain log in dir and
// returns them as index records of term 1 (runs of whole batches of at
// most convertEntryBytes, from the last gap in the offsets on; the batch
// holding the log start alone, if it starts before) and the
// log's end offset. It makes the log durable first: the applied
// checkpoint will say that it holds every record.
func scanPlainLog(dir string, opts storage.Options) (recs []indexRecord, end int64, err error) {
	l, err := storage.Open(dir, opts)
	if err != nil {
		return nil, 0, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	if err := l.Sync(); err != nil {
		return nil, 0, err
	}
	start := l.StartOffset()
	end = l.HighWatermark()
	var cur indexRecord
	size := 0
	for at := start; at < end; {
		b, err := l.Read(at, 1<<20)
		if err != nil {
			return nil, 0, err
		}
		from := at
		for len(b) >= batchHeaderBytes {
			base := int64(binary.BigEndian.Uint64(b))
			n := 12 + int(binary.BigEndian.Uint32(b[posLength:]))
			if n < batchHeaderBytes || n > len(b) {
				break
			}
			next := base + int64(binary.BigEndian.Uint32(b[posLastOffsetDelta:])) + 1
			b = b[n:]
			if next <= at {
				continue // before the log start, or read already
			}
			at = next
			if cur.next > cur.first && base != cur.next {
				// A gap: what is before it could not be applied
				// again at the same offsets elsewhere.
				recs, cur = recs[:0], indexRecord{}
			}
			// A batch that holds the log start is an entry of its own: a
			// new replica starts at the first entry held whole.
			if cur.next > cur.first && cur.first >= start && size+n <= convertEntryBytes {
				cur.next, size = next, size+n
				continue
			}
			if cur.next > cur.first {
				recs = append(recs, cur)
			}
			cur, size = indexRecord{term: 1, first: base, next: next, kind: kindKept}, n
		}
		if at == from {
			return nil, 0, fmt.Errorf("plain log %s: no whole batch at offset %d (log end %d)", dir, at, end)
		}
	}
	if cur.next > cur.first {
		recs = append(recs, cur)
	}
	return recs, end, nil
}
