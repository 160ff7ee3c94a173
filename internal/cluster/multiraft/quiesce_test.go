package multiraft

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// quiesced waits until every running node has quiesced group g.
func (c *testCluster) quiesced(g cluster.GroupID) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("group %d to quiesce", g), func() bool {
		for _, tn := range c.nodes {
			if tn != nil && !tn.host.Quiesced(g) {
				return false
			}
		}
		return true
	})
}

// countMessages counts every message the network carries from now on.
func (c *testCluster) countMessages() *atomic.Int64 {
	var n atomic.Int64
	c.net.SetDrop(func(_, _ cluster.NodeID, _ *cluster.Envelope) bool {
		n.Add(1)
		return false
	})
	return &n
}

func TestIdleGroupsQuiesceAndStaySilent(t *testing.T) {
	groups := []cluster.GroupID{1, 2, 3, 4}
	c := newTestCluster(t, 3, groups, 0)
	for _, g := range groups {
		lead := c.leader(g)
		c.proposeApplied(lead, g, "a")
	}
	for _, g := range groups {
		c.quiesced(g)
	}
	n := c.countMessages()
	// The answers to the last heartbeats may still be on their way.
	waitFor(t, "the network to fall silent", func() bool {
		before := n.Load()
		time.Sleep(10 * c.tick)
		return n.Load() == before
	})
	// 100 ticks: an unquiesced group would send a heartbeat to each
	// follower at every one of them.
	before := n.Load()
	time.Sleep(100 * c.tick)
	if got := n.Load() - before; got != 0 {
		t.Fatalf("%d messages between quiesced groups", got)
	}
	for _, id := range c.ids {
		st := c.nodes[id].host.Stats()
		if st.Quiesced != len(groups) || st.Groups != len(groups) {
			t.Fatalf("node %d: stats %+v", id, st)
		}
	}
}

func TestProposalToQuiescedGroupCommits(t *testing.T) {
	c := newTestCluster(t, 3, []cluster.GroupID{1}, 0)
	lead := c.leader(1)
	c.proposeApplied(lead, 1, "a")
	c.quiesced(1)
	// Through a follower (forwarded to the quiesced leader), then
	// through the leader.
	c.proposeApplied(c.follower(1, lead), 1, "b")
	c.quiesced(1)
	c.proposeApplied(lead, 1, "c")
	c.quiesced(1)
	c.checkEqual(1)
}

func TestQuiescedGroupElectsWhenLeaderHostCloses(t *testing.T) {
	c := newTestCluster(t, 3, []cluster.GroupID{1, 2}, 0)
	for _, g := range []cluster.GroupID{1, 2} {
		c.proposeApplied(c.leader(g), g, "a")
		c.quiesced(g)
	}
	old := c.leader(1)
	c.stop(old)
	// waitFor bounds the election (20 s); without node liveness the
	// quiesced followers would never campaign.
	lead := c.leader(1)
	if lead == old {
		t.Fatalf("leader still %d", old)
	}
	c.proposeApplied(lead, 1, "b")
	c.quiesced(1)
	// The stopped node comes back, catches up, and the group quiesces
	// with it.
	c.start(old)
	c.waitApplied(1, "b")
	c.quiesced(1)
	c.checkEqual(1)
}

func TestQuiescedGroupPartitionedAndHealed(t *testing.T) {
	c := newTestCluster(t, 3, []cluster.GroupID{1}, 0)
	old := c.leader(1)
	c.proposeApplied(old, 1, "a")
	c.quiesced(1)
	c.net.Isolate(old, c.ids...)
	// The majority elects a new leader and the isolated old leader,
	// woken by its followers' loss, steps down (CheckQuorum).
	var lead cluster.NodeID
	waitFor(t, "a new leader in the majority", func() bool {
		for _, id := range c.ids {
			if id != old {
				if l := c.nodes[id].host.Leader(1); l != 0 && l != old {
					lead = l
					return true
				}
			}
		}
		return false
	})
	waitFor(t, "the isolated leader to step down", func() bool {
		return c.nodes[old].host.Leader(1) != old
	})
	c.propose(lead, 1, "b")
	waitFor(t, "b applied in the majority", func() bool {
		for _, id := range c.ids {
			if id != old && !slices.Contains(c.nodes[id].sm[1].values(), "b") {
				return false
			}
		}
		return true
	})
	c.net.Heal()
	c.waitApplied(1, "b")
	c.quiesced(1)
	c.checkEqual(1)
}

