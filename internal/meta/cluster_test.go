package meta

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"go.etcd.io/raft/v3/tracker"
)

// metaNode is one node of a clustered-metadata test: a host on a
// LocalNetwork and the Store replicating the metadata group.
type metaNode struct {
	tr    cluster.Transport
	host  *multiraft.Host
	store *Store
}

type metaCluster struct {
	t     testing.TB
	net   *multiraft.LocalNetwork
	ids   []cluster.NodeID
	dirs  map[cluster.NodeID]string
	nodes map[cluster.NodeID]*metaNode
	opts  Options
}

func newMetaCluster(t testing.TB, snapshotEvery int) *metaCluster {
	c := &metaCluster{t: t, net: multiraft.NewLocalNetwork(), ids: []cluster.NodeID{1, 2, 3},
		dirs: make(map[cluster.NodeID]string), nodes: make(map[cluster.NodeID]*metaNode),
		opts: Options{SnapshotEvery: snapshotEvery, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	for _, id := range c.ids {
		c.dirs[id] = filepath.Join(t.TempDir(), "meta")
		c.open(id)
	}
	t.Cleanup(func() {
		for _, id := range c.ids {
			if c.nodes[id] != nil {
				c.close(id)
			}
		}
	})
	return c
}

func (c *metaCluster) open(id cluster.NodeID) *Store {
	c.t.Helper()
	tr := c.net.Transport(id)
	host := multiraft.New(multiraft.Options{NodeID: id, Transport: tr, TickInterval: 5 * time.Millisecond, Logger: c.opts.Logger})
	st, err := OpenCluster(c.dirs[id], c.opts, ClusterOptions{Host: host, Voters: c.ids, ProposeTimeout: 2 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	tr.Start()
	host.Start()
	c.nodes[id] = &metaNode{tr: tr, host: host, store: st}
	return st
}

func (c *metaCluster) close(id cluster.NodeID) {
	n := c.nodes[id]
	if err := n.store.Close(); err != nil {
		c.t.Error(err)
	}
	n.host.Close()
	n.tr.Close()
	c.nodes[id] = nil
}

func (c *metaCluster) leader() cluster.NodeID {
	c.t.Helper()
	var lead cluster.NodeID
	poll(c.t, "a metadata leader", func() bool {
		lead = 0
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			l := n.host.Leader(cluster.MetaGroup)
			if l == 0 || (lead != 0 && l != lead) || c.nodes[l] == nil {
				return false
			}
			lead = l
		}
		return lead != 0
	})
	return lead
}

func (c *metaCluster) other(not cluster.NodeID) cluster.NodeID {
	for _, id := range c.ids {
		if id != not && c.nodes[id] != nil {
			return id
		}
	}
	c.t.Fatal("no other node")
	return 0
}

// createTopic creates a topic through node id, retrying while the group
// has no leader.
func (c *metaCluster) createTopic(id cluster.NodeID, name string) {
	c.t.Helper()
	timedOut := false
	poll(c.t, "topic "+name+" created", func() bool {
		_, err := c.nodes[id].store.CreateTopic(name, 1, nil)
		if errors.Is(err, ErrNoLeader) || errors.Is(err, ErrProposalTimeout) {
			timedOut = timedOut || errors.Is(err, ErrProposalTimeout)
			return false
		}
		if timedOut && errors.Is(err, ErrTopicExists) {
			return true // the attempt that timed out was applied after all
		}
		if err != nil {
			c.t.Fatalf("create %s on node %d: %v", name, id, err)
		}
		return true
	})
}

// waitEqual waits until every open node's state is the same and has
// topic name.
func (c *metaCluster) waitEqual(name string) {
	c.t.Helper()
	poll(c.t, "equal states with topic "+name, func() bool {
		var want []byte
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			if _, ok := n.store.Topic(name); !ok {
				return false
			}
			n.store.mu.RLock()
			got, err := n.store.state.MarshalJSON()
			n.store.mu.RUnlock()
			if err != nil {
				c.t.Fatal(err)
			}
			if want != nil && !bytes.Equal(got, want) {
				return false
			}
			want = got
		}
		return true
	})
}

func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClusterFollowerProposalAppliesEverywhere(t *testing.T) {
	c := newMetaCluster(t, 0)
	lead := c.leader()
	f := c.other(lead)
	topic, err := c.nodes[f].store.CreateTopic("orders", 3, map[string]string{"retention.ms": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	// The proposer has applied it when it returns.
	if got, ok := c.nodes[f].store.Topic("orders"); !ok || got.ID != topic.ID {
		t.Fatalf("proposer's own state: %+v %v", got, ok)
	}
	c.waitEqual("orders")
	// A command refused by the state is refused on the proposing node.
	if _, err := c.nodes[lead].store.CreateTopic("orders", 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v, want ErrTopicExists", err)
	}
	// Several commands proposed together each get their own answer.
	_, errs := c.nodes[f].store.CreateTopics([]TopicSpec{{Name: "a", Partitions: 1}, {Name: "orders", Partitions: 1}, {Name: "b", Partitions: 2}})
	if errs[0] != nil || !errors.Is(errs[1], ErrTopicExists) || errs[2] != nil {
		t.Fatalf("CreateTopics errors: %v", errs)
	}
	c.waitEqual("b")
}

func TestClusterLeaderClosedAnotherLeads(t *testing.T) {
	c := newMetaCluster(t, 0)
	lead := c.leader()
	c.createTopic(lead, "before")
	c.waitEqual("before")
	c.close(lead)
	next := c.leader()
	if next == lead {
		t.Fatalf("closed node %d still leads", lead)
	}
	c.createTopic(c.other(next), "after")
	c.waitEqual("after")

	// The closed node reopens from its directory and catches up.
	c.open(lead)
	c.waitEqual("after")
	c.createTopic(lead, "from-reopened")
	c.waitEqual("from-reopened")
}

func TestClusterReopenKeepsHardState(t *testing.T) {
	c := newMetaCluster(t, 0)
	lead := c.leader()
	c.createTopic(lead, "t")
	c.waitEqual("t")
	f := c.other(lead)
	st, err := c.nodes[f].host.Status(cluster.MetaGroup)
	if err != nil {
		t.Fatal(err)
	}
	term, vote := st.HardState.GetTerm(), st.HardState.GetVote()
	c.close(f)
	// What the reopened node starts from is what it had promised.
	s := c.open(f)
	hs, _, err := s.raft.storage.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if hs.GetTerm() < term || (hs.GetTerm() == term && hs.GetVote() != vote) {
		t.Fatalf("reopened at term %d vote %d, had term %d vote %d", hs.GetTerm(), hs.GetVote(), term, vote)
	}
	if hs.GetCommit() == 0 {
		t.Fatal("reopened with commit index 0")
	}
	c.createTopic(f, "t2")
	c.waitEqual("t2")
}

func TestClusterFarBehindCatchesUpBySnapshot(t *testing.T) {
	c := newMetaCluster(t, 5)
	lead := c.leader()
	lag := c.other(lead)
	c.close(lag)
	for i := range 30 {
		c.createTopic(lead, fmt.Sprint("t", i))
	}
	poll(t, "the leader to take a snapshot", func() bool {
		return c.nodes[lead].store.Stats().SnapshotIndex > 25
	})
	// Appends the leader built while it still streamed to the closed node
	// may be in a round being sent; once it probes the node, and a later
	// entry has reached the other follower, they are gone.
	poll(t, "the leader to probe the closed node", func() bool {
		st, err := c.nodes[lead].host.Status(cluster.MetaGroup)
		return err == nil && st.Progress[lag].State == tracker.StateProbe
	})
	c.createTopic(lead, "fence")
	c.waitEqual("fence")
	c.open(lag)
	c.waitEqual("fence")
	if c.nodes[lag].store.raft.received.Load() == 0 {
		t.Fatal("the lagging node caught up without a snapshot")
	}
	// And it restarts from its own snapshot.
	c.close(lag)
	c.open(lag)
	c.createTopic(lag, "after")
	c.waitEqual("after")
}

func TestClusterNoQuorumFailsRatherThanHangs(t *testing.T) {
	c := newMetaCluster(t, 0)
	lead := c.leader()
	c.createTopic(lead, "t")
	c.waitEqual("t")
	alone := c.other(lead)
	for _, id := range c.ids {
		if id != alone {
			c.close(id)
		}
	}
	_, err := c.nodes[alone].store.CreateTopic("lost", 1, nil)
	if !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrProposalTimeout) {
		t.Fatalf("create without a quorum: %v, want ErrNoLeader or ErrProposalTimeout", err)
	}
	if _, ok := c.nodes[alone].store.Topic("lost"); ok {
		t.Fatal("a topic was created without a quorum")
	}
	// Reads still work.
	if _, ok := c.nodes[alone].store.Topic("t"); !ok {
		t.Fatal("a read failed without a quorum")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEntry(nil, 1, 2, []byte(`{"type":"create_topic"}`)))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		origin, id, payload, err := decodeEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(appendEntry(nil, origin, id, payload), b) {
			t.Fatal("entry does not round-trip")
		}
		if cmd, err := decodeCommand(payload); err == nil {
			NewState().Apply(cmd)
		}
	})
}

// BenchmarkClusterCreateTopic measures metadata changes through Raft on
// three nodes in one process (LocalNetwork, real fsyncs), proposed from a
// follower by concurrent callers.
func BenchmarkClusterCreateTopic(b *testing.B) {
	c := newMetaCluster(b, 0)
	lead := c.leader()
	s := c.nodes[c.other(lead)].store
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.CreateTopic(fmt.Sprint("bench-", n.Add(1)), 1, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// FuzzDecodeSnapshot: a Raft snapshot's data comes from the leader; a
// follower decodes it as a metadata snapshot without panicking, and a
// state that decodes encodes again.
func FuzzDecodeSnapshot(f *testing.F) {
	st := NewState()
	st.Apply(NewCommand(&CreateTopicCmd{Name: "t", ID: newTopicID(), Partitions: 1}))
	js, _ := st.MarshalJSON()
	f.Add(encodeSnapshot(7, js))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, st, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		if _, err := st.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
	})
}
