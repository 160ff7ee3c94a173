package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitionView is what Metadata says of partition 0 of topic through
// cl; ok false if it cannot be had.
func partitionView(ctx context.Context, cl *kgo.Client, topic string) (kadm.PartitionDetail, bool) {
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return kadm.PartitionDetail{}, false
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return kadm.PartitionDetail{}, false
	}
	pd, ok := td.Partitions[0]
	return pd, ok
}

// TestClusterReplicatedPartition: a topic of replication factor 3 and
// min.insync.replicas 2 on three nodes: Metadata shows its leader, three
// replicas in sync; an idempotent producer with acks=all sends while a
// consumer reads, and the partition's leader is killed (-9) in the
// middle: afterwards every acknowledged record is in the log exactly
// once, in order, with no gap, and the consumer saw nothing twice nor out
// of order. With two of three nodes down, acks=all is refused or times
// out, and once the nodes are back nothing acknowledged is lost.
func TestClusterReplicatedPartition(t *testing.T) {
	nodes := startCluster(t, 3)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	waitFor(t, 30*time.Second, "three nodes registered, running, one leader", func() bool {
		return agreedLeader(t, nodes, 3, all) != 0
	})
	seeds := []string{nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if r, err := adm.CreateTopic(ctx, 1, 4, nil, "toomany"); err == nil && !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 4 on 3 nodes: %v (%s)", r.Err, r.ErrMessage)
	}
	minISR := "2"
	if r, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &minISR}, "repl"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v %s", err, r.Err, r.ErrMessage)
	}
	var leader int32
	waitFor(t, 30*time.Second, "a leader and three replicas in sync", func() bool {
		pd, ok := partitionView(ctx, admCl, "repl")
		if !ok || pd.Leader < 1 || len(pd.Replicas) != 3 || len(pd.ISR) != 3 || len(pd.OfflineReplicas) != 0 {
			return false
		}
		leader = pd.Leader
		return true
	})
	t.Logf("leader of repl-0: node %d", leader)

	// The consumer reads from the start throughout.
	var cmu sync.Mutex
	var consumed []int
	consErr := make(chan error, 1)
	cctx, ccancel := context.WithCancel(ctx)
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"repl": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	go func() {
		defer close(consErr)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			fs.EachRecord(func(r *kgo.Record) {
				n, _ := strconv.Atoi(string(r.Value))
				cmu.Lock()
				consumed = append(consumed, n)
				cmu.Unlock()
			})
		}
	}()

	// The producer: idempotent, acks=all (franz-go's defaults).
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("repl"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// franz-go refreshes metadata at most every 5s by default, which
		// would dominate the failover time measured below; Kafka's Java
		// client retries after 100ms.
		kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var pmu sync.Mutex
	acked := map[int]bool{}
	var killedAt, firstAfter time.Time
	sentAt := map[int]time.Time{}
	var produceErrs []error
	inflight := make(chan struct{}, 64)
	send := func(n int) {
		select {
		case inflight <- struct{}{}:
		case <-ctx.Done():
			pmu.Lock()
			defer pmu.Unlock()
			pd, _ := partitionView(context.Background(), admCl, "repl")
			for i, b := range nodes {
				if int32(i+1) != leader {
					b.cmd.Process.Signal(syscall.SIGQUIT)
					<-b.exited
					os.WriteFile(fmt.Sprintf("/tmp/repl-node%d.log", i+1), []byte(b.Logs()), 0o644)
				}
			}
			t.Fatalf("producing %d: %v (%d acknowledged; errors %v); partition %+v\n%s\n%s", n, ctx.Err(), len(acked), produceErrs, pd, nodes[1].Logs(), nodes[2].Logs())
		}
		pmu.Lock()
		sentAt[n] = time.Now()
		pmu.Unlock()
		prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(n))}, func(r *kgo.Record, err error) {
			<-inflight
			pmu.Lock()
			defer pmu.Unlock()
			if err != nil {
				produceErrs = append(produceErrs, err)
				return
			}
			acked[n] = true
			if !killedAt.IsZero() && firstAfter.IsZero() && !sentAt[n].Before(killedAt) {
				firstAfter = time.Now()
			}
		})
	}
	ackedCount := func() int {
		pmu.Lock()
		defer pmu.Unlock()
		return len(acked)
	}
	n := 0
	for ; ackedCount() < 300; n++ {
		send(n)
	}
	victim := nodes[leader-1]
	pmu.Lock()
	killedAt = time.Now()
	pmu.Unlock()
	victim.Kill()
	t.Logf("killed node %d (the leader) after %d acknowledged", leader, ackedCount())
	deadline := time.Now().Add(30 * time.Second)
	for {
		pmu.Lock()
		done := !firstAfter.IsZero()
		pmu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		send(n)
		n++
	}
	for range 300 {
		send(n)
		n++
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	pmu.Lock()
	if firstAfter.IsZero() {
		pmu.Unlock()
		t.Fatalf("no produce acknowledged after the leader was killed; errors: %v", produceErrs)
	}
	t.Logf("failover: %v from the kill to the first acknowledged produce on the new leader (%d sent, %d acknowledged, %d failed)",
		firstAfter.Sub(killedAt).Round(time.Millisecond), n, len(acked), len(produceErrs))
	for _, err := range produceErrs {
		t.Logf("produce error: %v", err)
	}
	pmu.Unlock()

	// Every acknowledged record in the log once, in order, no gap: read
	// it all again with a fresh consumer.
	var newLeader int32
	waitFor(t, 30*time.Second, "a new leader", func() bool {
		pd, ok := partitionView(ctx, admCl, "repl")
		if ok && pd.Leader > 0 && pd.Leader != leader {
			newLeader = pd.Leader
			return len(pd.OfflineReplicas) == 1 && pd.OfflineReplicas[0] == leader
		}
		return false
	})
	t.Logf("new leader: node %d", newLeader)
	var epochs []int32 // the leader epoch of each record read, in order
	readAll := func(what string) []int {
		epochs = epochs[:0]
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"repl": {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var got []int
		have := map[int]bool{}
		missing := func() int {
			m := 0
			pmu.Lock()
			for k := range acked {
				if !have[k] {
					m++
				}
			}
			pmu.Unlock()
			return m
		}
		for missing() > 0 {
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			fs := cl.PollFetches(rctx)
			rcancel()
			if ctx.Err() != nil {
				t.Fatalf("%s: %d acknowledged records not read", what, missing())
			}
			fs.EachRecord(func(r *kgo.Record) {
				v, _ := strconv.Atoi(string(r.Value))
				got = append(got, v)
				epochs = append(epochs, r.LeaderEpoch)
				have[v] = true
			})
		}
		return got
	}
	checkOrder := func(what string, got []int) {
		t.Helper()
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("%s: record %d after %d (at %d of %d): duplicated or out of order", what, got[i], got[i-1], i, len(got))
			}
		}
	}
	log := readAll("after the failover")
	checkOrder("the log after the failover", log)
	// Leader epochs are the Raft terms: positive, never decreasing, and
	// higher after the failover.
	for i, e := range epochs {
		if e <= 0 || i > 0 && e < epochs[i-1] {
			t.Fatalf("leader epoch %d at record %d (previous %d)", e, i, epochs[max(i-1, 0)])
		}
	}
	if epochs[len(epochs)-1] <= epochs[0] {
		t.Fatalf("leader epochs from %d to %d across a failover", epochs[0], epochs[len(epochs)-1])
	}
	t.Logf("leader epochs: %d before the kill, %d after", epochs[0], epochs[len(epochs)-1])
	pmu.Lock()
	for k := range acked {
		if k > log[len(log)-1] {
			t.Fatalf("acknowledged %d missing", k)
		}
	}
	pmu.Unlock()
	// Gaps are allowed only for records that were not acknowledged.
	have := map[int]bool{}
	for _, v := range log {
		have[v] = true
	}
	for k := range n {
		if !have[k] && acked[k] {
			t.Fatalf("acknowledged record %d missing from the log", k)
		}
	}
	waitFor(t, 30*time.Second, "the running consumer to read everything acknowledged", func() bool {
		cmu.Lock()
		defer cmu.Unlock()
		return len(consumed) > 0 && consumed[len(consumed)-1] >= log[len(log)-1]
	})
	ccancel()
	<-consErr
	cmu.Lock()
	checkOrder("the consumer across the failover", consumed)
	cmu.Unlock()

	// Two of three down: acks=all cannot be answered.
	other := 0
	for i := range nodes {
		if int32(i+1) != leader && int32(i+1) != newLeader {
			other = i
		}
	}
	nodes[newLeader-1].Kill()
	// Not idempotent: no producer id to ask a coordinator for, so the
	// produce itself is what fails.
	one, err := kgo.NewClient(kgo.SeedBrokers(nodes[other].Kafka), kgo.DefaultProduceTopic("repl"),
		kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(8*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if err := one.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(n))}).FirstErr(); err == nil {
		t.Fatalf("acks=all with two of three replicas down was acknowledged")
	} else {
		t.Logf("two of three down: %v", err)
	}

	// Back up: nothing acknowledged is lost, the order holds.
	nodes[leader-1].Restart()
	nodes[newLeader-1].Restart()
	checkOrder("the log after the restarts", readAll("after the restarts"))
	r := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(n + 1))})
	if err := r.FirstErr(); err != nil {
		t.Fatalf("produce after the restarts: %v", err)
	}
}

