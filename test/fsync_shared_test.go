package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPowerLossSharedFsync is TestPowerLossKeepsAcknowledgedData with the
// partitions sharing their fsync rounds (--fsync-shared, through the
// environment the server inherits). On the volatile file system a round
// fsyncs each of its files through it, so a round that left a partition's
// file out, or answered before the sync that covers the write, loses
// acknowledged records here.
func TestPowerLossSharedFsync(t *testing.T) {
	t.Setenv("SLUICE_FSYNC_SHARED", "true")
	TestPowerLossKeepsAcknowledgedData(t)
}

// TestFsyncSharedManyPartitions: with shared fsync rounds turned on by
// the environment (as TestPowerLossSharedFsync does) on the real file
// system (one syncfs per round), one franz-go produce of a record to each
// of 500 partitions is acknowledged, and after kill -9 and a restart
// every record is at offset 0 of its partition.
func TestFsyncSharedManyPartitions(t *testing.T) {
	const partitions = 500
	t.Setenv("SLUICE_FSYNC_SHARED", "true")
	b := startBroker(t, "--log-level", "info")
	if !strings.Contains(b.Logs(), "partitions share fsync rounds") {
		t.Fatalf("the server did not turn shared fsync rounds on; log:\n%s", b.Logs())
	}
	b.createTopic(t, "many", partitions, nil)
	prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	recs := make([]*kgo.Record, partitions)
	for p := range recs {
		recs[p] = &kgo.Record{Topic: "many", Partition: int32(p), Value: fmt.Appendf(nil, "v%d", p)}
	}
	if err := prod.ProduceSync(ctxT(t, 60*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Offset != 0 {
			t.Fatalf("partition %d: acknowledged at offset %d, want 0", r.Partition, r.Offset)
		}
	}
	prod.Close()
	b.Kill()
	b.Restart()
	offsets := map[int32]kgo.Offset{}
	for p := range partitions {
		offsets[int32(p)] = kgo.NewOffset().AtStart()
	}
	c := b.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"many": offsets}))
	got := consumeN(t, c, partitions, 60*time.Second)
	seen := make([]bool, partitions)
	for _, r := range got {
		if want := fmt.Sprintf("v%d", r.Partition); string(r.Value) != want || r.Offset != 0 {
			t.Fatalf("partition %d offset %d holds %q, want %q at 0", r.Partition, r.Offset, r.Value, want)
		}
		seen[r.Partition] = true
	}
	for p, ok := range seen {
		if !ok {
			t.Fatalf("partition %d lost its record", p)
		}
	}
}
