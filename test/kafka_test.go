package test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceSync produces records and fails on any error.
func produceSync(t testing.TB, c *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	if err := c.ProduceSync(ctxT(t, 30*time.Second), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeN polls until n records arrive or the deadline passes.
func consumeN(t testing.TB, c *kgo.Client, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t, timeout)
	var out []*kgo.Record
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records before timeout", len(out), n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}

func TestProduceConsumeEachCompression(t *testing.T) {
	b := startBroker(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "compress-" + name
			b.createTopic(t, topic, 3, nil)
			prod := b.client(t, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			const n = 300
			var recs []*kgo.Record
			for i := range n {
				recs = append(recs, &kgo.Record{
					Key:     []byte(strconv.Itoa(i % 7)),
					Value:   []byte(fmt.Sprintf("value-%04d-%s", i, name)),
					Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}},
				})
			}
			produceSync(t, prod, recs...)
			cons := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := consumeN(t, cons, n, 20*time.Second)
			if len(got) != n {
				t.Fatalf("got %d records, want %d", len(got), n)
			}
			// Per key (so per partition), values arrive in produce order.
			last := map[string]int{}
			for _, r := range got {
				i, _ := strconv.Atoi(string(r.Headers[0].Value))
				if want := fmt.Sprintf("value-%04d-%s", i, name); string(r.Value) != want {
					t.Fatalf("value %q, want %q", r.Value, want)
				}
				if prev, ok := last[string(r.Key)]; ok && i <= prev {
					t.Fatalf("key %s: record %d after %d", r.Key, i, prev)
				}
				last[string(r.Key)] = i
			}
		})
	}
}

func TestReplayFromBeginningAndOffsetsByTimestamp(t *testing.T) {
	b := startBroker(t)
	const topic = "replay"
	b.createTopic(t, topic, 1, nil)
	prod := b.client(t, kgo.DefaultProduceTopic(topic))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 100 {
		// One record per batch so that each has its own timestamp entry.
		produceSync(t, prod, &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	for pass := range 2 {
		cons := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := consumeN(t, cons, 100, 20*time.Second)
		for i, r := range got {
			if string(r.Value) != strconv.Itoa(i) || r.Offset != int64(i) {
				t.Fatalf("pass %d: record %d = %q at offset %d", pass, i, r.Value, r.Offset)
			}
		}
	}
	adm := b.admin(t)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{base, 0},
		{base.Add(42 * time.Second), 42},
		{base.Add(42*time.Second + 500*time.Millisecond), 43},
		{base.Add(99 * time.Second), 99},
		{base.Add(time.Hour), -1}, // nothing that new: Kafka answers -1... kadm maps to end
	} {
		offs, err := adm.ListOffsetsAfterMilli(ctxT(t, 10*time.Second), tc.at.UnixMilli(), topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := offs.Lookup(topic, 0)
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		want := tc.want
		if want == -1 {
			want = 100 // kadm turns "no such record" into the end offset
		}
		if o.Offset != want {
			t.Errorf("offset after %v = %d, want %d", tc.at.Sub(base), o.Offset, want)
		}
	}
	// Consuming from a timestamp starts there.
	cons := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(base.Add(90*time.Second).UnixMilli())))
	got := consumeN(t, cons, 10, 20*time.Second)
	if got[0].Offset != 90 {
		t.Fatalf("consume after timestamp started at %d, want 90", got[0].Offset)
	}
}

