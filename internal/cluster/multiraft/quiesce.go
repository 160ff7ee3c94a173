package multiraft

// Quiescence: an idle group is not ticked.
//
// Ticking is what makes an idle group cost CPU: every tick its leader
// sends a heartbeat to each follower and each follower answers, and with
// a thousand groups that is thousands of messages a second doing nothing.
// A group whose log is fully replicated and applied needs neither: so its
// leader stops ticking it and tells its followers to stop too, and the
// group costs nothing until something happens to it.
//
// Quiescing changes only when Tick is called, never how Raft steps,
// votes or commits, so it cannot break safety. It can hurt liveness (a
// follower that does not tick never notices a dead leader), which is what
// the rules below are about:
//
//   - A leader quiesces its group at a tick when Raft has nothing to do
//     (no Ready), no leadership transfer or joint configuration is under
//     way, everything in its log is committed and applied, every
//     live member's Match is that index, and those members with the
//     leader are a majority of the voters. It then sends each caught-up
//     live member a quiesce heartbeat: a MsgHeartbeat carrying the
//     commit index (which such a member holds), with Reject set, a field
//     Raft ignores on heartbeats. A member that was not live is left
//     behind, and the leader wakes when it is live again.
//   - A follower quiesces when it steps a quiesce heartbeat from the
//     leader it follows, in its term, and that leader's node is
//     live. Its answer carries Reject too, so that the quiesced
//     leader does not wake on it.
//   - A group wakes (ticks again) on any other message, on a proposal,
//     a configuration change, a campaign or a leadership transfer, and
//     when the liveness of a node it depends on changes: a follower when
//     its leader's node stops being live (it then times out and
//     campaigns as usual), a leader when a member it counted stops
//     being live (so that CheckQuorum can step it down) or a member it
//     left behind is live again (so that it catches up).
//   - A quiesced follower woken by anything but a message from its leader
//     (another member's pre-vote, a local proposal, its leader's node
//     looking down) sends the leader an ordinary heartbeat response, so
//     that the leader, if it is alive, wakes and heartbeats too: otherwise
//     the woken follower, hearing nothing, would time out and could unseat
//     a healthy leader. (To a dead leader the message is simply lost.)
//
// Node liveness is the transport's Alive when it has one (the connection
// is up and a frame or keepalive arrived within three keepalive
// intervals, so a paused or hung process is noticed in seconds), else its
// Reachable (a connection is up). The tick loop polls it every tick for
// the nodes that quiesced groups depend on, as a level ("is it down
// now?"), not as a transition, so a short outage between two polls is
// caught by the next message instead: a node that restarted campaigns,
// and its pre-vote wakes the group.
//
// What it does not cover: a group that stops on its leader's node (a
// failed fsync) while that node stays reachable leaves its quiesced
// followers quiet until a proposal or another message wakes them; the
// next proposal through a follower wakes it, and it then elects a new
// leader as usual.

import (
	"slices"
	"sync"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// quiescence is the host's bookkeeping of quiesced groups: which groups
// to wake when a node goes down, and which when a node comes up.
type quiescence struct {
	mu     sync.Mutex
	onDown map[cluster.NodeID]map[*group]struct{}
	onUp   map[cluster.NodeID]map[*group]struct{}
	count  int // quiesced groups; guarded by mu

	// scratch of pollLiveness, used by the tick loop only
	wake []*group
}

func (q *quiescence) init() {
	q.onDown = make(map[cluster.NodeID]map[*group]struct{})
	q.onUp = make(map[cluster.NodeID]map[*group]struct{})
}

// watch records that g wakes when one of down is unreachable or one of up
// is reachable. Called with g.mu held, as g quiesces.
func (q *quiescence) watch(g *group, down, up []cluster.NodeID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.count++
	add := func(m map[cluster.NodeID]map[*group]struct{}, id cluster.NodeID, tag cluster.NodeID) {
		set := m[id]
		if set == nil {
			set = make(map[*group]struct{})
			m[id] = set
		}
		set[g] = struct{}{}
		g.watching = append(g.watching, tag)
	}
	for _, id := range down {
		add(q.onDown, id, id)
	}
	for _, id := range up {
		// Tagged with the high bit so unwatch knows the map; node ids
		// are below 2^31.
		add(q.onUp, id, id|1<<63)
	}
}

// unwatch forgets g's watches. Called with g.mu held, as g wakes.
func (q *quiescence) unwatch(g *group) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.count--
	for _, tag := range g.watching {
		m, id := q.onDown, tag
		if tag&(1<<63) != 0 {
			m, id = q.onUp, tag&^(1<<63)
		}
		if set := m[id]; set != nil {
			delete(set, g)
			if len(set) == 0 {
				delete(m, id)
			}
		}
	}
	g.watching = g.watching[:0]
}

// quiescedCount is the number of quiesced groups.
func (q *quiescence) quiescedCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}

// pollLiveness wakes the quiesced groups that depend on a node that is
// now down (or, for a member left behind, up). It costs one liveness check
// per node watched, whatever the number of groups.
func (h *Host) pollLiveness() {
	q := &h.quiet
	q.wake = q.wake[:0]
	q.mu.Lock()
	for id, set := range q.onDown {
		if !h.alive(id) {
			for g := range set {
				q.wake = append(q.wake, g)
			}
		}
	}
	for id, set := range q.onUp {
		if h.alive(id) {
			for g := range set {
				q.wake = append(q.wake, g)
			}
		}
	}
	q.mu.Unlock()
	for _, g := range q.wake {
		g.mu.Lock()
		h.wakeLocked(g, nil)
		g.mu.Unlock()
	}
	clear(q.wake)
}

