package test

import (
	"context"
	"crypto/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReplicatedProduceCost measures what replication costs a producer:
// 1 KiB records, uncompressed, acks=all, one partition, through one idempotent franz-go
// producer, on a single node, on a cluster of three with replication
// factor 1 (a plain log) and with replication factor 3 (a Raft group).
// It is a measurement, not a check: it runs only with
// SLUICE_REPL_BENCH=<records> set, and logs records/s and MB/s.
func TestReplicatedProduceCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SLUICE_REPL_BENCH"))
	if n <= 0 {
		t.Skip("a measurement: set SLUICE_REPL_BENCH to a number of records")
	}
	// Random and sent uncompressed: every byte is written.
	value := make([]byte, 1024)
	rand.Read(value)
	run := func(name string, seeds []string, rf int16) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("cost"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, rf, nil, "cost"); err != nil || r.Err != nil {
			t.Fatalf("%s: create: %v %v", name, err, r.Err)
		}
		// Warm up: the leader is known and the producer id given.
		waitFor(t, 30*time.Second, name+": a first record", func() bool {
			return cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr() == nil
		})
		start := time.Now()
		for range n {
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		t.Logf("%-16s %d records of 1 KiB, acks=all: %v, %.0f records/s, %.1f MB/s", name, n, d.Round(time.Millisecond),
			float64(n)/d.Seconds(), float64(n)*1024/d.Seconds()/1e6)
	}
	single := startBroker(t)
	run("single node", []string{single.Kafka}, -1)
	single.Stop()
	nodes := startCluster(t, 3)
	waitFor(t, 30*time.Second, "three nodes registered", func() bool {
		return agreedLeader(t, nodes, 3, map[uint64]bool{1: true, 2: true, 3: true}) != 0
	})
	seeds := []string{nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka}
	run("cluster rf=1", seeds, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).DeleteTopics(context.Background(), "cost"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the topic deleted", func() bool {
		md, err := kadm.NewClient(cl).Metadata(context.Background(), "cost")
		return err == nil && md.Topics["cost"].Err != nil
	})
	run("cluster rf=3", seeds, 3)
}