func TestConsumerGroupHandoverNoLossNoDuplicates(t *testing.T) {
	b := startBroker(t)
	const topic, group, n = "handover", "g-handover", 3000
	b.createTopic(t, topic, 6, nil)
	prod := b.client(t, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
	}
	produceSync(t, prod, recs...)

	var mu sync.Mutex
	seen := map[string]string{} // value -> consumer
	dups := 0
	newMember := func(name string) *kgo.Client {
		var cl *kgo.Client
		cl = b.client(t,
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
			kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond),
			kgo.OnPartitionsRevoked(func(ctx context.Context, c *kgo.Client, _ map[string][]int32) {
				if err := c.CommitUncommittedOffsets(ctx); err != nil {
					t.Errorf("%s: commit on revoke: %v", name, err)
				}
			}),
		)
		return cl
	}
	// poll consumes up to max records for a member and commits them.
	poll := func(name string, cl *kgo.Client, max int) int {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		fs := cl.PollRecords(ctx, max)
		defer cl.AllowRebalance()
		got := 0
		fs.EachRecord(func(r *kgo.Record) {
			mu.Lock()
			if prev, ok := seen[string(r.Value)]; ok {
				dups++
				t.Errorf("record %s consumed by %s and again by %s", r.Value, prev, name)
			}
			seen[string(r.Value)] = name
			mu.Unlock()
			got++
		})
		if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
			t.Errorf("%s: commit: %v", name, err)
		}
		return got
	}
	a := newMember("a")
	for consumed := 0; consumed < 800; {
		consumed += poll("a", a, 100)
	}
	bm := newMember("b")
	// Both members work until the group has settled with both in it.
	adm := b.admin(t)
	waitFor(t, 30*time.Second, "two stable members", func() bool {
		poll("a", a, 50)
		poll("b", bm, 50)
		gs, err := adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return false
		}
		g := gs[group]
		return g.State == "Stable" && len(g.Members) == 2
	})
	// a leaves; b takes over everything and finishes.
	a.Close()
	waitFor(t, 60*time.Second, "all records consumed", func() bool {
		poll("b", bm, 500)
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	if dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	// Committed offsets cover the whole topic: lag is zero.
	lags, err := adm.Lag(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if total := lags[group].Lag.Total(); total != 0 {
		t.Fatalf("lag after consuming everything = %d", total)
	}
}

func TestCommittedOffsetsSurviveRestart(t *testing.T) {
	b := startBroker(t)
	const topic, group = "commits", "g-commits"
	b.createTopic(t, topic, 2, nil)
	adm := b.admin(t)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: topic, Partition: 0, At: 17, LeaderEpoch: -1, Metadata: "m0"})
	offsets.Add(kadm.Offset{Topic: topic, Partition: 1, At: 5, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctxT(t, 10*time.Second), group, offsets); err != nil {
		t.Fatal(err)
	}
	b.Stop()
	b.Restart()
	adm = b.admin(t)
	got, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := got.Lookup(topic, 0); o.At != 17 || o.Metadata != "m0" {
		t.Fatalf("partition 0 committed %+v", o)
	}
	if o, _ := got.Lookup(topic, 1); o.At != 5 {
		t.Fatalf("partition 1 committed %+v", o)
	}
	groups, err := adm.ListGroups(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups[group]; !ok {
		t.Fatalf("group with committed offsets not listed: %v", groups.Groups())
	}
}

func TestRetentionDeletesOldSegments(t *testing.T) {
	b := startBroker(t, "--retention-check-interval=100ms")
	adm := b.admin(t)
	segBytes, retMs, retBytes := "4096", "60000", "-1"
	b.createTopic(t, "old", 1, map[string]*string{"segment.bytes": &segBytes, "retention.ms": &retMs, "retention.bytes": &retBytes})
	bySize := "20000"
	b.createTopic(t, "big", 1, map[string]*string{"segment.bytes": &segBytes, "retention.bytes": &bySize})

	prod := b.client(t)
	old := time.Now().Add(-time.Hour)
	value := make([]byte, 500)
	rand.Read(value) // incompressible: the client compresses by default
	for i := range 60 {
		// One record per produce, so segments roll every few records.
		produceSync(t, prod,
			&kgo.Record{Topic: "old", Value: value, Timestamp: old.Add(time.Duration(i) * time.Millisecond)},
			&kgo.Record{Topic: "big", Value: value})
	}
	segments := func(topic string) int {
		names, _ := filepath.Glob(filepath.Join(b.DataDir, "topics", topic+"-0", "*.log"))
		return len(names)
	}
	waitFor(t, 20*time.Second, "time retention to delete old segments", func() bool {
		starts, err := adm.ListStartOffsets(context.Background(), "old")
		if err != nil {
			return false
		}
		o, _ := starts.Lookup("old", 0)
		return o.Offset > 0 && segments("old") == 1
	})
	waitFor(t, 20*time.Second, "size retention to bring the log under retention.bytes", func() bool {
		var total int64
		names, _ := filepath.Glob(filepath.Join(b.DataDir, "topics", "big-0", "*.log"))
		for _, n := range names {
			if fi, err := os.Stat(n); err == nil {
				total += fi.Size()
			}
		}
		return total <= 20000+4096 && segments("big") > 1
	})
	// The records left are the newest ones, readable from the new start.
	starts, err := adm.ListStartOffsets(ctxT(t, 5*time.Second), "big")
	if err != nil {
		t.Fatal(err)
	}
	start, _ := starts.Lookup("big", 0)
	if start.Offset == 0 {
		t.Fatal("size retention did not move the log start")
	}
	cons := b.client(t, kgo.ConsumeTopics("big"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, int(60-start.Offset), 20*time.Second)
	if got[0].Offset != start.Offset || got[len(got)-1].Offset != 59 {
		t.Fatalf("after retention read offsets %d..%d, want %d..59", got[0].Offset, got[len(got)-1].Offset, start.Offset)
	}
}

func TestAdminTopicsConfigsPartitionsDeleteRecords(t *testing.T) {
	b := startBroker(t)
	adm := b.admin(t)
	ctx := ctxT(t, 30*time.Second)
	b.createTopic(t, "adm", 2, nil)
	if _, err := adm.UpdatePartitions(ctx, 4, "adm"); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["adm"].Partitions); n != 4 {
		t.Fatalf("partitions after CreatePartitions = %d, want 4", n)
	}
	ms := "3600000"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &ms}}, "adm"); err != nil {
		t.Fatal(err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("adm", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			found = true
			if c.MaybeValue() != ms {
				t.Fatalf("retention.ms = %q", c.MaybeValue())
			}
		}
	}
	if !found {
		t.Fatal("retention.ms not described")
	}

	prod := b.client(t, kgo.DefaultProduceTopic("adm"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 10 {
		produceSync(t, prod, &kgo.Record{Partition: 0, Value: []byte(strconv.Itoa(i))})
	}
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "adm", Partition: 0, At: 6})
	if _, err := adm.DeleteRecords(ctx, del); err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("adm", 0); o.Offset != 6 {
		t.Fatalf("start after DeleteRecords = %d, want 6", o.Offset)
	}
	// The new start survives a restart.
	b.Stop()
	b.Restart()
	adm = b.admin(t)
	starts, err = adm.ListStartOffsets(ctxT(t, 10*time.Second), "adm")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("adm", 0); o.Offset != 6 {
		t.Fatalf("start after restart = %d, want 6", o.Offset)
	}
	if _, err := adm.DeleteTopics(ctxT(t, 10*time.Second), "adm"); err != nil {
		t.Fatal(err)
	}
	td, err = adm.ListTopics(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if td.Has("adm") {
		t.Fatal("topic still listed after delete")
	}
}
