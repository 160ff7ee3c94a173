package multiraft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// listSM is a state machine that keeps the data of every normal entry.
type listSM struct {
	mu    sync.Mutex
	vals  []string
	snaps int // snapshots applied from a leader
}

func (s *listSM) Apply(ents []*raftpb.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ents {
		if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
			s.vals = append(s.vals, string(e.GetData()))
		}
	}
}

func (s *listSM) ApplySnapshot(snap *raftpb.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals = nil
	if err := json.Unmarshal(snap.GetData(), &s.vals); err != nil {
		panic(err)
	}
	s.snaps++
}

func (s *listSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.vals)
}

func (s *listSM) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.vals)
}

func (s *listSM) snapshotsApplied() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snaps
}

// testNode is one node of a test cluster: a host with its groups, each
// on a DiskStorage under dir.
type testNode struct {
	id      cluster.NodeID
	dir     string
	tr      cluster.Transport
	host    *Host
	storage map[cluster.GroupID]*DiskStorage
	sm      map[cluster.GroupID]*listSM
}

type testCluster struct {
	t      *testing.T
	net    *LocalNetwork
	ids    []cluster.NodeID
	groups []cluster.GroupID
	nodes  map[cluster.NodeID]*testNode
	dirs   map[cluster.NodeID]string
	every  uint64
	tick   time.Duration
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestCluster(t *testing.T, n int, groups []cluster.GroupID, snapshotEvery uint64) *testCluster {
	return newTestClusterTick(t, n, groups, snapshotEvery, 5*time.Millisecond)
}

// newTestClusterTick is newTestCluster with another tick interval.
func newTestClusterTick(t *testing.T, n int, groups []cluster.GroupID, snapshotEvery uint64, tick time.Duration) *testCluster {
	c := &testCluster{t: t, net: NewLocalNetwork(), groups: groups,
		nodes: make(map[cluster.NodeID]*testNode), dirs: make(map[cluster.NodeID]string), every: snapshotEvery, tick: tick}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, cluster.NodeID(i))
		c.dirs[cluster.NodeID(i)] = t.TempDir()
	}
	for _, id := range c.ids {
		c.start(id)
	}
	t.Cleanup(func() {
		for _, id := range c.ids {
			if c.nodes[id] != nil {
				c.stop(id)
			}
		}
	})
	return c
}

// start starts node id from its directory (new or as left by stop).
func (c *testCluster) start(id cluster.NodeID) *testNode {
	c.t.Helper()
	tn := &testNode{id: id, dir: c.dirs[id], storage: make(map[cluster.GroupID]*DiskStorage), sm: make(map[cluster.GroupID]*listSM)}
	tn.tr = c.net.Transport(id)
	tn.host = New(Options{NodeID: id, Transport: tn.tr, TickInterval: c.tick, Logger: quietLogger()})
	for _, g := range c.groups {
		st, err := OpenDiskStorage(filepath.Join(tn.dir, fmt.Sprint(g)))
		if err != nil {
			c.t.Fatal(err)
		}
		sm := &listSM{}
		snap, _ := st.Snapshot()
		if len(snap.GetData()) > 0 {
			sm.ApplySnapshot(snap)
			sm.snaps = 0
		}
		tn.storage[g], tn.sm[g] = st, sm
		err = tn.host.AddGroup(GroupConfig{ID: g, Storage: st, StateMachine: sm, Voters: c.ids,
			Applied: snap.GetMetadata().GetIndex(), SnapshotEvery: c.every})
		if err != nil {
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

func (c *testCluster) stop(id cluster.NodeID) {
	tn := c.nodes[id]
	tn.host.Close()
	tn.tr.Close()
	for _, st := range tn.storage {
		st.Close()
	}
	c.nodes[id] = nil
}

// waitFor polls cond until it holds or the test's time runs out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leader waits until the running nodes agree on a leader of g.
func (c *testCluster) leader(g cluster.GroupID) cluster.NodeID {
	c.t.Helper()
	var lead cluster.NodeID
	waitFor(c.t, fmt.Sprintf("a leader of group %d", g), func() bool {
		lead = 0
		for _, tn := range c.nodes {
			if tn == nil {
				continue
			}
			l := tn.host.Leader(g)
			if l == 0 || (lead != 0 && l != lead) || c.nodes[l] == nil {
				return false
			}
			lead = l
		}
		return lead != 0
	})
	return lead
}

// propose proposes v on node id, retrying while the node knows no leader.
func (c *testCluster) propose(id cluster.NodeID, g cluster.GroupID, v string) {
	c.t.Helper()
	waitFor(c.t, "a proposal to be taken", func() bool {
		err := c.nodes[id].host.Propose(context.Background(), g, []byte(v))
		if err != nil && !errors.Is(err, ErrProposalDropped) {
			c.t.Fatal(err)
		}
		return err == nil
	})
}

// proposeApplied proposes v on node id until every running node holds
// it: a proposal Raft took can still be lost (forwarded to a leader that
// then steps down), so it is proposed again after a while. v may then be
// applied more than once.
func (c *testCluster) proposeApplied(id cluster.NodeID, g cluster.GroupID, v string) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("%q applied in group %d everywhere", v, g), func() bool {
		c.propose(id, g, v)
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if c.appliedEverywhere(g, v) {
				return true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return false
	})
}

// waitApplied waits until every running node of g holds v.
func (c *testCluster) waitApplied(g cluster.GroupID, v string) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("%q applied in group %d everywhere", v, g), func() bool {
		for _, tn := range c.nodes {
			if tn != nil && !slices.Contains(tn.sm[g].values(), v) {
				return false
			}
		}
		return true
	})
}

