package broker

import (
	"encoding/binary"
	"errors"

	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"github.com/sluice-mq/sluice/internal/storage"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// partitionStorage is a replicated partition's Raft log: the entries not
// yet dropped by compaction from the DiskStorage, and before them the
// entries rebuilt from the segment log through the replica index, back to
// the first batch the segment log still holds (replica_index.go). Raft
// asks for old entries only to send them to a follower that is behind;
// one older than that gets the DiskStorage's snapshot.
type partitionStorage struct {
	*multiraft.DiskStorage
	r *replica
}

var _ multiraft.Storage = (*partitionStorage)(nil)

// firstHeld is the first index the segment log can still give, or the
// DiskStorage's first when the segment log is not open yet.
func (s *partitionStorage) firstHeld(diskFirst uint64) uint64 {
	p := s.r.p
	if p == nil || s.r.idx == nil {
		return diskFirst
	}
	return min(diskFirst, s.r.idx.firstHeld(p.log.StartOffset()))
}

func (s *partitionStorage) FirstIndex() (uint64, error) {
	first, err := s.DiskStorage.FirstIndex()
	if err != nil {
		return 0, err
	}
	return s.firstHeld(first), nil
}

// Snapshot is what Raft sends a follower that needs entries from before
// FirstIndex: the state just before the first entry the segment log still
// gives, rather than the DiskStorage's (taken at the last checkpoint),
// which would have the follower start its log at the checkpoint, without
// the records between the log start and there that the other replicas
// hold: a new replica would lack them, and a new member of a quorum queue
// its unsettled messages. A quorum queue's snapshot carries its ack record
// as it is now: the settles of the entries after the snapshot too, which
// applying them again changes nothing. The configuration is the
// DiskStorage snapshot's: the entries after the snapshot change it again
// as they are applied, ending where the leader's is.
func (s *partitionStorage) Snapshot() (*raftpb.Snapshot, error) {
	snap, err := s.DiskStorage.Snapshot()
	if err != nil || s.r.p == nil || s.r.idx == nil {
		return snap, err
	}
	md := snap.GetMetadata()
	index, term, end := md.GetIndex(), md.GetTerm(), decodeReplSnapshot(snap.GetData())
	if index == 0 {
		return snap, nil // none yet: Raft still has every entry
	}
	first, err := s.FirstIndex()
	if err != nil {
		return nil, err
	}
	if first <= index {
		rec, err := s.r.idx.get(first)
		if err != nil {
			return snap, nil // the checkpoint's, as before
		}
		t, err := s.r.idx.term(first - 1)
		if err != nil {
			return snap, nil
		}
		index, term, end = first-1, t, rec.first
	}
	var acks []byte
	if s.r.qacks != nil {
		acks = s.r.qacks.Entries()
	}
	return &raftpb.Snapshot{
		Data:     encodeReplSnapshotAcks(end, acks),
		Metadata: &raftpb.SnapshotMetadata{ConfState: md.GetConfState(), Index: &index, Term: &term},
	}, nil
}

func (s *partitionStorage) Term(i uint64) (uint64, error) {
	first, err := s.DiskStorage.FirstIndex()
	if err != nil {
		return 0, err
	}
	if i+1 >= first {
		return s.DiskStorage.Term(i)
	}
	if i+1 < s.firstHeld(first) {
		return 0, raft.ErrCompacted
	}
	t, err := s.r.idx.term(i)
	if err != nil {
		// Raft takes any other error for a broken log; the index is
		// derived data, so the follower that needed this gets the
		// snapshot instead.
		s.r.log.Warn("replicated partition: reading the term of an old entry failed", "index", i, "err", err)
		return 0, raft.ErrCompacted
	}
	return t, nil
}

func (s *partitionStorage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	first, err := s.DiskStorage.FirstIndex()
	if err != nil {
		return nil, err
	}
	if lo >= first {
		return s.DiskStorage.Entries(lo, hi, maxSize)
	}
	if lo < s.firstHeld(first) {
		return nil, raft.ErrCompacted
	}
	var (
		out  []*raftpb.Entry
		size uint64
	)
	for i := lo; i < min(hi, first); i++ {
		e, err := s.rebuild(i)
		if err != nil {
			s.r.log.Warn("replicated partition: rebuilding an old entry from the segment log failed", "index", i, "err", err)
			return nil, raft.ErrCompacted
		}
		size += uint64(len(e.GetData())) + 16
		if len(out) > 0 && size > maxSize {
			return out, nil
		}
		out = append(out, e)
	}
	if hi > first && size < maxSize {
		more, err := s.DiskStorage.Entries(first, hi, maxSize-size)
		if errors.Is(err, raft.ErrCompacted) {
			return out, nil // compacted meanwhile: what we have is a prefix
		}
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// rebuild makes entry i again from its index record and the segment log:
// its batches as stored (offsets, leader epoch and append time set, which
// applying them again reproduces), with no origin, so that no replica
// answers a produce for it.
func (s *partitionStorage) rebuild(i uint64) (*raftpb.Entry, error) {
	rec, err := s.r.idx.get(i)
	if err != nil {
		return nil, err
	}
	e := &raftpb.Entry{Index: &i, Term: &rec.term, Type: raftpb.EntryNormal.Enum()}
	if rec.kind == kindConf {
		ce, ok := s.r.idx.confEntry(i)
		if !ok {
			return nil, errNoRecord
		}
		e.Type, e.Data = ce.Type, ce.Data
		return e, nil
	}
	if rec.next <= rec.first {
		return e, nil // nothing was appended: an empty entry does the same
	}
	batches, err := readRange(s.r.p.log, rec.first, rec.next)
	if err != nil {
		return nil, err
	}
	at := int64(-1)
	if len(batches) >= batchHeaderBytes && binary.BigEndian.Uint16(batches[posAttributes:])&batchLogAppendBit != 0 {
		at = int64(binary.BigEndian.Uint64(batches[posMaxTimestamp:]))
	}
	e.Data = appendReplEntry(make([]byte, 0, replEntryHeader+len(batches)), 0, 0, at, batches)
	marker := binary.BigEndian.Uint16(batches[posAttributes:])&controlBit != 0
	switch {
	case rec.kind == kindKept && marker:
		e.Data[0] = replKeptMarkerVersion
	case rec.kind == kindKept:
		e.Data[0] = replKeptVersion
	case marker:
		e.Data[0] = replMarkerVersion // a transaction marker
	}
	return e, nil
}

// readRange returns the whole batches holding offsets first up to next,
// which must be exactly what the log holds there: a range that retention
// or compaction has cut is not rebuilt (the follower gets the snapshot).
func readRange(l PartitionLog, first, next int64) ([]byte, error) {
	var out []byte
	for at := first; at < next; {
		// One whole batch a read (Read returns at least one, whatever
		// maxBytes): asking for a MiB read that much for every small
		// entry rebuilt, a thousand times what a quorum queue's entry
		// of one message needs, all under the group's lock (a catch-up
		// of thousands of entries stalled a group for minutes on a
		// slow disk).
		b, err := l.Read(at, 1)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, storage.ErrOffsetOutOfRange
		}
		for len(b) >= batchHeaderBytes {
			base := int64(binary.BigEndian.Uint64(b))
			size := 12 + int(binary.BigEndian.Uint32(b[posLength:]))
			if size < batchHeaderBytes || size > len(b) {
				break
			}
			last := base + int64(binary.BigEndian.Uint32(b[posLastOffsetDelta:]))
			if base != at || last >= next {
				if base >= next {
					break
				}
				return nil, errRangeCut
			}
			out = append(out, b[:size]...)
			at = last + 1
			b = b[size:]
			if at >= next {
				break
			}
		}
	}
	return out, nil
}

var errRangeCut = errors.New("broker: the segment log no longer holds an entry's batches as written")

// posLastOffsetDelta is where a RecordBatch v2 header keeps its last
// offset delta.
const posLastOffsetDelta = 23
