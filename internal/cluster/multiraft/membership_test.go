package multiraft

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// startJoining starts node id with empty storage and no bootstrap
// configuration, as a node joining a running group does: it waits for the
// leader to contact it.
func (c *testCluster) startJoining(id cluster.NodeID) *testNode {
	c.t.Helper()
	c.ids = append(c.ids, id)
	c.dirs[id] = c.t.TempDir()
	tn := &testNode{id: id, dir: c.dirs[id], storage: make(map[cluster.GroupID]*DiskStorage), sm: make(map[cluster.GroupID]*listSM)}
	tn.tr = c.net.Transport(id)
	tn.host = New(Options{NodeID: id, Transport: tn.tr, TickInterval: c.tick, Logger: quietLogger()})
	for _, g := range c.groups {
		st, err := OpenDiskStorage(filepath.Join(tn.dir, fmt.Sprint(g)))
		if err != nil {
			c.t.Fatal(err)
		}
		sm := &listSM{}
		tn.storage[g], tn.sm[g] = st, sm
		if err := tn.host.AddGroup(GroupConfig{ID: g, Storage: st, StateMachine: sm, SnapshotEvery: c.every}); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := tn.tr.Start(); err != nil {
		c.t.Fatal(err)
	}
	tn.host.Start()
	c.nodes[id] = tn
	return tn
}

// changeConf proposes a change on node id until every running node has
// applied a configuration for which done holds (a change can be dropped,
// or replaced by an empty entry while another is pending).
func (c *testCluster) changeConf(id cluster.NodeID, g cluster.GroupID, what string, propose func(h *Host) error, done func(voters, learners []cluster.NodeID) bool) {
	c.t.Helper()
	waitFor(c.t, what, func() bool {
		if err := propose(c.nodes[id].host); err != nil && !errors.Is(err, ErrProposalDropped) {
			c.t.Fatal(err)
		}
		for range 200 {
			all := true
			for _, tn := range c.nodes {
				if tn == nil {
					continue
				}
				v, l, err := tn.host.Membership(g)
				if err != nil {
					c.t.Fatal(err)
				}
				all = all && done(v, l)
			}
			if all {
				return true
			}
			waitShort()
		}
		return false
	})
}

// TestLearnerJoinsAndIsPromoted: a fourth node started without a
// configuration is added as a learner, receives the log (entries written
// before it joined included), does not count towards the majority, and is
// promoted to voter once the leader sees it caught up; the group of four
// then commits with one of the old voters cut off.
func TestLearnerJoinsAndIsPromoted(t *testing.T) {
	g := cluster.GroupID(7)
	c := newTestCluster(t, 3, []cluster.GroupID{g}, 0)
	lead := c.leader(g)
	c.proposeApplied(lead, g, "before")

	c.startJoining(4)
	if v, l, _ := c.nodes[4].host.Membership(g); len(v) != 0 || len(l) != 0 {
		t.Fatalf("a joining node starts with voters %v, learners %v; want none", v, l)
	}
	if got := c.nodes[lead].host.CaughtUpLearners(g); got != nil {
		t.Fatalf("caught-up learners before any was added: %v", got)
	}
	follower := c.follower(g, lead)
	c.changeConf(follower, g, "node 4 a learner everywhere (proposed through a follower)",
		func(h *Host) error { return h.AddLearner(context.Background(), g, 4) },
		func(v, l []cluster.NodeID) bool {
			return slices.Equal(v, []cluster.NodeID{1, 2, 3}) && slices.Equal(l, []cluster.NodeID{4})
		})
	c.waitApplied(g, "before")

	waitFor(t, "the leader to see learner 4 caught up", func() bool {
		l := c.leader(g)
		return slices.Equal(c.nodes[l].host.CaughtUpLearners(g), []cluster.NodeID{4})
	})
	lead = c.leader(g)
	if lead == 4 {
		t.Fatal("a learner became leader")
	}
	c.changeConf(lead, g, "node 4 a voter everywhere",
		func(h *Host) error { return h.PromoteLearner(context.Background(), g, 4) },
		func(v, l []cluster.NodeID) bool { return slices.Equal(v, []cluster.NodeID{1, 2, 3, 4}) && len(l) == 0 })

	// Four voters: a majority is three. With one old voter cut off the
	// group still commits, which needs node 4's vote.
	var other cluster.NodeID
	for _, id := range []cluster.NodeID{1, 2, 3} {
		if id != lead {
			other = id
			break
		}
	}
	c.net.Isolate(other, 1, 2, 3, 4)
	c.propose(lead, g, "after")
	waitFor(t, "a commit needing node 4", func() bool {
		return slices.Contains(c.nodes[4].sm[g].values(), "after") && slices.Contains(c.nodes[lead].sm[g].values(), "after")
	})
	c.net.Heal()
	c.waitApplied(g, "after")
	c.checkEqual(g)
}

// TestRemoveMember: removing a follower shrinks the group (the removed
// node applies no more entries); removing the leader makes it step down
// and the remaining voters elect a new leader and go on committing.
func TestRemoveMember(t *testing.T) {
	g := cluster.GroupID(3)
	c := newTestCluster(t, 4, []cluster.GroupID{g}, 0)
	lead := c.leader(g)
	c.proposeApplied(lead, g, "one")
	f := c.follower(g, lead)
	rest := func(without ...cluster.NodeID) []cluster.NodeID {
		var out []cluster.NodeID
		for _, id := range []cluster.NodeID{1, 2, 3, 4} {
			if !slices.Contains(without, id) {
				out = append(out, id)
			}
		}
		return out
	}
	c.changeConf(lead, g, fmt.Sprintf("follower %d removed", f),
		func(h *Host) error { return h.RemoveMember(context.Background(), g, f) },
		func(v, l []cluster.NodeID) bool { return slices.Equal(v, rest(f)) && len(l) == 0 })
	removed := c.nodes[f]
	c.nodes[f] = nil // still running, but no longer counted
	t.Cleanup(func() { stopNode(removed) })
	c.proposeApplied(lead, g, "two")
	if slices.Contains(removed.sm[g].values(), "two") {
		t.Fatalf("removed node %d applied an entry committed after its removal", f)
	}

	// Remove the leader itself: it steps down, the two others elect one.
	c.changeConf(lead, g, fmt.Sprintf("leader %d removed", lead),
		func(h *Host) error { return h.RemoveMember(context.Background(), g, lead) },
		func(v, l []cluster.NodeID) bool { return slices.Equal(v, rest(f, lead)) })
	old := c.nodes[lead]
	c.nodes[lead] = nil
	t.Cleanup(func() { stopNode(old) })
	newLead := c.leader(g)
	if newLead == lead || newLead == f {
		t.Fatalf("leader %d after removing %d and %d", newLead, lead, f)
	}
	c.proposeApplied(newLead, g, "three")
	if old.host.Leader(g) == old.id {
		t.Fatalf("removed leader %d still believes it leads", lead)
	}
	if slices.Contains(old.sm[g].values(), "three") {
		t.Fatal("removed leader applied an entry committed after its removal")
	}
}

// TestActiveVoters: the leader counts the voters it hears from; a cut-off
// voter drops out after an election timeout.
func TestActiveVoters(t *testing.T) {
	g := cluster.GroupID(5)
	c := newTestCluster(t, 3, []cluster.GroupID{g}, 0)
	lead := c.leader(g)
	waitFor(t, "three active voters", func() bool {
		return len(c.nodes[lead].host.ActiveVoters(g)) == 3
	})
	if got := c.nodes[c.follower(g, lead)].host.ActiveVoters(g); got != nil {
		t.Fatalf("a follower reports active voters %v", got)
	}
	f := c.follower(g, lead)
	c.net.Isolate(f, 1, 2, 3)
	waitFor(t, "the cut-off voter no longer active", func() bool {
		l := c.nodes[lead].host.ActiveVoters(g)
		return len(l) == 2 && !slices.Contains(l, f)
	})
}

func waitShort() { time.Sleep(5 * time.Millisecond) }

// stopNode stops a node no longer in its cluster's list.
func stopNode(tn *testNode) {
	tn.host.Close()
	tn.tr.Close()
	for _, st := range tn.storage {
		st.Close()
	}
}

// olderSnapshot is a DiskStorage that gives followers an older snapshot
// than its log continues from, and still has the entries in between (as a
// replicated partition's storage rebuilds them from its segment log).
type olderSnapshot struct {
	*DiskStorage
	snap *raftpb.Snapshot
	ents []*raftpb.Entry // from snap's index + 1
}

func (s *olderSnapshot) Snapshot() (*raftpb.Snapshot, error) { return s.snap, nil }

func (s *olderSnapshot) FirstIndex() (uint64, error) { return s.snap.GetMetadata().GetIndex() + 1, nil }

func (s *olderSnapshot) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	first := s.snap.GetMetadata().GetIndex() + 1
	if lo < first {
		return nil, raft.ErrCompacted
	}
	if hi <= first+uint64(len(s.ents)) {
		return s.ents[lo-first : hi-first], nil
	}
	return s.DiskStorage.Entries(lo, hi, maxSize)
}