// TestClusterReplicatedKcat: librdkafka (kcat) against a cluster of
// three: it sees a replicated partition's leader, replicas and ISR,
// produces with acks=all to it and reads the records back from the
// beginning.
func TestClusterReplicatedKcat(t *testing.T) {
	needTool(t, kcatPath)
	nodes := startCluster(t, 3)
	waitFor(t, 30*time.Second, "three nodes registered, running, one leader", func() bool {
		return agreedLeader(t, nodes, 3, map[uint64]bool{1: true, 2: true, 3: true}) != 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, nil, "kc"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r.Err)
	}
	seeds := nodes[0].Kafka + "," + nodes[1].Kafka + "," + nodes[2].Kafka
	kcat := func(stdin string, args ...string) toolRun {
		base := []string{"-b", seeds, "-m", "10", "-X", "socket.timeout.ms=10000", "-X", "message.timeout.ms=15000"}
		return runTool(t, 30*time.Second, stdin, kcatPath, append(base, args...)...)
	}
	waitFor(t, 30*time.Second, "kcat -L to show three replicas in sync", func() bool {
		r := kcat("", "-L", "-t", "kc")
		return r.Err == nil && strings.Contains(r.Stdout, "replicas: ") && strings.Count(r.Stdout, ",") >= 4 &&
			!strings.Contains(r.Stdout, "leader -1")
	})
	t.Logf("kcat -L: %s", kcat("", "-L", "-t", "kc").Stdout)
	lines := []string{"one", "two", "three"}
	if r := kcat(strings.Join(lines, "\n")+"\n", "-P", "-t", "kc", "-p", "0", "-X", "acks=all"); r.Err != nil {
		t.Fatalf("kcat produce: %v\n%s\n%s", r.Err, r.Stdout, r.Stderr)
	}
	r := kcat("", "-C", "-t", "kc", "-p", "0", "-o", "beginning", "-e", "-f", `%o %s\n`)
	if r.Err != nil {
		t.Fatalf("kcat consume: %v\n%s", r.Err, r.Stderr)
	}
	if want := "0 one\n1 two\n2 three\n"; r.Stdout != want {
		t.Fatalf("kcat read %q, want %q", r.Stdout, want)
	}
}
