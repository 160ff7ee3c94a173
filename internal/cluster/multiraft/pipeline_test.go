package multiraft

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// heldStorage is a memStorage whose Save waits while held is set, like a
// disk with a stalled fsync.
type heldStorage struct {
	memStorage
	held    *atomic.Bool
	release chan struct{}
}

func (s heldStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	if s.held.Load() && len(ents) > 0 {
		<-s.release
	}
	return s.memStorage.Save(hs, ents, snap)
}

// A group whose Save is stalled on every node does not hold up another
// group of the same hosts: the other's proposals commit and apply while
// the first's entries wait for their fsync.
func TestStalledGroupDoesNotHoldUpOthers(t *testing.T) {
	net := NewLocalNetwork()
	ids := []cluster.NodeID{1, 2, 3}
	var held atomic.Bool
	release := make(chan struct{})
	hosts := map[cluster.NodeID]*Host{}
	sms := map[cluster.NodeID]map[cluster.GroupID]*listSM{}
	for _, id := range ids {
		tr := net.Transport(id)
		h := New(Options{NodeID: id, Transport: tr, TickInterval: 5 * time.Millisecond, Logger: quietLogger()})
		sms[id] = map[cluster.GroupID]*listSM{}
		for _, g := range []cluster.GroupID{1, 2} {
			var st Storage = memStorage{raft.NewMemoryStorage()}
			if g == 1 {
				st = heldStorage{memStorage{raft.NewMemoryStorage()}, &held, release}
			}
			sms[id][g] = &listSM{}
			if err := h.AddGroup(GroupConfig{ID: g, Storage: st, StateMachine: sms[id][g], Voters: ids}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.Start(); err != nil {
			t.Fatal(err)
		}
		h.Start()
		hosts[id] = h
	}
	t.Cleanup(func() {
		held.Store(false)
		close(release)
		for _, h := range hosts {
			h.Close()
		}
	})
	applied := func(g cluster.GroupID, v string) bool {
		for _, id := range ids {
			if !slices.Contains(sms[id][g].values(), v) {
				return false
			}
		}
		return true
	}
	propose := func(g cluster.GroupID, v string) {
		waitFor(t, "a leader taking a proposal", func() bool {
			for _, id := range ids {
				if hosts[id].Leader(g) == id {
					return hosts[id].Propose(context.Background(), g, []byte(v)) == nil
				}
			}
			return false
		})
	}
	for _, g := range []cluster.GroupID{1, 2} {
		propose(g, "first")
		waitFor(t, "the first proposals applied", func() bool { return applied(g, "first") })
	}

	held.Store(true)
	propose(1, "stalled")
	propose(2, "second")
	waitFor(t, "group 2's proposal applied while group 1's Save is stalled", func() bool { return applied(2, "second") })
	if applied(1, "stalled") {
		t.Fatal("group 1's entry was applied while every node's Save of it was stalled")
	}
}