// TestGroupOpensFromItsLogSnapshot: a group whose storage gives followers
// a snapshot older than the one its log continues from is opened from the
// latter: the configuration changes before it are not replayed onto its
// configuration. Here the group began with node 1 alone, added node 2 as
// a learner, promoted it and removed node 1; node 2 compacted after that.
// Replaying the changes from the older snapshot onto node 2's configuration
// (voters [2]) would make node 2 a learner of a group without voters,
// which Raft refuses with a panic.
func TestGroupOpensFromItsLogSnapshot(t *testing.T) {
	st, err := OpenDiskStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1), Term: proto.Uint64(1),
		ConfState: &raftpb.ConfState{Voters: []uint64{1}}}}
	if err := st.Save(nil, nil, old); err != nil {
		t.Fatal(err)
	}
	change := func(i uint64, typ raftpb.ConfChangeType, node uint64) *raftpb.Entry {
		b, err := proto.Marshal(&raftpb.ConfChange{Type: typ.Enum(), NodeId: proto.Uint64(node)})
		if err != nil {
			t.Fatal(err)
		}
		return &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1), Type: raftpb.EntryConfChange.Enum(), Data: b}
	}
	ents := []*raftpb.Entry{
		change(2, raftpb.ConfChangeAddLearnerNode, 2),
		change(3, raftpb.ConfChangeAddNode, 2),
		change(4, raftpb.ConfChangeRemoveNode, 1),
	}
	if err := st.Save(&raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(4)}, ents, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Compact(4, &raftpb.ConfState{Voters: []uint64{2}}, nil); err != nil {
		t.Fatal(err)
	}
	net := NewLocalNetwork()
	h := New(Options{NodeID: 2, Transport: net.Transport(2), Logger: quietLogger()})
	defer h.Close()
	err = func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return h.AddGroup(GroupConfig{ID: 9, Storage: &olderSnapshot{DiskStorage: st, snap: old, ents: ents}, StateMachine: &listSM{}, Applied: 4})
	}()
	if err != nil {
		t.Fatal(err)
	}
	voters, learners, err := h.Membership(9)
	if err != nil || !slices.Equal(voters, []cluster.NodeID{2}) || len(learners) != 0 {
		t.Fatalf("membership: voters %v learners %v, %v", voters, learners, err)
	}
}
