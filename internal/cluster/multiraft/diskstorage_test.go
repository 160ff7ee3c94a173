package multiraft

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func entry(term, index uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Term: proto.Uint64(term), Index: proto.Uint64(index), Type: raftpb.EntryNormal.Enum(), Data: []byte(data)}
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func TestDiskStorageReopens(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(hardState(1, 2, 0), []*raftpb.Entry{entry(1, 1, "a"), entry(1, 2, "b"), entry(1, 3, "c")}, nil); err != nil {
		t.Fatal(err)
	}
	// A new leader overwrites entry 3 and commits.
	if err := s.Save(hardState(2, 3, 3), []*raftpb.Entry{entry(2, 3, "C")}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	hs, _, _ := s.InitialState()
	if hs.GetTerm() != 2 || hs.GetVote() != 3 || hs.GetCommit() != 3 {
		t.Fatalf("hard state after reopen: %v", hs)
	}
	ents, err := s.Entries(1, 4, 1<<20)
	if err != nil || len(ents) != 3 || string(ents[2].GetData()) != "C" || ents[2].GetTerm() != 2 {
		t.Fatalf("entries after reopen: %v %v", ents, err)
	}

	// Compaction keeps what follows the snapshot, across a reopen.
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	if err := s.Compact(2, cs, []byte("state@2")); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	snap, _ := s.Snapshot()
	if snap.GetMetadata().GetIndex() != 2 || string(snap.GetData()) != "state@2" || len(snap.GetMetadata().GetConfState().GetVoters()) != 3 {
		t.Fatalf("snapshot after reopen: %v", snap)
	}
	if first, _ := s.FirstIndex(); first != 3 {
		t.Fatalf("first index %d, want 3", first)
	}
	if last, _ := s.LastIndex(); last != 3 {
		t.Fatalf("last index %d, want 3", last)
	}
}

func TestDiskStorageTruncatesTornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(hardState(1, 1, 1), []*raftpb.Entry{entry(1, 1, "a")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(nil, []*raftpb.Entry{entry(1, 2, "b")}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, segmentName(1))
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)-3], 0o644); err != nil { // tear the last record
		t.Fatal(err)
	}
	s, err = OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if last, _ := s.LastIndex(); last != 1 {
		t.Fatalf("last index %d after a torn tail, want 1", last)
	}
	if err := s.Save(nil, []*raftpb.Entry{entry(1, 2, "b2")}, nil); err != nil {
		t.Fatal(err)
	}
}

// FuzzReplayWAL: a log file, however damaged, is replayed or refused with
// an error; it never panics.
func FuzzReplayWAL(f *testing.F) {
	b := []byte(walMagic)
	b, _ = appendWALRecord(b, recEntry, entry(1, 1, "a"))
	b, _ = appendWALRecord(b, recHardState, hardState(1, 1, 1))
	f.Add(b)
	b, _ = appendWALRecord(b, recReset, &raftpb.SnapshotMetadata{Index: proto.Uint64(0), Term: proto.Uint64(0)})
	b, _ = appendWALRecord(b, recEntry, entry(1, 1, "b"))
	f.Add(b)
	f.Add([]byte(walMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := OpenDiskStorage(t.TempDir())
		defer s.Close()
		valid, _, err := replayWAL(data, s)
		if err == nil && (valid > len(data) || valid < len(walMagic)) {
			t.Fatalf("valid prefix %d of %d bytes", valid, len(data))
		}
	})
}

// FuzzDecodeSnapFile: a snapshot file never panics the decoder.
func FuzzDecodeSnapFile(f *testing.F) {
	good, _ := encodeSnapFile(&raftpb.Snapshot{Data: []byte("x"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(3), Term: proto.Uint64(1)}})
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeSnapFile(data)
	})
}