func TestQuiescedFollowerLeftBehindCatchesUp(t *testing.T) {
	c := newTestCluster(t, 3, []cluster.GroupID{1}, 0)
	lead := c.leader(1)
	c.proposeApplied(lead, 1, "a")
	c.quiesced(1)
	f := c.follower(1, lead)
	c.net.Isolate(f, c.ids...)
	// The leader commits with the other follower and quiesces, leaving
	// f behind while it is unreachable...
	c.propose(lead, 1, "b")
	waitFor(t, "the group to quiesce without the cut-off follower", func() bool {
		for _, id := range c.ids {
			if id != f && !c.nodes[id].host.Quiesced(1) {
				return false
			}
		}
		return true
	})
	// ...and wakes when f is reachable again, so that f catches up
	// without another proposal.
	c.net.Heal()
	c.waitApplied(1, "b")
	c.quiesced(1)
	c.checkEqual(1)
}

// With the link between the leader and one follower cut, that follower
// keeps asking for votes. The other follower, quiesced, is woken by each
// request and must not grant one: it tells the leader, whose quiesce
// heartbeat resets its election clock, as a ticking leader's heartbeats
// would. The leader keeps its term throughout.
func TestQuiescedLeaderKeptWhenOneLinkIsCut(t *testing.T) {
	// A 20 ms tick (a 200 ms lease) so that a busy machine delaying the
	// leader's answer by a few milliseconds does not look like a dead
	// leader.
	c := newTestClusterTick(t, 3, []cluster.GroupID{1}, 0, 20*time.Millisecond)
	lead := c.leader(1)
	c.proposeApplied(lead, 1, "a")
	c.quiesced(1)
	st, err := c.nodes[lead].host.Status(1)
	if err != nil {
		t.Fatal(err)
	}
	term := st.GetTerm()
	var cut, other cluster.NodeID
	for _, id := range c.ids {
		if id != lead {
			if cut == 0 {
				cut = id
			} else {
				other = id
			}
		}
	}
	c.net.Cut(lead, cut)
	// 150 ticks: some 10 election timeouts of the cut-off follower.
	deadline := time.Now().Add(150 * c.tick)
	for time.Now().Before(deadline) {
		for _, id := range []cluster.NodeID{lead, other} {
			st, err := c.nodes[id].host.Status(1)
			if err != nil {
				t.Fatal(err)
			}
			if st.Lead != lead || st.GetTerm() != term {
				t.Fatalf("node %d: leader %d term %d, want %d term %d", id, st.Lead, st.GetTerm(), lead, term)
			}
		}
		time.Sleep(c.tick)
	}
	c.net.Heal()
	c.proposeApplied(lead, 1, "b")
	c.quiesced(1)
	c.checkEqual(1)
}

// A paused leader keeps its connections open, so it stays reachable: the
// followers must go by Alive (heard from lately) to wake and elect.
func TestQuiescedGroupElectsWhenLeaderPauses(t *testing.T) {
	c := newTestCluster(t, 3, []cluster.GroupID{1}, 0)
	old := c.leader(1)
	c.proposeApplied(old, 1, "a")
	c.quiesced(1)
	c.net.Pause(old, true)
	var lead cluster.NodeID
	waitFor(t, "a new leader among the others", func() bool {
		for _, id := range c.ids {
			if id != old {
				if l := c.nodes[id].host.Leader(1); l != 0 && l != old {
					lead = l
					return true
				}
			}
		}
		return false
	})
	c.propose(lead, 1, "b")
	waitFor(t, "b applied on the others", func() bool {
		for _, id := range c.ids {
			if id != old && !slices.Contains(c.nodes[id].sm[1].values(), "b") {
				return false
			}
		}
		return true
	})
	c.net.Pause(old, false)
	c.waitApplied(1, "b")
	c.quiesced(1)
	c.checkEqual(1)
}
