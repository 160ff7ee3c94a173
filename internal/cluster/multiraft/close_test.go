package multiraft

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3/raftpb"
)

// gatedStorage is a DiskStorage whose Save waits for the gate, once armed.
type gatedStorage struct {
	*DiskStorage
	armed   atomic.Bool
	entered chan struct{} // a Save is waiting at the gate
	gate    chan struct{} // closed: the waiting Save goes on
	done    atomic.Bool   // the gated Save returned
}

func (s *gatedStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	if len(ents) > 0 && s.armed.CompareAndSwap(true, false) {
		close(s.entered)
		<-s.gate
		defer s.done.Store(true)
	}
	return s.DiskStorage.Save(hs, ents, snap)
}

// TestCloseWaitsForTheReadyBeingHandled: Close returns only once the
// Ready a worker is saving is done, so that the owner may close the
// storage after Close (the package's contract).
func TestCloseWaitsForTheReadyBeingHandled(t *testing.T) {
	const g = cluster.GroupID(1)
	net := NewLocalNetwork()
	tr := net.Transport(1)
	ds, err := OpenDiskStorage(filepath.Join(t.TempDir(), "g"))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	st := &gatedStorage{DiskStorage: ds, entered: make(chan struct{}), gate: make(chan struct{})}
	h := New(Options{NodeID: 1, Transport: tr, TickInterval: 5 * time.Millisecond, Logger: quietLogger()})
	if err := h.AddGroup(GroupConfig{ID: g, Storage: st, StateMachine: &listSM{}, Voters: []cluster.NodeID{1}}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	h.Start()
	waitFor(t, "the group's leader", func() bool { return h.Leader(g) == 1 })

	st.armed.Store(true)
	go h.Propose(context.Background(), g, []byte("x"))
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the proposal's Save did not start")
	}
	closed := make(chan struct{})
	go func() { h.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a worker was in Save")
	case <-time.After(200 * time.Millisecond):
	}
	close(st.gate)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return once the Save was done")
	}
	if !st.done.Load() {
		t.Fatal("Close returned before the Save did")
	}
}
