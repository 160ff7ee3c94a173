package multiraft

import (
	"context"
	"slices"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Membership changes. A node joins a group in two steps, etcd's learner
// idea: it is added as a learner, which receives the log (or a snapshot)
// but does not vote and so does not count towards any majority, and it is
// promoted to voter only once it has caught up. Adding a voter that has
// not caught up would grow the majority at once with a member that cannot
// acknowledge anything yet: in a group of three with one node down, adding
// an empty fourth voter stops every commit until it has caught up.
//
// Each change is one ConfChangeV2 with a single change (a "simple" change:
// Raft applies it without a joint configuration, which is safe because one
// voter more or less keeps every old majority overlapping every new one).
// Raft takes one change at a time: a change proposed while another is not
// yet applied is turned into an empty entry by the leader. The callers
// therefore watch the configuration (Membership) to learn whether a change
// took effect, and propose again if not.

// Membership returns the group's voters and learners as this node has
// applied its configuration, each sorted.
func (h *Host) Membership(id cluster.GroupID) (voters, learners []cluster.NodeID, err error) {
	st, err := h.Status(id)
	if err != nil {
		return nil, nil, err
	}
	return sortedIDs(st.Config.Voters.IDs()), sortedIDs(st.Config.Learners), nil
}

func sortedIDs[V any](m map[uint64]V) []cluster.NodeID {
	out := make([]cluster.NodeID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// AddLearner proposes adding node to the group as a learner.
func (h *Host) AddLearner(ctx context.Context, id cluster.GroupID, node cluster.NodeID) error {
	return h.proposeSingle(ctx, id, raftpb.ConfChangeAddLearnerNode, node)
}

// PromoteLearner proposes making node, a learner, a voter. Call it once
// the learner has caught up (CaughtUpLearners).
func (h *Host) PromoteLearner(ctx context.Context, id cluster.GroupID, node cluster.NodeID) error {
	return h.proposeSingle(ctx, id, raftpb.ConfChangeAddNode, node)
}

// RemoveMember proposes removing node, voter or learner, from the group.
// A removed leader steps down once the change applies (StepDownOnRemoval)
// and the remaining voters elect a new one.
func (h *Host) RemoveMember(ctx context.Context, id cluster.GroupID, node cluster.NodeID) error {
	return h.proposeSingle(ctx, id, raftpb.ConfChangeRemoveNode, node)
}

func (h *Host) proposeSingle(ctx context.Context, id cluster.GroupID, typ raftpb.ConfChangeType, node cluster.NodeID) error {
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: &typ, NodeId: &node}}}
	return h.ProposeConfChange(ctx, id, cc)
}

// CaughtUpLearners returns, when this node leads the group, its learners
// that are recently active (and live: see ActiveVoters) and whose log
// matches the leader's up to its commit index: the ones ready to be
// promoted. Elsewhere it returns nil
// (only the leader tracks its followers' progress).
func (h *Host) CaughtUpLearners(id cluster.GroupID) []cluster.NodeID {
	st, err := h.Status(id)
	if err != nil || st.RaftState != raft.StateLeader {
		return nil
	}
	var out []cluster.NodeID
	for node := range st.Config.Learners {
		if pr, ok := st.Progress[node]; ok && caughtUp(pr, st.GetCommit()) && h.alive(node) {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}

// ActiveVoters returns, when this node leads the group, the voters it has
// heard from within the last election timeout (itself included); nil
// elsewhere. Raft's CheckQuorum keeps this view while the group ticks;
// a quiesced group does not run CheckQuorum, so a voter also has to be
// live now (quiesce.go). It is what a removal must leave a majority of.
func (h *Host) ActiveVoters(id cluster.GroupID) []cluster.NodeID {
	st, err := h.Status(id)
	if err != nil || st.RaftState != raft.StateLeader {
		return nil
	}
	var out []cluster.NodeID
	for node := range st.Config.Voters.IDs() {
		if pr, ok := st.Progress[node]; ok && (node == h.id || pr.RecentActive && h.alive(node)) {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}

func caughtUp(pr tracker.Progress, commit uint64) bool {
	return pr.RecentActive && pr.Match >= commit && pr.State == tracker.StateReplicate
}