func (c *testCluster) appliedEverywhere(g cluster.GroupID, v string) bool {
	for _, tn := range c.nodes {
		if tn != nil && !slices.Contains(tn.sm[g].values(), v) {
			return false
		}
	}
	return true
}

// checkEqual checks that every running node of g holds the same values.
func (c *testCluster) checkEqual(g cluster.GroupID) {
	c.t.Helper()
	var want []string
	var from cluster.NodeID
	for _, id := range c.ids {
		tn := c.nodes[id]
		if tn == nil {
			continue
		}
		got := tn.sm[g].values()
		if from == 0 {
			want, from = got, id
			continue
		}
		if !slices.Equal(got, want) {
			c.t.Fatalf("group %d: node %d holds %q, node %d %q", g, id, got, from, want)
		}
	}
}

func (c *testCluster) follower(g cluster.GroupID, lead cluster.NodeID) cluster.NodeID {
	for _, id := range c.ids {
		if id != lead && c.nodes[id] != nil {
			return id
		}
	}
	c.t.Fatal("no follower")
	return 0
}

func TestGroupsElectAndReplicate(t *testing.T) {
	groups := []cluster.GroupID{1, 2, 3, 4}
	c := newTestCluster(t, 3, groups, 0)
	for _, g := range groups {
		lead := c.leader(g)
		f := c.follower(g, lead)
		c.proposeApplied(f, g, fmt.Sprintf("from-follower-%d", g))
		c.proposeApplied(lead, g, fmt.Sprintf("from-leader-%d", g))
	}
	for _, g := range groups {
		c.checkEqual(g)
	}
}

func TestLeaderHostRestarts(t *testing.T) {
	c := newTestCluster(t, 3, []cluster.GroupID{1, 2}, 0)
	lead := c.leader(1)
	c.proposeApplied(lead, 1, "before")

	c.stop(lead)
	newLead := c.leader(1)
	if newLead == lead {
		t.Fatalf("the stopped node %d still leads", lead)
	}
	c.proposeApplied(c.follower(1, 0), 1, "while-down")

	c.start(lead)
	c.proposeApplied(lead, 1, "after")
	c.waitApplied(1, "while-down")
	// The restarted node applied what it had before once, and what it
	// missed, in the same order as the others.
	c.checkEqual(1)
}

func TestPartitionedMinorityCannotCommit(t *testing.T) {
	c := newTestCluster(t, 3, []cluster.GroupID{1}, 0)
	lead := c.leader(1)
	c.proposeApplied(lead, 1, "before")

	// The leader alone is a minority: what it takes must never commit.
	c.net.Isolate(lead, c.ids...)
	err := c.nodes[lead].host.Propose(context.Background(), 1, []byte("minority"))
	if err != nil && !errors.Is(err, ErrProposalDropped) {
		t.Fatal(err)
	}
	var majority cluster.NodeID
	waitFor(t, "the majority to elect another leader", func() bool {
		for _, id := range c.ids {
			if l := c.nodes[id].host.Leader(1); id != lead && l != 0 && l != lead {
				majority = id
				return true
			}
		}
		return false
	})
	c.propose(majority, 1, "majority")
	waitFor(t, "the majority to commit", func() bool {
		if !slices.Contains(c.nodes[majority].sm[1].values(), "majority") {
			c.propose(majority, 1, "majority") // lost in an election: again
			time.Sleep(50 * time.Millisecond)
		}
		n := 0
		for _, id := range c.ids {
			if slices.Contains(c.nodes[id].sm[1].values(), "majority") {
				n++
			}
		}
		return n == 2
	})
	if slices.Contains(c.nodes[lead].sm[1].values(), "majority") {
		t.Fatal("the isolated node applied an entry it cannot have received")
	}
	// CheckQuorum: the isolated leader steps down.
	waitFor(t, "the isolated leader to step down", func() bool {
		return c.nodes[lead].host.Leader(1) != lead
	})

	c.net.Heal()
	c.waitApplied(1, "majority")
	c.proposeApplied(majority, 1, "healed")
	for _, id := range c.ids {
		if slices.Contains(c.nodes[id].sm[1].values(), "minority") {
			t.Fatalf("node %d applied the minority's proposal", id)
		}
	}
	c.checkEqual(1)
}

