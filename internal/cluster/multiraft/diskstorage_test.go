package multiraft

import (
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
	s.Close()
	s, err = OpenDiskStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	path := filepath.Join(dir, walName)
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
	f.Add([]byte(walMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := OpenDiskStorage(t.TempDir())
		defer s.Close()
		valid, err := replayWAL(data, s.MemoryStorage)
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
