package multiraft

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/transport"
	"go.etcd.io/raft/v3"
)

// Over the real transport (loopback TCP), where node liveness is a
// connection being up: a quiesced group whose leader is partitioned off
// with Block elects a new leader, and after healing the old leader
// catches up and the group quiesces again.
func TestQuiescedGroupPartitionedOverTCP(t *testing.T) {
	ids := []cluster.NodeID{1, 2, 3}
	peers := make(map[cluster.NodeID]string)
	for _, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peers[id] = ln.Addr().String()
		ln.Close()
	}
	trs := make(map[cluster.NodeID]*transport.Transport)
	hosts := make(map[cluster.NodeID]*Host)
	sms := make(map[cluster.NodeID]*listSM)
	const g cluster.GroupID = 1
	for _, id := range ids {
		tr, err := transport.New(cluster.Config{NodeID: id, Peers: peers, ClusterID: "q", Secret: []byte("s")},
			transport.Options{Logger: quietLogger(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		h := New(Options{NodeID: id, Transport: tr, TickInterval: 10 * time.Millisecond, Logger: quietLogger()})
		sms[id] = &listSM{}
		if err := h.AddGroup(GroupConfig{ID: g, Storage: memStorage{raft.NewMemoryStorage()}, StateMachine: sms[id], Voters: ids}); err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(); err != nil {
			t.Fatal(err)
		}
		h.Start()
		t.Cleanup(func() { h.Close(); tr.Close() })
		trs[id], hosts[id] = tr, h
	}
	leaderAmong := func(among ...cluster.NodeID) cluster.NodeID {
		var lead cluster.NodeID
		waitFor(t, "a leader", func() bool {
			lead = 0
			for _, id := range among {
				l := hosts[id].Leader(g)
				if l == 0 || (lead != 0 && l != lead) || !slices.Contains(among, l) {
					return false
				}
				lead = l
			}
			return true
		})
		return lead
	}
	proposeUntilApplied := func(on cluster.NodeID, v string, among ...cluster.NodeID) {
		waitFor(t, v+" applied", func() bool {
			err := hosts[on].Propose(context.Background(), g, []byte(v))
			if err != nil && !errors.Is(err, ErrProposalDropped) {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				done := true
				for _, id := range among {
					done = done && slices.Contains(sms[id].values(), v)
				}
				if done {
					return true
				}
				time.Sleep(5 * time.Millisecond)
			}
			return false
		})
	}
	allQuiesced := func() {
		waitFor(t, "the group to quiesce everywhere", func() bool {
			for _, id := range ids {
				if !hosts[id].Quiesced(g) {
					return false
				}
			}
			return true
		})
	}

	old := leaderAmong(ids...)
	proposeUntilApplied(old, "a", ids...)
	allQuiesced()

	var rest []cluster.NodeID
	for _, id := range ids {
		if id != old {
			rest = append(rest, id)
			trs[old].Block(id, true)
		}
	}
	lead := leaderAmong(rest...)
	waitFor(t, "the partitioned leader to step down", func() bool { return hosts[old].Leader(g) != old })
	proposeUntilApplied(lead, "b", rest...)

	for _, id := range rest {
		trs[old].Block(id, false)
	}
	waitFor(t, "b applied on the healed node", func() bool { return slices.Contains(sms[old].values(), "b") })
	allQuiesced()
}
