package multiraft

import (
	"errors"
	"sync/atomic"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// hostCounters are the host's counters since New, for Stats.
type hostCounters struct {
	proposals, dropped atomic.Uint64
	// leader changes seen, of the metadata group and of the others
	metaLeaderChanges, otherLeaderChanges atomic.Uint64
}

func (c *hostCounters) proposal(err error) {
	c.proposals.Add(1)
	if errors.Is(err, ErrProposalDropped) {
		c.dropped.Add(1)
	}
}

func (c *hostCounters) leaderChange(g cluster.GroupID) {
	if g == cluster.MetaGroup {
		c.metaLeaderChanges.Add(1)
	} else {
		c.otherLeaderChanges.Add(1)
	}
}

// Stats are what the host reports for metrics: counters since New and the
// state of its groups now.
type Stats struct {
	// Groups by this node's role in them; Candidates includes
	// pre-candidates.
	Groups, Leaders, Followers, Candidates int
	// Quiesced is the number of groups not being ticked (idle).
	Quiesced int
	// Proposals counts proposals and configuration changes handed to
	// the host; ProposalsDropped those Raft refused at once (no leader
	// known, or a leadership transfer under way).
	Proposals, ProposalsDropped uint64
	// MetaLeaderChanges and OtherLeaderChanges count the times this node
	// learned of a new leader (not of having none) of the metadata group
	// and of the other groups.
	MetaLeaderChanges, OtherLeaderChanges uint64
	// MetaLeader is the metadata group's leader as this node knows it, 0
	// if none (or if this node has no replica of it).
	MetaLeader cluster.NodeID
	// FollowerLag is, for each other node, the most log entries it is
	// behind this node in any group this node leads (its Match against
	// the leader's last durable index). A node with no such group is
	// absent.
	FollowerLag map[cluster.NodeID]uint64
}

// Stats returns the host's statistics. It visits every group (one lock
// each), so it is meant for a scrape, not a hot path.
func (h *Host) Stats() Stats {
	s := Stats{
		Quiesced:           h.quiet.quiescedCount(),
		Proposals:          h.counts.proposals.Load(),
		ProposalsDropped:   h.counts.dropped.Load(),
		MetaLeaderChanges:  h.counts.metaLeaderChanges.Load(),
		OtherLeaderChanges: h.counts.otherLeaderChanges.Load(),
		FollowerLag:        make(map[cluster.NodeID]uint64),
		MetaLeader:         h.Leader(cluster.MetaGroup),
	}
	h.mu.RLock()
	gs := make([]*group, 0, len(h.groups))
	for _, g := range h.groups {
		gs = append(gs, g)
	}
	h.mu.RUnlock()
	s.Groups = len(gs)
	for _, g := range gs {
		switch raft.StateType(g.role.Load()) {
		case raft.StateLeader:
			s.Leaders++
		case raft.StateFollower:
			s.Followers++
		default:
			s.Candidates++
		}
		if raft.StateType(g.role.Load()) != raft.StateLeader {
			continue
		}
		g.mu.Lock()
		if !g.removed && g.failed == nil {
			var last uint64
			g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
				if id == h.id {
					last = pr.Match
				}
			})
			g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
				if id == h.id {
					return
				}
				var lag uint64
				if last > pr.Match {
					lag = last - pr.Match
				}
				if cur, ok := s.FollowerLag[id]; !ok || lag > cur {
					s.FollowerLag[id] = lag
				}
			})
		}
		g.mu.Unlock()
	}
	return s
}
