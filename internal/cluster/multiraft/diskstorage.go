package multiraft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/sluice-mq/sluice/internal/fsutil"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// DiskStorage is a raft.Storage kept on disk in one directory: a
// write-ahead log of entries and HardStates in segment files
// (raft-<seq>.wal) and the latest snapshot (raft.snap). Reads are served
// from a raft.MemoryStorage that mirrors the files, so raft never waits on
// the disk to read its log; the files exist to rebuild it after a restart.
// The formats are described in docs/clustering.md ("Metadata on Raft").
//
// A compaction does not rewrite the log: it starts a new segment and
// deletes the older segments whose entries the snapshot covers, holding up
// Save only for the in-memory part (file creation and fsyncs happen
// outside the lock Save takes).
//
// Save and Compact are called by one goroutine at a time each (the Host's
// worker for the group, and the Host or a state machine's syncer for
// Compact); the raft.Storage reads may run concurrently with them.
type DiskStorage struct {
	*raft.MemoryStorage

	dir string
	// compactMu serializes Compact and the snapshot installs of Save
	// (the segment switches); taken before mu.
	compactMu sync.Mutex

	mu     sync.Mutex // guards the fields below (writers only)
	wal    *os.File   // the active segment; replaced under compactMu and mu
	seq    uint64     // the active segment's sequence number
	last   uint64     // the highest entry index written to the active segment
	old    []walSegment
	failed error
	buf    []byte
	// hs is the HardState last saved (or replayed). Save and Compact
	// read it here, not through MemoryStorage.InitialState, which reads
	// the memory storage's fields without its lock while its Snapshot,
	// called by Raft and by Compact, writes one of them under it.
	hs *raftpb.HardState
}

// walSegment is a segment that is no longer written to.
type walSegment struct {
	seq  uint64
	last uint64 // the highest entry index it holds (0: none)
}

// Storage file names and limits.
const (
	walName  = "raft.wal" // segment 0, the single log file of format version 1
	snapName = "raft.snap"
	tmpExt   = ".tmp"

	walMagic = "SLRAFT\x00\x01" // magic and format version 1

	walRecHeader = 9 // length (4), CRC-32C of type+payload (4), type (1)
	// maxWALRecord bounds one record: an entry or a HardState. Entries
	// are bounded by what the state machines propose (metadata commands
	// are at most 16 MiB).
	maxWALRecord = 64 << 20

	recHardState = 1
	recEntry     = 2
	// recReset starts the segment written after a snapshot was received
	// (payload: its raftpb.SnapshotMetadata): the entries of the older
	// segments are replaced by that snapshot.
	recReset = 3
)

// segmentName is the file name of segment seq.
func segmentName(seq uint64) string {
	if seq == 0 {
		return walName
	}
	return fmt.Sprintf("raft-%016x.wal", seq)
}

// parseSegmentName returns the sequence number of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	if name == walName {
		return 0, true
	}
	var seq uint64
	if len(name) != len("raft-0000000000000000.wal") {
		return 0, false
	}
	if _, err := fmt.Sscanf(name, "raft-%016x.wal", &seq); err != nil || seq == 0 || segmentName(seq) != name {
		return 0, false
	}
	return seq, true
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrStorageFailed wraps the write or fsync error that stopped a
// DiskStorage: after a failed fsync nothing later may be acknowledged.
var ErrStorageFailed = errors.New("multiraft: raft storage failed")

// OpenDiskStorage opens or creates the storage in dir, loading the
// snapshot and replaying the log. A torn or corrupt tail of the log is
// truncated (it was never acknowledged, since Save fsyncs before it
// returns); anything else that does not decode is an error.
func OpenDiskStorage(dir string) (*DiskStorage, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, de := range des {
		if filepath.Ext(de.Name()) == tmpExt {
			os.Remove(filepath.Join(dir, de.Name()))
			continue
		}
		if seq, ok := parseSegmentName(de.Name()); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	s := &DiskStorage{MemoryStorage: raft.NewMemoryStorage(), dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, snapName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		snap, err := decodeSnapFile(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, snapName), err)
		}
		if err := s.MemoryStorage.ApplySnapshot(snap); err != nil {
			return nil, err
		}
	}
	if len(seqs) == 0 {
		f, err := createSegment(dir, 1)
		if err != nil {
			return nil, err
		}
		s.wal, s.seq = f, 1
		return s, nil
	}
	for i, seq := range seqs {
		path := filepath.Join(dir, segmentName(seq))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		valid, last, err := replayWAL(data, s)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if i < len(seqs)-1 {
			// An older segment may end in a torn HardState that only
			// moved the commit index (not fsynced); entries were.
			f.Close()
			s.old = append(s.old, walSegment{seq: seq, last: last})
			continue
		}
		if valid < len(data) {
			if err := f.Truncate(int64(valid)); err != nil {
				f.Close()
				return nil, err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, err
			}
		}
		if _, err := f.Seek(int64(valid), io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		s.wal, s.seq, s.last = f, seq, last
	}
	if err := s.commitSnapshot(); err != nil {
		s.wal.Close()
		return nil, err
	}
	s.hs, _, _ = s.MemoryStorage.InitialState() // nothing else uses s yet
	return s, nil
}

