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
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// DiskStorage is a durable [Storage] for one group in one directory: a
// write-ahead log of entries and HardStates (raft.wal) and the latest
// snapshot (raft.snap). Reads are served from a raft.MemoryStorage that
// mirrors the files, so raft never waits on the disk to read its log; the
// files exist to rebuild it after a restart. The formats are described in
// docs/clustering.md ("Metadata on Raft").
//
// Save and Compact are called by one goroutine at a time (the Host's
// worker for the group); the raft.Storage reads may run concurrently with
// them.
type DiskStorage struct {
	*raft.MemoryStorage

	dir    string
	mu     sync.Mutex // guards the fields below (writers only)
	wal    *os.File
	failed error
	buf    []byte
}

// Storage file names and limits.
const (
	walName  = "raft.wal"
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
)

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
	os.Remove(filepath.Join(dir, walName+tmpExt))
	os.Remove(filepath.Join(dir, snapName+tmpExt))
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
	path := filepath.Join(dir, walName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.rewriteWAL(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	valid, err := replayWAL(data, s.MemoryStorage)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
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
	s.wal = f
	if err := s.commitSnapshot(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
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

// replayWAL applies the records of a log file to ms and returns the length
// of its valid prefix. It stops at the first torn or corrupt record; a
// record whose checksum holds but does not decode, or an entry that would
// leave a gap, is an error (written by a newer or broken version).
func replayWAL(data []byte, ms *raft.MemoryStorage) (valid int, err error) {
	if len(data) < len(walMagic) || string(data[:len(walMagic)]) != walMagic {
		return 0, errors.New("multiraft: not a raft log (bad magic or version)")
	}
	off := len(walMagic)
	for {
		typ, payload, n := nextWALRecord(data[off:])
		if n == 0 {
			return off, nil
		}
		switch typ {
		case recHardState:
			var hs raftpb.HardState
			if err := proto.Unmarshal(payload, &hs); err != nil {
				return 0, fmt.Errorf("multiraft: hard state at offset %d: %w", off, err)
			}
			last, _ := ms.LastIndex()
			if hs.GetCommit() > last {
				return 0, fmt.Errorf("multiraft: hard state at offset %d commits %d past the last entry %d", off, hs.GetCommit(), last)
			}
			if err := ms.SetHardState(&hs); err != nil {
				return 0, err
			}
		case recEntry:
			e := new(raftpb.Entry)
			if err := proto.Unmarshal(payload, e); err != nil {
				return 0, fmt.Errorf("multiraft: entry at offset %d: %w", off, err)
			}
			first, _ := ms.FirstIndex()
			last, _ := ms.LastIndex()
			if e.GetIndex() > last+1 || e.GetIndex() == 0 {
				return 0, fmt.Errorf("multiraft: entry %d at offset %d leaves a gap after %d", e.GetIndex(), off, last)
			}
			if e.GetIndex() >= first {
				if err := ms.Append([]*raftpb.Entry{e}); err != nil {
					return 0, err
				}
			}
		default:
			return 0, fmt.Errorf("multiraft: unknown record type %d at offset %d", typ, off)
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

// Save makes hs, ents and snap durable, in that order of precedence: a
// snapshot first (it replaces the log before it), then the entries, then
// the HardState, with one write and one fsync for the entries and the
// HardState. It returns only once they are on disk; a failure stops the
// storage for good (ErrStorageFailed).
func (s *DiskStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if snap != nil && !raft.IsEmptySnap(snap) {
		if err := s.MemoryStorage.ApplySnapshot(snap); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return err
		}
		// The snapshot replaces the log before it: write it, then the
		// log without what it replaced.
		err := s.persistSnapshot()
		if err == nil {
			err = s.rewriteWAL()
		}
		if err != nil {
			return s.fail(err)
		}
	}
	buf := s.buf[:0]
	var err error
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
		// Only entries, a vote or a term must be on disk before Raft
		// goes on; a HardState that moves nothing but the commit index
		// (every round of a busy leader) may be lost and learned again
		// from the leader, as etcd does (raft.MustSync).
		prev, _, _ := s.MemoryStorage.InitialState()
		if hs == nil || raft.MustSync(hs, prev, len(ents)) {
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
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		if err := s.MemoryStorage.SetHardState(hs); err != nil {
			return err
		}
	}
	return nil
}

// Compact records a snapshot of the state machine as of index (which it
// has applied) with conf state cs, and drops the log up to it: the
// snapshot file is replaced, then the log is rewritten with what follows.
// A follower that needs the dropped entries is sent this snapshot.
func (s *DiskStorage) Compact(index uint64, cs *raftpb.ConfState, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if _, err := s.MemoryStorage.CreateSnapshot(index, cs, data); err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return err
	}
	if err := s.persistSnapshot(); err != nil {
		return s.fail(err)
	}
	if err := s.MemoryStorage.Compact(index); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	if err := s.rewriteWAL(); err != nil {
		return s.fail(err)
	}
	return nil
}

// persistSnapshot writes the memory storage's snapshot to raft.snap.
func (s *DiskStorage) persistSnapshot() error {
	snap, err := s.MemoryStorage.Snapshot()
	if err != nil {
		return err
	}
	b, err := encodeSnapFile(snap)
	if err != nil {
		return err
	}
	return WriteFileAtomic(s.dir, snapName, b)
}

// rewriteWAL replaces raft.wal with the entries and HardState the memory
// storage holds (a new file, fsynced, renamed over the old one).
func (s *DiskStorage) rewriteWAL() error {
	if err := s.commitSnapshot(); err != nil {
		return err
	}
	buf := []byte(walMagic)
	first, _ := s.MemoryStorage.FirstIndex()
	last, _ := s.MemoryStorage.LastIndex()
	if last >= first {
		ents, err := s.MemoryStorage.Entries(first, last+1, ^uint64(0))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if buf, err = appendWALRecord(buf, recEntry, e); err != nil {
				return err
			}
		}
	}
	hs, _, err := s.MemoryStorage.InitialState()
	if err != nil {
		return err
	}
	if !raft.IsEmptyHardState(hs) {
		if buf, err = appendWALRecord(buf, recHardState, hs); err != nil {
			return err
		}
	}
	if err := WriteFileAtomic(s.dir, walName, buf); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, walName), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if s.wal != nil {
		s.wal.Close()
	}
	s.wal = f
	return nil
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

// WriteFileAtomic writes dir/name through a temporary file: write, fsync,
// rename, fsync the directory. A crash leaves the old file or the new one.
// (The broker's replicated partitions write their checkpoint with it.)
func WriteFileAtomic(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+tmpExt)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