func TestLaggingMemberCatchesUpBySnapshot(t *testing.T) {
	c := newTestCluster(t, 3, []cluster.GroupID{1}, 5)
	lead := c.leader(1)
	lag := c.follower(1, lead)
	c.stop(lag)
	for i := range 30 {
		c.propose(lead, 1, fmt.Sprint("v", i))
	}
	waitFor(t, "the leader to compact its log", func() bool {
		first, _ := c.nodes[lead].storage[1].FirstIndex()
		return first > 30
	})
	// Messages the leader built while it still streamed to the stopped
	// node may be in the round being sent; once it has noticed the node
	// is unreachable it probes from the node's last index, which is gone.
	waitFor(t, "the leader to probe the stopped node", func() bool {
		st, err := c.nodes[lead].host.Status(1)
		return err == nil && st.Progress[lag].State == tracker.StateProbe
	})
	// Rounds run one after another: once a later entry is applied on the
	// other follower, whatever was queued before has been sent.
	c.proposeApplied(lead, 1, "fence")
	c.start(lag)
	c.waitApplied(1, "fence")
	c.checkEqual(1)
	if c.nodes[lag].sm[1].snapshotsApplied() == 0 {
		t.Fatal("the lagging node caught up without a snapshot")
	}
	// It restarts from its own snapshot and log.
	c.stop(lag)
	c.start(lag)
	c.proposeApplied(lead, 1, "after-restart")
	c.checkEqual(1)
}

func TestShallowCopyMessageCoversEveryField(t *testing.T) {
	src := &raftpb.Message{}
	fields := src.ProtoReflect().Descriptor().Fields()
	// Set every field to a non-default value through reflection.
	for i := range fields.Len() {
		f := fields.Get(i)
		m := src.ProtoReflect()
		switch {
		case f.IsList():
			l := m.NewField(f).List()
			l.Append(l.NewElement())
			m.Set(f, protoreflect.ValueOfList(l))
		case f.Kind() == protoreflect.MessageKind:
			m.Set(f, m.NewField(f))
		case f.Kind() == protoreflect.EnumKind:
			m.Set(f, protoreflect.ValueOfEnum(1))
		case f.Kind() == protoreflect.BoolKind:
			m.Set(f, protoreflect.ValueOfBool(true))
		case f.Kind() == protoreflect.BytesKind:
			m.Set(f, protoreflect.ValueOfBytes([]byte{1}))
		default:
			m.Set(f, protoreflect.ValueOfUint64(7))
		}
	}
	var dst raftpb.Message
	shallowCopyMessage(&dst, src)
	for i := range fields.Len() {
		if f := fields.Get(i); !dst.ProtoReflect().Has(f) {
			t.Errorf("field %s not copied", f.Name())
		}
	}
}

// TestManyGroupsShareTheHosts runs many groups on three hosts: each
// elects a leader and commits, with one ticker and a few workers per host.
func TestManyGroupsShareTheHosts(t *testing.T) {
	var groups []cluster.GroupID
	for g := range 60 {
		groups = append(groups, cluster.GroupID(g+1))
	}
	c := newTestCluster(t, 3, nil, 0)
	// A slower clock than the other tests: under the race detector on a
	// busy machine, 180 groups at 5 ms would spend their time electing.
	c.tick = 20 * time.Millisecond
	for _, id := range c.ids {
		c.stop(id)
	}
	c.groups = groups
	for _, id := range c.ids {
		c.start(id)
	}
	for _, g := range groups {
		c.proposeApplied(c.ids[int(g)%3], g, fmt.Sprint("g", g))
	}
}

// TestBadPeerMessageStopsOnlyItsGroup: a message no correct peer sends,
// which makes Raft panic, stops that group; the process and the other
// groups carry on.
func TestBadPeerMessageStopsOnlyItsGroup(t *testing.T) {
	c := newTestCluster(t, 3, []cluster.GroupID{1, 2}, 0)
	lead := c.leader(1)
	victim := c.follower(1, lead)
	st, err := c.nodes[victim].host.Status(1)
	if err != nil {
		t.Fatal(err)
	}
	// A heartbeat of the current term that commits far past the log.
	envs := make([]cluster.Envelope, 1)
	env := &envs[0]
	env.Group = 1
	env.Msg.Type = raftpb.MsgHeartbeat.Enum()
	env.Msg.From, env.Msg.To = proto.Uint64(lead), proto.Uint64(victim)
	env.Msg.Term = proto.Uint64(st.HardState.GetTerm())
	env.Msg.Commit = proto.Uint64(1 << 40)
	c.nodes[victim].host.receive(lead, envs)
	if err := c.nodes[victim].host.Err(1); err == nil {
		t.Fatal("group 1 still runs after a heartbeat committing past its log")
	}
	if err := c.nodes[victim].host.Err(2); err != nil {
		t.Fatalf("group 2 stopped too: %v", err)
	}
	c.proposeApplied(victim, 2, "still-here")
}