// FuzzDecodeEnvelopes: the LocalNetwork's batch decoder, and the host's
// check of what it decodes, never panic on any input.
func FuzzDecodeEnvelopes(f *testing.F) {
	env := &cluster.Envelope{Group: 1}
	env.Msg.Type = raftpb.MsgApp.Enum()
	env.Msg.To, env.Msg.From, env.Msg.Term, env.Msg.Index = proto.Uint64(2), proto.Uint64(1), proto.Uint64(1), proto.Uint64(0)
	env.Msg.Entries = []*raftpb.Entry{entry(1, 1, "a")}
	b, _ := appendEnvelope(nil, env)
	f.Add(b)
	// A host (not started: no ticks) with one group, recreated for
	// every input, takes whatever decodes: nothing may panic out of it.
	h := New(Options{NodeID: 2, Transport: NewLocalNetwork().Transport(2), Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, data []byte) {
		envs, err := decodeEnvelopes(data)
		if err != nil {
			return
		}
		h.RemoveGroup(1)
		if err := h.AddGroup(GroupConfig{ID: 1, Storage: memStorage{raft.NewMemoryStorage()}, StateMachine: &listSM{}, Voters: []cluster.NodeID{1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
		h.receive(1, envs)
	})
}

// TestDiskStorageSnapshotNewerThanHardState: a crash after a received
// snapshot is written but before the HardState that came with it leaves
// a commit index below the snapshot; the storage opens with the commit
// raised to the snapshot, which Raft accepts.
func TestDiskStorageSnapshotNewerThanHardState(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(hardState(1, 1, 1), []*raftpb.Entry{entry(1, 1, "a")}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	snap := &raftpb.Snapshot{Data: []byte("x"), Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(10), Term: proto.Uint64(2), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	b, err := encodeSnapFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, snapName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs, _, _ := s.InitialState()
	if hs.GetCommit() != 10 {
		t.Fatalf("commit %d after opening with a newer snapshot, want 10", hs.GetCommit())
	}
	if _, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s, Applied: 10, MaxInflightMsgs: 1, Logger: raftLogger{quietLogger()}}); err != nil {
		t.Fatal(err)
	}
}

// segments lists the log segment files in dir.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if _, ok := parseSegmentName(de.Name()); ok {
			names = append(names, de.Name())
		}
	}
	return names
}

