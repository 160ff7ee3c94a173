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
