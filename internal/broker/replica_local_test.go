package broker

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/sluice-mq/sluice/internal/testutil"
)

// replNode is one node of an in-process cluster: a Raft host on a
// LocalNetwork and a broker shell that opens one replicated partition.
type replNode struct {
	id   cluster.NodeID
	tr   cluster.Transport
	host *multiraft.Host
	b    *Broker
	p    *Partition
}

var replTopic = meta.Topic{Name: "t", ID: meta.TopicID{1, 2, 3}, Partitions: 1, Replicas: [][]int32{{1, 2, 3}}}

func startReplNode(t *testing.T, net *multiraft.LocalNetwork, id cluster.NodeID, dir string) *replNode {
	t.Helper()
	var out io.Writer = io.Discard
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, nil)).With("node", id)
	tr := net.Transport(id)
	host := multiraft.New(multiraft.Options{NodeID: id, Transport: tr, TickInterval: 10 * time.Millisecond, Logger: logger})
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	host.Start()
	b := &Broker{opts: Options{DataDir: dir, NodeID: uint64(id), Now: time.Now, Replication: ReplicationOptions{Host: host, ProposeTimeout: 5 * time.Second, LagTime: 300 * time.Millisecond}}, log: logger}
	tp := &Topic{Topic: replTopic, cfg: resolve(Defaults{}, nil, nil)}
	if err := os.MkdirAll(b.topicsDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.openPartitions(tp, 0, 1); err != nil {
		t.Fatal(err)
	}
	return &replNode{id: id, tr: tr, host: host, b: b, p: tp.Partitions[0]}
}

func (n *replNode) stop() {
	n.p.log.Close()
	n.host.Close()
	n.tr.Close()
}

// startReplCluster starts three replNodes of replTopic's partition on an
// in-memory network, stopped when the test ends (nodes set to nil are
// ones the test stopped itself).
func startReplCluster(t *testing.T) (*multiraft.LocalNetwork, map[cluster.NodeID]string, []*replNode) {
	t.Helper()
	net := multiraft.NewLocalNetwork()
	dirs := map[cluster.NodeID]string{1: t.TempDir(), 2: t.TempDir(), 3: t.TempDir()}
	nodes := []*replNode{startReplNode(t, net, 1, dirs[1]), startReplNode(t, net, 2, dirs[2]), startReplNode(t, net, 3, dirs[3])}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n != nil {
				n.stop()
			}
		}
	})
	return net, dirs, nodes
}

// replProduce appends b through l and waits for its offsets.
func replProduce(t *testing.T, l *replNode, b []byte) AppendResult {
	t.Helper()
	_, ap, err := l.p.Append(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := ap.Wait(); err != nil {
		t.Fatal(err)
	}
	return ap.(ResultPending).Result()
}

// leaderOf waits for one of nodes to lead the partition's group.
func leaderOf(t *testing.T, nodes []*replNode) *replNode {
	t.Helper()
	var l *replNode
	testutil.WaitFor(t, 10*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n != nil && n.p.repl.state().Leader == uint64(n.id) && n.p.repl.settled() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// TestReplicatedPartitionOverRaft: three replicas of a partition over an
// in-memory network. Produces through the leader land at the same offsets
// on every replica, stamped with the leader's term; a retried idempotent
// batch is a duplicate on a new leader too; a replica restarted from its
// directory resumes from its checkpoint without applying anything twice;
// and a replica whose log ends past its checkpoint rebuilds it from the
// Raft log.
func TestReplicatedPartitionOverRaft(t *testing.T) {
	net, dirs, nodes := startReplCluster(t)
	produce := func(l *replNode, b []byte) AppendResult { t.Helper(); return replProduce(t, l, b) }
	l := leaderOf(t, nodes)
	for seq := int32(0); seq < 10; seq++ {
		if res := produce(l, producerBatch(9, 0, seq*2, 2)); res.BaseOffset != int64(seq*2) {
			t.Fatalf("batch %d at %d", seq, res.BaseOffset)
		}
	}
	// Not idempotent: only the checkpoint keeps it from being applied twice.
	if res := produce(l, storage.BuildBatch(0, 1000, [][]byte{[]byte("plain")})); res.BaseOffset != 20 {
		t.Fatalf("plain batch at %d", res.BaseOffset)
	}
	for _, n := range nodes {
		testutil.WaitFor(t, 10*time.Second, "every replica applies", func() bool {
			_, hw, _ := n.p.Offsets()
			return hw == 21
		})
	}
	term := l.p.repl.state().Term
	if epoch, end, err := l.p.EndOffsetForEpoch(int32(term)); err != nil || epoch != int32(term) || end != 21 {
		t.Fatalf("EndOffsetForEpoch(%d) = %d, %d, %v", term, epoch, end, err)
	}

	// The leader goes; a retry of its last batch is a duplicate on the
	// new leader, and the next batch follows.
	old := l
	net.Isolate(old.id, 1, 2, 3)
	old.stop()
	nodes[old.id-1] = nil
	l = leaderOf(t, nodes)
	if res := produce(l, producerBatch(9, 0, 18, 2)); res.BaseOffset != 18 {
		t.Fatalf("retried batch answered at %d, want the original 18", res.BaseOffset)
	}
	if res := produce(l, producerBatch(9, 0, 20, 2)); res.BaseOffset != 21 {
		t.Fatalf("next batch at %d", res.BaseOffset)
	}
	// With one replica of three gone, the ISR shrinks to two once the lag
	// time has passed: min.insync.replicas 3 refuses acks=all, 2 does not.
	l.p.minInsync.Store(3)
	testutil.WaitFor(t, 10*time.Second, "the ISR to shrink", func() bool {
		return errors.Is(l.p.CheckInSync(), ErrNotEnoughReplicas)
	})
	if isr := l.p.repl.state().ISR; len(isr) != 2 {
		t.Fatalf("ISR %v", isr)
	}
	l.p.minInsync.Store(2)
	if err := l.p.CheckInSync(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.p.Append(producerBatch(9, 0, 30, 1)); err != nil {
		t.Fatal(err)
	} // a gap: refused when applied
	net.Heal()

	// The old leader restarts from its directory: it catches up without
	// applying again what it had.
	nodes[old.id-1] = startReplNode(t, net, old.id, dirs[old.id])
	back := nodes[old.id-1]
	testutil.WaitFor(t, 10*time.Second, "the restarted replica catches up", func() bool {
		_, hw, _ := back.p.Offsets()
		return hw == 23
	})

	// A log that ends past its checkpoint is rebuilt from the Raft log.
	back.stop()
	nodes[old.id-1] = nil
	rdir := filepath.Join(dirs[old.id], "topics", "t-0.raft")
	if err := writeAppliedCheckpoint(rdir, 1, 5); err != nil {
		t.Fatal(err)
	}
	nodes[old.id-1] = startReplNode(t, net, old.id, dirs[old.id])
	back = nodes[old.id-1]
	testutil.WaitFor(t, 10*time.Second, "the rebuilt replica catches up", func() bool {
		_, hw, _ := back.p.Offsets()
		return hw == 23
	})
	data := readBatches(t, back.p) // (over segments: a cut log may have rolled)
	var offs []int64
	for _, o := range batchOffsets(t, data) {
		offs = append(offs, o[0])
	}
	if len(offs) != 12 || offs[0] != 0 || offs[11] != 21 {
		t.Fatalf("rebuilt log's batches at %v", offs)
	}
}