// TestDiskStorageCompactionDeletesSegments: each compaction starts a new
// segment and deletes those the snapshot covers, so a busy log keeps a
// bounded number of files; a reopen finds the snapshot, the entries after
// it and the latest HardState.
func TestDiskStorageCompactionDeletesSegments(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	for i := uint64(1); i <= 50; i++ {
		if err := s.Save(hardState(1, 1, i-1), []*raftpb.Entry{entry(1, i, fmt.Sprint(i))}, nil); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			// Compacting behind the end: the entries after index stay
			// in the previous segment until the next compaction.
			if err := s.Compact(i-3, cs, []byte(fmt.Sprint("state@", i-3))); err != nil {
				t.Fatal(err)
			}
			if n := len(segments(t, dir)); n > 2 {
				t.Fatalf("%d segments after compacting to %d: %v", n, i-3, segments(t, dir))
			}
		}
	}
	// A commit-only HardState, written without an fsync.
	if err := s.Save(hardState(1, 1, 50), nil, nil); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	snap, _ := s.Snapshot()
	if snap.GetMetadata().GetIndex() != 47 || string(snap.GetData()) != "state@47" {
		t.Fatalf("snapshot after reopen: %v", snap.GetMetadata())
	}
	ents, err := s.Entries(48, 51, 1<<20)
	if err != nil || len(ents) != 3 || string(ents[2].GetData()) != "50" {
		t.Fatalf("entries after reopen: %v %v", ents, err)
	}
	if hs, _, _ := s.InitialState(); hs.GetCommit() != 50 {
		t.Fatalf("hard state after reopen: %v", hs)
	}
	// Writing goes on in the last segment.
	if err := s.Save(hardState(1, 1, 50), []*raftpb.Entry{entry(1, 51, "51")}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestDiskStorageReceivedSnapshotResets: a snapshot received from the
// leader replaces the whole log, including entries after its index; a
// crash before the older segments are deleted does not bring them back.
func TestDiskStorageReceivedSnapshotResets(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Entries 1-5 of term 1, of which 4 and 5 were never committed.
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 5; i++ {
		ents = append(ents, entry(1, i, fmt.Sprint("old", i)))
	}
	if err := s.Save(hardState(1, 1, 3), ents, nil); err != nil {
		t.Fatal(err)
	}
	oldName := segments(t, dir)[0]
	oldBytes, err := os.ReadFile(filepath.Join(dir, oldName))
	if err != nil {
		t.Fatal(err)
	}
	snap := &raftpb.Snapshot{Data: []byte("state@4"), Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(4), Term: proto.Uint64(2), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	if err := s.Save(hardState(2, 0, 4), []*raftpb.Entry{entry(2, 5, "new5")}, snap); err != nil {
		t.Fatal(err)
	}
	if segs := segments(t, dir); len(segs) != 1 || segs[0] == oldName {
		t.Fatalf("segments after a received snapshot: %v", segs)
	}
	s.Close()
	// The crash: the older segment is still there.
	if err := os.WriteFile(filepath.Join(dir, oldName), oldBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if first, _ := s.FirstIndex(); first != 5 {
		t.Fatalf("first index %d, want 5", first)
	}
	got, err := s.Entries(5, 6, 1<<20)
	if err != nil || len(got) != 1 || string(got[0].GetData()) != "new5" {
		t.Fatalf("entries after reopen: %v %v", got, err)
	}
	if hs, _, _ := s.InitialState(); hs.GetTerm() != 2 || hs.GetCommit() != 4 {
		t.Fatalf("hard state after reopen: %v", hs)
	}
}

// TestDiskStorageOpensSingleFileLog: a directory written before the log
// had segments (one raft.wal) opens as segment 0 and goes on in a new
// segment after the next compaction.
func TestDiskStorageOpensSingleFileLog(t *testing.T) {
	dir := t.TempDir()
	b := []byte(walMagic)
	b, _ = appendWALRecord(b, recEntry, entry(1, 1, "a"))
	b, _ = appendWALRecord(b, recEntry, entry(1, 2, "b"))
	b, _ = appendWALRecord(b, recHardState, hardState(1, 1, 2))
	if err := os.WriteFile(filepath.Join(dir, walName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastIndex(); last != 2 {
		t.Fatalf("last index %d, want 2", last)
	}
	if err := s.Save(hardState(1, 1, 2), []*raftpb.Entry{entry(1, 3, "c")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(2, &raftpb.ConfState{Voters: []uint64{1}}, []byte("s")); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	if got, err := s.Entries(3, 4, 1<<20); err != nil || len(got) != 1 || string(got[0].GetData()) != "c" {
		t.Fatalf("entries after reopen: %v %v (segments %v)", got, err, segments(t, dir))
	}
}

// reopen closes s and opens its directory again; the new storage is
// closed when the test ends.
func reopen(t *testing.T, s *DiskStorage, dir string) *DiskStorage {
	t.Helper()
	s.Close()
	s, err := OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestDiskStorageSaveWhileSnapshotRead: Raft (sending a snapshot) and
// Compact read Snapshot while the worker saves; Save must not read the
// memory storage's fields without its lock (run with -race: Snapshot
// writes one of them under the lock).
func TestDiskStorageSaveWhileSnapshotRead(t *testing.T) {
	s, err := OpenDiskStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			s.Snapshot()
		}
	}()
	for i := uint64(1); i <= 200; i++ {
		if err := s.Save(hardState(1, 1, i-1), []*raftpb.Entry{entry(1, i, "x")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if hs, _, _ := s.InitialState(); hs.GetCommit() != 199 {
		t.Fatalf("commit %d after the saves, want 199", hs.GetCommit())
	}
}
