package multiraft

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/transport"
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
// in one process (default 100 ms tick) with N groups each, all with
// leaders and nothing to do, over one second per b.N. It reports the CPU
// used as a share of one core for the three hosts together (%cpu), and
// the heap in use after a GC for the three (heapMB) and the process's
// resident set (rssMB: the test binary, three hosts). Sub-benchmarks
// "ticking" run with Options.NoQuiesce, as the host was before
// quiescence.
//
//	go test -run XXX -bench IdleGroups -benchtime 3x ./internal/cluster/multiraft/
func BenchmarkIdleGroups(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, ticking := range []bool{false, true} {
			name := fmt.Sprint(n)
			if ticking {
				name += "-ticking"
			}
			b.Run(name, func(b *testing.B) { benchIdle(b, n, ticking) })
		}
	}
}

// BenchmarkIdleGroupsTCP is BenchmarkIdleGroups with 1,000 groups over
// the real transport (loopback TCP, a secret, default keepalives) instead
// of the LocalNetwork.
func BenchmarkIdleGroupsTCP(b *testing.B) {
	for _, ticking := range []bool{false, true} {
		name := "1000"
		if ticking {
			name += "-ticking"
		}
		b.Run(name, func(b *testing.B) {
			peers := make(map[cluster.NodeID]string)
			for id := cluster.NodeID(1); id <= 3; id++ {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				peers[id] = ln.Addr().String()
				ln.Close()
			}
			newTr := func(id cluster.NodeID) cluster.Transport {
				tr, err := transport.New(cluster.Config{NodeID: id, Peers: peers, ClusterID: "bench", Secret: []byte("s")},
					transport.Options{Logger: quietLogger()})
				if err != nil {
					b.Fatal(err)
				}
				return tr
			}
			benchIdleOn(b, 1000, ticking, newTr)
		})
	}
}

func benchIdle(b *testing.B, n int, ticking bool) {
	net := NewLocalNetwork()
	benchIdleOn(b, n, ticking, net.Transport)
}

func benchIdleOn(b *testing.B, n int, ticking bool, newTransport func(cluster.NodeID) cluster.Transport) {
	ids := []cluster.NodeID{1, 2, 3}
	var hosts []*Host
	for _, id := range ids {
		tr := newTransport(id)
		h := New(Options{NodeID: id, Transport: tr, Logger: quietLogger(), NoQuiesce: ticking})
		for g := 1; g <= n; g++ {
			if err := h.AddGroup(GroupConfig{ID: cluster.GroupID(g), Storage: memStorage{raft.NewMemoryStorage()}, StateMachine: &listSM{}, Voters: ids}); err != nil {
				b.Fatal(err)
			}
		}
		if err := tr.Start(); err != nil {
			b.Fatal(err)
		}
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
	if !ticking {
		waitFor(b, "every group to quiesce", func() bool {
			for _, h := range hosts {
				if h.Stats().Quiesced != n {
					return false
				}
			}
			return true
		})
	}
	time.Sleep(time.Second) // let elections settle
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for range b.N {
		time.Sleep(time.Second)
	}
	used := cpuTime() - cpu
	b.ReportMetric(100*used.Seconds()/time.Since(start).Seconds(), "%cpu")
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMB")
	if rss := residentBytes(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "rssMB")
	}
}

// residentBytes is the process's resident set (Linux), 0 if unknown.
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
