package multiraft

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// memStorage is a Storage without a disk, for measuring the host alone.
type memStorage struct{ *raft.MemoryStorage }

func (m memStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	if snap != nil && !raft.IsEmptySnap(snap) {
		if err := m.ApplySnapshot(snap); err != nil {
			return err
		}
	}
	if err := m.Append(ents); err != nil {
		return err
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		return m.SetHardState(hs)
	}
	return nil
}

func (m memStorage) Compact(index uint64, cs *raftpb.ConfState, data []byte) error {
	if _, err := m.CreateSnapshot(index, cs, data); err != nil {
		return err
	}
	return m.MemoryStorage.Compact(index)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleGroups measures the CPU that idle groups cost: three hosts
// in one process (default 100 ms tick) with -groups groups each, all with
// leaders and nothing to do, over one second per b.N. It reports the CPU
// used as a share of one core, for the three hosts together.
//
//	go test -run XXX -bench IdleGroups -benchtime 3x ./internal/cluster/multiraft/
func BenchmarkIdleGroups(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			net := NewLocalNetwork()
			ids := []cluster.NodeID{1, 2, 3}
			var hosts []*Host
			for _, id := range ids {
				tr := net.Transport(id)
				h := New(Options{NodeID: id, Transport: tr, Logger: quietLogger()})
				for g := 1; g <= n; g++ {
					if err := h.AddGroup(GroupConfig{ID: cluster.GroupID(g), Storage: memStorage{raft.NewMemoryStorage()}, StateMachine: &listSM{}, Voters: ids}); err != nil {
						b.Fatal(err)
					}
				}
				tr.Start()
				h.Start()
				defer tr.Close()
				defer h.Close()
				hosts = append(hosts, h)
			}
			waitFor(b, "every group to have a leader", func() bool {
				for _, h := range hosts {
					for g := 1; g <= n; g++ {
						if h.Leader(cluster.GroupID(g)) == 0 {
							return false
						}
					}
				}
				return true
			})
			time.Sleep(time.Second) // let elections settle
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			for range b.N {
				time.Sleep(time.Second)
			}
			used := cpuTime() - cpu
			b.ReportMetric(100*used.Seconds()/time.Since(start).Seconds(), "%cpu")
		})
	}
}