// createSegment creates segment seq in dir, holding only the magic, and
// makes it durable with its directory entry, so that what Save fsyncs
// into it later is found after a crash.
func createSegment(dir string, seq uint64) (*os.File, error) {
	path := filepath.Join(dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = f.Write([]byte(walMagic))
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = fsutil.SyncDir(dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// discardSegment closes and deletes a segment created but not used.
func discardSegment(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// commitSnapshot raises the HardState's commit index to the snapshot's
// index if it is below: a snapshot holds only committed entries, and the
// log may hold an older HardState than the snapshot (a crash between
// writing raft.snap and the HardState that came with it), which Raft
// would refuse.
func (s *DiskStorage) commitSnapshot() error {
	hs, _, err := s.MemoryStorage.InitialState()
	if err != nil || raft.IsEmptyHardState(hs) {
		return err
	}
	snap, err := s.MemoryStorage.Snapshot()
	if err != nil {
		return err
	}
	if idx := snap.GetMetadata().GetIndex(); hs.GetCommit() < idx {
		hs = proto.Clone(hs).(*raftpb.HardState)
		hs.Commit = proto.Uint64(idx)
		return s.MemoryStorage.SetHardState(hs)
	}
	return nil
}

// replayWAL applies the records of a log segment to s's memory storage
// and returns the length of its valid prefix and the highest entry index
// it holds. It stops at the first torn or corrupt record; a record whose
// checksum holds but does not decode, or an entry that would leave a gap,
// is an error (written by a newer or broken version).
func replayWAL(data []byte, s *DiskStorage) (valid int, last uint64, err error) {
	if len(data) < len(walMagic) || string(data[:len(walMagic)]) != walMagic {
		return 0, 0, errors.New("multiraft: not a raft log (bad magic or version)")
	}
	off := len(walMagic)
	for {
		typ, payload, n := nextWALRecord(data[off:])
		if n == 0 {
			return off, last, nil
		}
		ms := s.MemoryStorage
		switch typ {
		case recHardState:
			var hs raftpb.HardState
			if err := proto.Unmarshal(payload, &hs); err != nil {
				return 0, 0, fmt.Errorf("multiraft: hard state at offset %d: %w", off, err)
			}
			lastIndex, _ := ms.LastIndex()
			if hs.GetCommit() > lastIndex {
				return 0, 0, fmt.Errorf("multiraft: hard state at offset %d commits %d past the last entry %d", off, hs.GetCommit(), lastIndex)
			}
			if err := ms.SetHardState(&hs); err != nil {
				return 0, 0, err
			}
		case recEntry:
			e := new(raftpb.Entry)
			if err := proto.Unmarshal(payload, e); err != nil {
				return 0, 0, fmt.Errorf("multiraft: entry at offset %d: %w", off, err)
			}
			first, _ := ms.FirstIndex()
			lastIndex, _ := ms.LastIndex()
			if e.GetIndex() > lastIndex+1 || e.GetIndex() == 0 {
				return 0, 0, fmt.Errorf("multiraft: entry %d at offset %d leaves a gap after %d", e.GetIndex(), off, lastIndex)
			}
			if e.GetIndex() >= first {
				if err := ms.Append([]*raftpb.Entry{e}); err != nil {
					return 0, 0, err
				}
			}
			last = max(last, e.GetIndex())
		case recReset:
			// A snapshot was received here: the log before is replaced
			// by it (the snapshot file holds it or a later one).
			var md raftpb.SnapshotMetadata
			if err := proto.Unmarshal(payload, &md); err != nil {
				return 0, 0, fmt.Errorf("multiraft: reset at offset %d: %w", off, err)
			}
			snap, _ := ms.Snapshot()
			if snap.GetMetadata().GetIndex() < md.GetIndex() {
				return 0, 0, fmt.Errorf("multiraft: reset at offset %d to snapshot %d, but the snapshot file holds %d", off, md.GetIndex(), snap.GetMetadata().GetIndex())
			}
			fresh := raft.NewMemoryStorage()
			if !raft.IsEmptySnap(snap) {
				if err := fresh.ApplySnapshot(snap); err != nil {
					return 0, 0, err
				}
			}
			s.MemoryStorage = fresh
		default:
			return 0, 0, fmt.Errorf("multiraft: unknown record type %d at offset %d", typ, off)
		}
		off += n
	}
}

// nextWALRecord decodes the record at the start of b. n is 0 when b does
// not start with a whole, intact record (the end of the log, or a torn or
// corrupt tail). The length is checked against the cap and the bytes
// present before anything is read.
func nextWALRecord(b []byte) (typ byte, payload []byte, n int) {
	if len(b) < walRecHeader {
		return 0, nil, 0
	}
	length := binary.BigEndian.Uint32(b[0:4])
	if length > maxWALRecord || int64(length) > int64(len(b)-walRecHeader) {
		return 0, nil, 0
	}
	sum := binary.BigEndian.Uint32(b[4:8])
	body := b[8 : walRecHeader+int(length)]
	if crc32.Checksum(body, castagnoli) != sum || body[0] == 0 {
		return 0, nil, 0
	}
	return body[0], body[1:], walRecHeader + int(length)
}

// appendWALRecord frames one record.
func appendWALRecord(dst []byte, typ byte, m proto.Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, typ)
	dst, err := proto.MarshalOptions{}.MarshalAppend(dst, m)
	if err != nil {
		return dst[:start], err
	}
	length := len(dst) - start - walRecHeader
	if length > maxWALRecord {
		return dst[:start], fmt.Errorf("multiraft: record of %d bytes exceeds %d", length, maxWALRecord)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(length))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst, nil
}

// LogSnapshot is the snapshot the log continues from (LogSnapshotter):
// MemoryStorage's Snapshot, also when a type that embeds DiskStorage
// gives followers another.
func (s *DiskStorage) LogSnapshot() (*raftpb.Snapshot, error) { return s.MemoryStorage.Snapshot() }

// Save makes hs, ents and snap durable, in that order of precedence: a
// snapshot first (it replaces the log before it), then the entries, then
// the HardState, with one write and one fsync for the entries and the
// HardState. It returns only once they are on disk; a failure stops the
// storage for good (ErrStorageFailed).
func (s *DiskStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	installing := snap != nil && !raft.IsEmptySnap(snap)
	var next *os.File
	if installing {
		// A received snapshot replaces the whole log: it goes to its
		// file, and a new segment starts with a reset record; the older
		// segments are deleted once that is on disk.
		s.compactMu.Lock()
		defer s.compactMu.Unlock()
		var err error
		if next, err = createSegment(s.dir, s.seq+1); err != nil {
			return s.failLocked(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		if next != nil {
			discardSegment(next)
		}
		return s.failed
	}
	buf := s.buf[:0]
	var err error
	if installing {
		if err := s.MemoryStorage.ApplySnapshot(snap); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			discardSegment(next)
			return err
		}
		if err := s.persistSnapshot(); err != nil {
			discardSegment(next)
			return s.fail(err)
		}
		s.wal.Close()
		s.old = append(s.old, walSegment{seq: s.seq, last: ^uint64(0)})
		s.wal, s.seq, s.last = next, s.seq+1, 0
		if buf, err = appendWALRecord(buf, recReset, snap.GetMetadata()); err != nil {
			return err
		}
	}
	for _, e := range ents {
		if buf, err = appendWALRecord(buf, recEntry, e); err != nil {
			return err
		}
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		if buf, err = appendWALRecord(buf, recHardState, hs); err != nil {
			return err
		}
	}
	if len(buf) > 0 {
		if _, err := s.wal.Write(buf); err != nil {
			return s.fail(err)
		}
		// Only entries, a vote, a term or a reset must be on disk
		// before Raft goes on; a HardState that moves nothing but the
		// commit index (every round of a busy leader) may be lost and
		// learned again from the leader, as etcd does (raft.MustSync).
		if hs == nil || installing || raft.MustSync(hs, s.hs, len(ents)) {
			if err := s.wal.Sync(); err != nil {
				return s.fail(err)
			}
		}
	}
	if cap(buf) < 8<<20 {
		s.buf = buf
	}
	if len(ents) > 0 {
		if err := s.MemoryStorage.Append(ents); err != nil {
			return err
		}
		s.last = max(s.last, ents[len(ents)-1].GetIndex())
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		if err := s.MemoryStorage.SetHardState(hs); err != nil {
			return err
		}
		s.hs = hs
	}
	if installing {
		s.removeOld(^uint64(0))
	}
	return nil
}

// Compact records a snapshot of the state machine as of index (which it
// has applied) with conf state cs, and drops the log up to it: a new
// segment starts, the snapshot file is replaced, and the older segments
// whose entries are all at or below index are deleted. A follower that
// needs the dropped entries is sent this snapshot. Save is held up only
// while the memory storage is compacted and the segments switch.
func (s *DiskStorage) Compact(index uint64, cs *raftpb.ConfState, data []byte) error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if snap, _ := s.MemoryStorage.Snapshot(); index <= snap.GetMetadata().GetIndex() {
		return nil
	}
	next, err := createSegment(s.dir, s.seq+1)
	if err != nil {
		return s.failLocked(err)
	}
	s.mu.Lock()
	if s.failed != nil {
		s.mu.Unlock()
		discardSegment(next)
		return s.failed
	}
	snap, err := s.MemoryStorage.CreateSnapshot(index, cs, data)
	var snapFile []byte
	if err == nil {
		snapFile, err = encodeSnapFile(snap)
	}
	if err == nil {
		err = s.MemoryStorage.Compact(index)
	}
	if err != nil {
		s.mu.Unlock()
		discardSegment(next)
		return err
	}
	// The new segment starts with the HardState, so that the older ones
	// may go.
	hs := s.hs
	var buf []byte
	if !raft.IsEmptyHardState(hs) {
		if buf, err = appendWALRecord(nil, recHardState, hs); err == nil {
			_, err = next.Write(buf)
		}
		if err != nil {
			s.mu.Unlock()
			discardSegment(next)
			return s.fail(err)
		}
	}
	prev := s.wal
	s.old = append(s.old, walSegment{seq: s.seq, last: s.last})
	s.wal, s.seq, s.last = next, s.seq+1, 0
	s.mu.Unlock()

	// The previous segment may end in a commit-only HardState written
	// without an fsync: sync it before it is closed, so that no later
	// replay stops short in it.
	err = prev.Sync()
	if cerr := prev.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsutil.WriteFileAtomic(s.dir, snapName, snapFile)
	}
	if err == nil && len(buf) > 0 {
		err = next.Sync()
	}
	if err != nil {
		return s.failLocked(err)
	}
	s.mu.Lock()
	s.removeOld(index)
	s.mu.Unlock()
	return nil
}

// removeOld deletes the segments that are no longer written to and whose
// entries are all at or below index; the snapshot holding them and a
// later HardState are on disk. s.mu is held.
func (s *DiskStorage) removeOld(index uint64) {
	kept := s.old[:0]
	for _, seg := range s.old {
		if seg.last <= index || index == ^uint64(0) {
			if err := os.Remove(filepath.Join(s.dir, segmentName(seg.seq))); err == nil || errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		kept = append(kept, seg)
	}
	s.old = kept
}

// persistSnapshot writes the memory storage's snapshot to raft.snap.
func (s *DiskStorage) persistSnapshot() error {
	snap, err := s.MemoryStorage.Snapshot()
	if err != nil {
		return err
	}
	return s.writeSnapshot(snap)
}

func (s *DiskStorage) writeSnapshot(snap *raftpb.Snapshot) error {
	b, err := encodeSnapFile(snap)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(s.dir, snapName, b)
}

// failLocked is fail for a caller that does not hold s.mu.
func (s *DiskStorage) failLocked(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail(err)
}

func (s *DiskStorage) fail(err error) error {
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: %w", ErrStorageFailed, err)
	}
	return s.failed
}

// Close closes the log file. The memory storage stays readable.
func (s *DiskStorage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wal == nil {
		return nil
	}
	err := s.wal.Close()
	s.wal = nil
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: closed", ErrStorageFailed)
	}
	return err
}

// The snapshot file: magic and version (8 bytes), CRC-32C of the rest (4),
// then the raftpb.Snapshot (protobuf).
const snapMagic = "SLRSNP\x00\x01"

func encodeSnapFile(snap *raftpb.Snapshot) ([]byte, error) {
	b := append([]byte(snapMagic), 0, 0, 0, 0)
	b, err := proto.MarshalOptions{}.MarshalAppend(b, snap)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(b[len(snapMagic):], crc32.Checksum(b[len(snapMagic)+4:], castagnoli))
	return b, nil
}

func decodeSnapFile(b []byte) (*raftpb.Snapshot, error) {
	if len(b) < len(snapMagic)+4 || string(b[:len(snapMagic)]) != snapMagic {
		return nil, errors.New("multiraft: not a raft snapshot (bad magic or version)")
	}
	body := b[len(snapMagic)+4:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(snapMagic):]) {
		return nil, errors.New("multiraft: raft snapshot checksum mismatch")
	}
	snap := new(raftpb.Snapshot)
	if err := proto.Unmarshal(body, snap); err != nil {
		return nil, fmt.Errorf("multiraft: raft snapshot: %w", err)
	}
	return snap, nil
}
