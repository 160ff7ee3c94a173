package test

// A fault-schedule test in the style of Jepsen: a three-node cluster under
// produce and consume load while random faults hit it — kill -9 and
// restart, SIGSTOP / SIGCONT pauses, and network partitions (a faultinject
// build's POST /debug/cluster cuts a node's node-to-node traffic) — then
// healed, after which a checker reads everything back and looks for
// anomalies:
//
//   - lost: a record acknowledged (acks=all) that is missing, or not at the
//     offset it was acknowledged at;
//   - duplicate: a value present twice;
//   - phantom read: a record a consumer saw during the run that is not in
//     the final log at the same place (a read of data later lost);
//   - reorder: one producer's acknowledged records to a partition out of
//     their send order;
//   - divergence: replicas of a partition whose logs differ (compared on
//     disk after a clean stop, for partitions with more than one replica).
//
// The storage below the logs is volatile (SLUICE_FAULT_VOLATILE): what is
// not fsynced dies with a killed process, as in a power loss.
//
// CI runs one short trial; SLUICE_CLUSTER_TRIALS and
// SLUICE_CLUSTER_FAULT_SECONDS make longer campaigns (docs/clustering.md
// reports them).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-mq/sluice/internal/storage"
)

func TestClusterFaultSchedule(t *testing.T) {
	trials := envInt(t, "SLUICE_CLUSTER_TRIALS", 1)
	seconds := envInt(t, "SLUICE_CLUSTER_FAULT_SECONDS", 12)
	bin := faultServerBin(t)
	// Storage writes live in the process's memory until fsynced, so
	// kill -9 is a power loss for the logs (faults_inject.go).
	t.Setenv("SLUICE_FAULT_VOLATILE", "1")
	total := 0
	for i := range trials {
		seed := uint64(time.Now().UnixNano()) + uint64(i)
		t.Run(fmt.Sprintf("trial-%d-seed-%d", i, seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed>>1))
			length := time.Duration(seconds) * time.Second
			total += runFaultTrial(t, bin, func(nodes []*broker) []string { return randomFaults(t, rng, nodes, length) })
		})
	}
	t.Logf("%d trials, %d anomalies", trials, total)
}

// faultRecord is where a value was seen.
type faultRecord struct {
	partition int32
	offset    int64
}

// TestClusterRollingRestart: every node in turn stopped and restarted
// (gracefully) under produce and consume load; nothing acknowledged is
// lost, clients ride through.
func TestClusterRollingRestart(t *testing.T) {
	all := map[uint64]bool{1: true, 2: true, 3: true}
	runFaultTrial(t, "", func(nodes []*broker) []string {
		var done []string
		for i, b := range nodes {
			time.Sleep(time.Second)
			b.Stop()
			b.Restart()
			waitFor(t, 60*time.Second, "the restarted node back in the cluster", func() bool {
				return agreedLeader(t, nodes, 3, all) != 0
			})
			done = append(done, fmt.Sprintf("restart node %d", i+1))
		}
		time.Sleep(time.Second)
		return done
	})
}

// randomFaults hits random nodes with random faults, one at a time, for
// length, and returns what it did.
func randomFaults(t *testing.T, rng *rand.Rand, nodes []*broker, length time.Duration) []string {
	var faults []string
	deadline := time.Now().Add(length)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
		victim := rng.IntN(3)
		b := nodes[victim]
		hold := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		switch rng.IntN(3) {
		case 0:
			faults = append(faults, fmt.Sprintf("kill -9 node %d for %v", victim+1, hold))
			b.Kill()
			time.Sleep(hold)
			b.Restart()
		case 1:
			faults = append(faults, fmt.Sprintf("pause node %d for %v", victim+1, hold))
			b.cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(hold)
			b.cmd.Process.Signal(syscall.SIGCONT)
		case 2:
			faults = append(faults, fmt.Sprintf("partition node %d away for %v", victim+1, hold))
			clusterFault(t, b, "block")
			time.Sleep(hold)
			clusterFault(t, b, "unblock")
		}
	}
	return faults
}

