package multiraft

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3/raftpb"
)

// durableSM checks, at every Apply, that each entry is in its node's
// storage already (saved: DiskStorage appends to its memory only after
// the fsync), and keeps the data of normal entries.
type durableSM struct {
	listSM
	st   *DiskStorage
	mu   sync.Mutex
	errs []string
}

func (s *durableSM) Apply(ents []*raftpb.Entry) {
	last, _ := s.st.LastIndex()
	for _, e := range ents {
		if e.GetIndex() > last {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Sprintf("entry %d applied with the storage's last index %d", e.GetIndex(), last))
			s.mu.Unlock()
		}
	}
	s.listSM.Apply(ents)
}

// TestApplyBeforeSaveAppliesOnlySavedEntries: with ApplyBeforeSave, under
// a stream of proposals through every node (rounds that both save new
// entries and apply earlier ones), no entry is applied before its node
// has saved it, and every node applies the same entries in the same order.
func TestApplyBeforeSaveAppliesOnlySavedEntries(t *testing.T) {
	net := NewLocalNetwork()
	const g = cluster.GroupID(7)
	ids := []cluster.NodeID{1, 2, 3}
	sms := map[cluster.NodeID]*durableSM{}
	hosts := map[cluster.NodeID]*Host{}
	for _, id := range ids {
		st, err := OpenDiskStorage(filepath.Join(t.TempDir(), "g"))
		if err != nil {
			t.Fatal(err)
		}
		tr := net.Transport(id)
		h := New(Options{NodeID: id, Transport: tr, TickInterval: 5 * time.Millisecond, Logger: quietLogger()})
		sm := &durableSM{st: st}
		if err := h.AddGroup(GroupConfig{ID: g, Storage: st, StateMachine: sm, Voters: ids, ApplyBeforeSave: true}); err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(); err != nil {
			t.Fatal(err)
		}
		h.Start()
		sms[id], hosts[id] = sm, h
		t.Cleanup(func() { h.Close(); tr.Close(); st.Close() })
	}
	const per = 300
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; {
				if err := hosts[id].Propose(t.Context(), g, []byte(fmt.Sprintf("%d-%d", id, i))); err == nil {
					i++
				} else {
					time.Sleep(time.Millisecond) // no leader yet
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "every proposal applied everywhere", func() bool {
		for _, id := range ids {
			if len(sms[id].values()) < len(ids)*per {
				return false
			}
		}
		return true
	})
	want := sms[1].values()
	for _, id := range ids {
		sm := sms[id]
		sm.mu.Lock()
		errs := slices.Clone(sm.errs)
		sm.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("node %d: %d entries applied before they were saved, the first: %s", id, len(errs), errs[0])
		}
		if got := sm.values(); !slices.Equal(got, want) {
			t.Fatalf("node %d applied %d values, node 1 %d, or in another order", id, len(got), len(want))
		}
	}
}