// wakeLocked makes a quiesced g tick again. m is the message that woke
// it, nil for anything else. Called with g.mu held.
func (h *Host) wakeLocked(g *group, m *raftpb.Message) {
	if !g.quiesced.Load() {
		return
	}
	g.quiesced.Store(false)
	h.quiet.unwatch(g)
	if g.removed || g.failed != nil {
		return
	}
	// A follower woken by anything but a message from its leader tells
	// the leader, which is quiesced too, to wake (see the notes above).
	bs := g.rn.BasicStatus()
	if bs.RaftState == raft.StateFollower && bs.Lead != 0 && (m == nil || bs.Lead != m.GetFrom()) {
		h.queueLocked(g, []*raftpb.Message{{
			Type: raftpb.MsgHeartbeatResp.Enum(),
			To:   proto.Uint64(bs.Lead),
			From: proto.Uint64(h.id),
			Term: proto.Uint64(bs.GetTerm()),
		}})
	}
}

// maybeQuiesceLocked quiesces g if this node leads it and it is idle,
// sending the quiesce heartbeats. Called by the tick loop with g.mu held,
// instead of Tick. It reports whether g quiesced.
func (h *Host) maybeQuiesceLocked(g *group) bool {
	if g.role.Load() != uint64(raft.StateLeader) || g.rn.HasReady() || len(g.confState.GetVotersOutgoing()) > 0 {
		return false
	}
	bs := g.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader || bs.LeadTransferee != 0 || bs.Applied != bs.GetCommit() {
		return false
	}
	commit := bs.GetCommit()
	ok := true
	voters, caughtUp := 0, 0
	var send, behind []cluster.NodeID
	g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if typ == raft.ProgressTypePeer {
			voters++
		}
		switch {
		case !ok:
		case id == h.id:
			// The leader's own Match is its last durable index.
			if pr.Match != commit {
				ok = false
			} else if typ == raft.ProgressTypePeer {
				caughtUp++
			}
		case !h.alive(id):
			behind = append(behind, id)
		case pr.Match != commit:
			ok = false // reachable and behind: keep replicating
		default:
			send = append(send, id)
			if typ == raft.ProgressTypePeer {
				caughtUp++
			}
		}
	})
	// caughtUp counts the voters among send, plus the leader.
	if !ok || caughtUp <= voters/2 {
		return false
	}
	msgs := make([]*raftpb.Message, len(send))
	for i, id := range send {
		msgs[i] = &raftpb.Message{
			Type:   raftpb.MsgHeartbeat.Enum(),
			To:     proto.Uint64(id),
			From:   proto.Uint64(h.id),
			Term:   proto.Uint64(bs.GetTerm()),
			Commit: proto.Uint64(commit),
			Reject: proto.Bool(true),
		}
	}
	g.quiesced.Store(true)
	h.quiet.watch(g, send, behind)
	h.queueLocked(g, msgs)
	return true
}

// followerQuiesceLocked quiesces g after it stepped m, a quiesce
// heartbeat, if m came from the leader g follows in its term and that
// leader's node is reachable (the poll then notices it going down).
// Called with g.mu held.
func (h *Host) followerQuiesceLocked(g *group, m *raftpb.Message) {
	if g.quiesced.Load() || g.removed || g.failed != nil {
		return
	}
	bs := g.rn.BasicStatus()
	from := m.GetFrom()
	if bs.RaftState != raft.StateFollower || bs.Lead != from || bs.GetTerm() != m.GetTerm() || !h.alive(from) ||
		!slices.Contains(g.confState.GetVoters(), from) {
		return
	}
	g.quiesced.Store(true)
	h.quiet.watch(g, []cluster.NodeID{from}, nil)
}

// confChangedLocked wakes g, quiesced, when the configuration it just
// applied no longer has its leader as a voter: a removed leader steps
// down and falls silent while its node stays up, and the followers must
// tick to time out and elect another (found by TestRemoveMember, whose
// followers had quiesced on the leader's last heartbeats). Called with
// g.mu held.
func (h *Host) confChangedLocked(g *group) {
	if !g.quiesced.Load() {
		return
	}
	if lead := g.rn.BasicStatus().Lead; lead != 0 && !slices.Contains(g.confState.GetVoters(), lead) {
		h.wakeLocked(g, nil)
	}
}

// isQuiesceHeartbeat reports whether m is a leader's quiesce heartbeat.
func isQuiesceHeartbeat(m *raftpb.Message) bool {
	return m.GetType() == raftpb.MsgHeartbeat && m.GetReject()
}

// isQuiescedAnswer reports whether m is a quiesced follower's answer to
// a quiesce heartbeat.
func isQuiescedAnswer(m *raftpb.Message) bool {
	return m.GetType() == raftpb.MsgHeartbeatResp && m.GetReject()
}

// queueLocked has g's worker send msgs, which Raft did not make (the
// quiescence protocol's), with its next Ready's or on their own. Called
// with g.mu held.
func (h *Host) queueLocked(g *group, msgs []*raftpb.Message) {
	g.pending = append(g.pending, msgs...)
	h.schedule(g)
}

// Quiesced reports whether the group is quiesced on this node.
func (h *Host) Quiesced(id cluster.GroupID) bool {
	g, err := h.group(id)
	return err == nil && g.quiesced.Load()
}