// runFaultTrial starts a cluster of three (of the server binary bin, ""
// for the usual one), puts it under load while schedule runs its faults,
// heals it, and returns the anomalies it found (each also reported as a
// test error).
func runFaultTrial(t *testing.T, bin string, schedule func(nodes []*broker) []string) int {
	nodes := startClusterOf(t, bin, 3)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	waitFor(t, 30*time.Second, "three nodes, one leader", func() bool { return agreedLeader(t, nodes, 3, all) != 0 })
	seeds := []string{nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka}

	const topic, parts = "faults", 3
	rf := int16(3)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ctx := ctxT(t, 60*time.Second)
	r, err := adm.CreateTopic(ctx, parts, rf, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic)
	if errors.Is(err, kerr.InvalidReplicationFactor) || errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		rf = 1 // partition replication not available: one replica each
		r, err = adm.CreateTopic(ctx, parts, rf, nil, topic)
	}
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v %s", err, r.Err, r.ErrMessage)
	}
	t.Logf("replication factor %d", rf)

	var (
		mu      sync.Mutex
		acked   = map[string]faultRecord{}
		seen    = map[string]faultRecord{}
		order   = map[string][]string{} // producer/partition -> acked values in send order
		unknown int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RecordDeliveryTimeout(8*time.Second), kgo.ProducerLinger(0))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				p := int32(seq % parts)
				v := fmt.Sprintf("w%d-%d", w, seq)
				pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res := cl.ProduceSync(pctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
				cancel()
				mu.Lock()
				if rec, err := res.First(); err == nil {
					acked[v] = faultRecord{rec.Partition, rec.Offset}
					key := fmt.Sprintf("w%d/p%d", w, p)
					order[key] = append(order[key], v)
				} else {
					unknown++
				}
				mu.Unlock()
			}
		}()
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			fs := consumer.PollFetches(fctx)
			cancel()
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = faultRecord{r.Partition, r.Offset} })
			mu.Unlock()
		}
	}()

	// Faults start once the load flows: a new topic's partitions elect
	// their leaders first, which a slow machine (the race detector in CI)
	// can take seconds over, and a schedule that began before would test
	// nothing.
	waitFor(t, 60*time.Second, "records acknowledged before the faults", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 3
	})
	faults := schedule(nodes)
	close(stop)
	wg.Wait()
	t.Logf("faults: %v", faults)
	// Under the race detector and a busy CI machine a restarted node can
	// take a while: two minutes, then what each node sees and the end
	// of its log, so that a cluster that does not heal can be told from
	// a slow one.
	healBy := time.Now().Add(120 * time.Second)
	for agreedLeader(t, nodes, 3, all) == 0 {
		if time.Now().After(healBy) {
			for i, b := range nodes {
				logs := b.Logs()
				t.Logf("node %d sees %+v; the end of its log:\n%s", i+1, clusterView(t, b), logs[max(0, len(logs)-4000):])
			}
			t.Fatal("the cluster did not heal in 2 minutes: three running, one leader")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Read everything back.
	final := map[string]faultRecord{}
	dups := 0
	var ends kadm.ListedOffsets
	waitFor(t, 60*time.Second, "end offsets of every partition", func() bool {
		ends, err = adm.ListEndOffsets(ctxT(t, 10*time.Second), topic)
		return err == nil && ends.Error() == nil
	})
	reader, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	reached := map[int32]bool{}
	lastRead := map[int32]int64{}
	rctx := ctxT(t, 60*time.Second)
	for len(reached) < parts {
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 || lastRead[o.Partition] >= o.Offset-1 {
				reached[o.Partition] = true
			}
		})
		if len(reached) == parts {
			break
		}
		fs := reader.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("final read: only partitions %v reached their end %v", reached, ends)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := final[string(r.Value)]; ok {
				dups++
				t.Errorf("duplicate: %s at %d/%d", r.Value, r.Partition, r.Offset)
			}
			final[string(r.Value)] = faultRecord{r.Partition, r.Offset}
			lastRead[r.Partition] = max(lastRead[r.Partition], r.Offset)
		})
	}

	anomalies := dups
	mu.Lock()
	defer mu.Unlock()
	for v, at := range acked {
		if got, ok := final[v]; !ok || got != at {
			anomalies++
			t.Errorf("lost: %s acknowledged at %d/%d, found %v (present %v)", v, at.partition, at.offset, got, ok)
		}
	}
	for v, at := range seen {
		if got, ok := final[v]; !ok || got != at {
			anomalies++
			t.Errorf("phantom read: %s read at %d/%d during the run, finally %v (present %v)", v, at.partition, at.offset, got, ok)
		}
	}
	for key, vs := range order {
		for i := 1; i < len(vs); i++ {
			if final[vs[i]].offset <= final[vs[i-1]].offset {
				anomalies++
				t.Errorf("reorder: %s: %s at %d before %s at %d", key, vs[i], final[vs[i]].offset, vs[i-1], final[vs[i-1]].offset)
			}
		}
	}
	if rf > 1 {
		for _, b := range nodes {
			b.Stop()
		}
		anomalies += checkReplicasAgree(t, nodes, topic, parts)
	}
	t.Logf("acknowledged %d, unknown outcome %d, read during the run %d, final %d records; %d anomalies",
		len(acked), unknown, len(seen), len(final), anomalies)
	if len(acked) == 0 {
		t.Errorf("nothing was acknowledged: the trial tested nothing")
	}
	return anomalies
}

