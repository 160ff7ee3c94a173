package transport

import (
	"fmt"
	"io"
	"log"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// raftHost is a minimal multi-Raft host for this test only: one
// goroutine owning the RawNodes of many groups, stepping what the
// transport delivers, sending each Ready round's messages with one Send
// per peer. The real host is cluster/multiraft.
type raftHost struct {
	id      cluster.NodeID
	tr      *Transport
	groups  map[cluster.GroupID]*raft.RawNode
	stores  map[cluster.GroupID]*raft.MemoryStorage
	inbox   chan []cluster.Envelope
	propose chan cluster.GroupID
	done    chan struct{}

	mu        sync.Mutex
	leader    map[cluster.GroupID]cluster.NodeID
	committed map[cluster.GroupID]int // proposals seen committed
}

func (h *raftHost) run(peers []cluster.NodeID) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-tick.C:
			for _, rn := range h.groups {
				rn.Tick()
			}
		case envs := <-h.inbox:
			for i := range envs {
				if rn := h.groups[envs[i].Group]; rn != nil {
					rn.Step(&envs[i].Msg)
				}
			}
		case g := <-h.propose:
			h.groups[g].Propose(fmt.Appendf(nil, "proposal for group %d", g))
		}
		out := make(map[cluster.NodeID][]cluster.Envelope)
		for g, rn := range h.groups {
			for rn.HasReady() {
				rd := rn.Ready()
				if !raft.IsEmptyHardState(rd.HardState) {
					h.stores[g].SetHardState(rd.HardState)
				}
				h.stores[g].Append(rd.Entries)
				for _, m := range rd.Messages {
					to := m.GetTo()
					out[to] = append(out[to], cluster.Envelope{Group: g})
					proto.Merge(&out[to][len(out[to])-1].Msg, m)
				}
				n := 0
				for _, e := range rd.CommittedEntries {
					if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
						n++
					}
				}
				h.mu.Lock()
				h.committed[g] += n
				h.leader[g] = rn.BasicStatus().Lead
				h.mu.Unlock()
				rn.Advance(rd)
			}
		}
		for _, p := range peers {
			if len(out[p]) > 0 {
				h.tr.Send(p, out[p])
			}
		}
	}
}

// TestRealRaftGroups runs 30 Raft groups of go.etcd.io/raft on three
// nodes over three transports: every group elects a leader, commits a
// proposal on every node, and the leaders' heartbeats travel coalesced.
func TestRealRaftGroups(t *testing.T) {
	const ngroups = 30
	nodes := startNodes(t, 3, nil)
	hosts := make([]*raftHost, 4)
	ids := []cluster.NodeID{1, 2, 3}
	for _, id := range ids {
		h := &raftHost{
			id: id, tr: nodes[id].Transport,
			groups: make(map[cluster.GroupID]*raft.RawNode), stores: make(map[cluster.GroupID]*raft.MemoryStorage),
			inbox: make(chan []cluster.Envelope, 64), propose: make(chan cluster.GroupID, ngroups),
			done:   make(chan struct{}),
			leader: make(map[cluster.GroupID]cluster.NodeID), committed: make(map[cluster.GroupID]int),
		}
		for g := cluster.GroupID(1); g <= ngroups; g++ {
			st := raft.NewMemoryStorage()
			rn, err := raft.NewRawNode(&raft.Config{
				ID: id, ElectionTick: 20, HeartbeatTick: 2, Storage: st,
				MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 64, CheckQuorum: true, PreVote: true,
				Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := rn.Bootstrap([]raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}); err != nil {
				t.Fatal(err)
			}
			h.groups[g], h.stores[g] = rn, st
		}
		hosts[id] = h
	}
	for _, id := range ids {
		h := hosts[id]
		// startNodes gave each transport a recording inbox; hand its
		// batches to the Raft loop instead.
		fwd := func(_ cluster.NodeID, envs []cluster.Envelope) {
			select {
			case h.inbox <- envs:
			case <-h.done:
			}
		}
		nodes[id].in.fwd.Store(&fwd)
	}
	waitMesh(t, nodes)
	var wg sync.WaitGroup
	for _, id := range ids {
		peers := make([]cluster.NodeID, 0, 2)
		for _, p := range ids {
			if p != id {
				peers = append(peers, p)
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); hosts[id].run(peers) }()
	}
	defer func() {
		for _, id := range ids {
			close(hosts[id].done)
		}
		wg.Wait()
	}()

	leaderOf := func(g cluster.GroupID) cluster.NodeID {
		var lead cluster.NodeID
		for _, id := range ids {
			hosts[id].mu.Lock()
			l := hosts[id].leader[g]
			hosts[id].mu.Unlock()
			if l == 0 || (lead != 0 && l != lead) {
				return 0
			}
			lead = l
		}
		return lead
	}
	for g := cluster.GroupID(1); g <= ngroups; g++ {
		waitFor(t, fmt.Sprintf("a leader of group %d all agree on", g), func() bool { return leaderOf(g) != 0 })
		hosts[leaderOf(g)].propose <- g
	}
	for g := cluster.GroupID(1); g <= ngroups; g++ {
		for _, id := range ids {
			h := hosts[id]
			waitFor(t, fmt.Sprintf("group %d commits on node %d", g, id), func() bool {
				h.mu.Lock()
				defer h.mu.Unlock()
				return h.committed[g] >= 1
			})
		}
	}
	var coalesced, messages, frames uint64
	for _, id := range ids {
		s := nodes[id].Stats()
		coalesced += s.HeartbeatsCoalesced
		messages += s.MessagesSent
		frames += s.FramesSent
	}
	if coalesced == 0 {
		t.Fatal("no heartbeat travelled coalesced")
	}
	t.Logf("%d messages (%d coalesced heartbeats) in %d frames", messages, coalesced, frames)
}