// clusterFault cuts (op=block) or restores (op=unblock) a faultinject
// node's traffic with every other node.
func clusterFault(t *testing.T, b *broker, op string) {
	resp, err := http.Post("http://"+b.HTTP+"/debug/cluster?op="+op+"&peer=all", "", nil)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("%s: status %d", op, resp.StatusCode)
	}
}

// checkReplicasAgree compares, partition by partition, the batches of
// every replica's log on disk (the nodes stopped) over their common
// length: replicas may lag, never differ.
func checkReplicasAgree(t *testing.T, nodes []*broker, topic string, parts int) int {
	anomalies := 0
	for p := range parts {
		var logs [][][]byte
		for _, b := range nodes {
			dir := filepath.Join(b.DataDir, "topics", fmt.Sprintf("%s-%d", topic, p))
			if _, err := os.Stat(dir); err != nil {
				continue
			}
			batches, err := readBatches(dir)
			if err != nil {
				t.Errorf("reading %s: %v", dir, err)
				anomalies++
				continue
			}
			logs = append(logs, batches)
		}
		if len(logs) < 2 {
			anomalies++
			t.Errorf("partition %d: %d replicas found on disk", p, len(logs))
		}
		lens := make([]int, len(logs))
		for i := range logs {
			lens[i] = len(logs[i])
		}
		t.Logf("partition %d: replicas of %v batches agree over their common length", p, lens)
		for i := 1; i < len(logs); i++ {
			n := min(len(logs[0]), len(logs[i]))
			for j := range n {
				if string(logs[0][j]) != string(logs[i][j]) {
					anomalies++
					t.Errorf("divergence: partition %d, batch %d differs between replicas", p, j)
					break
				}
			}
		}
	}
	return anomalies
}

// readBatches reads every batch of the log in dir.
func readBatches(dir string) ([][]byte, error) {
	l, err := storage.Open(dir, storage.Options{})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var out [][]byte
	for off := l.StartOffset(); off < l.HighWatermark(); {
		data, err := l.Read(off, 1<<20)
		if err != nil {
			return out, err
		}
		if len(data) == 0 {
			break
		}
		hs, err := storage.ValidateBatches(data, len(data))
		if err != nil {
			return out, err
		}
		for _, h := range hs {
			out = append(out, append([]byte(nil), data[:h.Size()]...))
			data = data[h.Size():]
			off = h.LastOffset() + 1
		}
	}
	return out, nil
}
