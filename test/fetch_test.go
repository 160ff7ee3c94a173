package test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// fetchByName caps a client's Fetch at v12, the last version that names
// topics rather than their ids, for tests that build Fetch requests by name:
// kgo sends a request at the newest version both sides support, whatever
// version the request says.
func fetchByName() kgo.Opt {
	v := kversion.Stable()
	v.SetMaxKeyVersion(1, 12)
	return kgo.MaxVersions(v)
}

// fetchRaw sends one sessionless Fetch for partition 0 of topic.
func fetchRaw(t *testing.T, c *kgo.Client, topic string, offset int64, maxWait time.Duration, minBytes, partMax, reqMax int32) (kmsg.FetchResponseTopicPartition, time.Duration) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.MaxWaitMillis = int32(maxWait.Milliseconds())
	req.MinBytes, req.MaxBytes = minBytes, reqMax
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, partMax
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp, err := req.RequestWith(ctxT(t, 30*time.Second), c)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0], time.Since(start)
}

// batchesIn counts the record batches in a fetch answer.
func batchesIn(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	for len(b) > 0 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatalf("partial or malformed batch in fetch answer: %v", err)
		}
		b = b[12+int(rb.Length):]
		n++
	}
	return n
}

func TestFetchLongPollAndLimits(t *testing.T) {
	b := startBroker(t)
	const topic = "fetch"
	b.createTopic(t, topic, 1, nil)
	c := b.client(t, fetchByName())
	prod := b.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))

	// Nothing to read: the broker holds the request for MaxWait.
	p, took := fetchRaw(t, c, topic, 0, 600*time.Millisecond, 1, 1<<20, 50<<20)
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
		t.Fatalf("empty fetch: %v, %d bytes, hw %d", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches), p.HighWatermark)
	}
	if took < 500*time.Millisecond {
		t.Fatalf("empty fetch answered after %v, before its 600ms MaxWait", took)
	}

	// A record arriving during the wait answers the fetch at once: the
	// record is produced 300ms into a fetch that may wait 20s.
	produced := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		produced <- prod.ProduceSync(context.Background(), &kgo.Record{Value: []byte("wake up")}).FirstErr()
	}()
	p, took = fetchRaw(t, c, topic, 0, 20*time.Second, 1, 1<<20, 50<<20)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	if took >= 20*time.Second || batchesIn(t, p.RecordBatches) != 1 {
		t.Fatalf("long poll: answered after %v with %d bytes", took, len(p.RecordBatches))
	}

	// Ten more batches of ~1 KiB each.
	value := make([]byte, 1000)
	for range 10 {
		produceSync(t, prod, &kgo.Record{Value: value})
	}
	// Per-partition limit: whole batches only, as many as fit, at least one.
	for _, tc := range []struct {
		partMax, reqMax int32
		want            int
	}{
		{1, 50 << 20, 1},        // smaller than one batch: still one (KIP-74)
		{3000, 50 << 20, 2},     // two ~1.1 KiB batches fit
		{1 << 20, 3000, 2},      // the request limit applies the same way
		{1 << 20, 50 << 20, 10}, // everything
	} {
		p, _ := fetchRaw(t, c, topic, 1, 0, 0, tc.partMax, tc.reqMax)
		if p.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(p.ErrorCode))
		}
		if got := batchesIn(t, p.RecordBatches); got != tc.want {
			t.Errorf("partition max %d, request max %d: %d batches, want %d", tc.partMax, tc.reqMax, got, tc.want)
		}
	}
	// Past the end: OFFSET_OUT_OF_RANGE.
	p, _ = fetchRaw(t, c, topic, 1000, 0, 0, 1<<20, 50<<20)
	if !errors.Is(kerr.ErrorForCode(p.ErrorCode), kerr.OffsetOutOfRange) {
		t.Fatalf("fetch past the end: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

func TestAutoCreateTopicsSetting(t *testing.T) {
	on := startBroker(t)
	prod := on.client(t, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("made-on-first-use"))
	produceSync(t, prod, &kgo.Record{Value: []byte("x")})
	td, err := on.admin(t).ListTopics(ctxT(t, 10*time.Second), "made-on-first-use")
	if err != nil || !td.Has("made-on-first-use") {
		t.Fatalf("auto-created topic not listed: %v", err)
	}

	off := startBroker(t, "--auto-create-topics=false")
	prod = off.client(t, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("never-made"),
		kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(3*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = prod.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	if err == nil {
		t.Fatal("produce to an unknown topic succeeded with auto-creation off")
	}
	td, _ = off.admin(t).ListTopics(ctxT(t, 10*time.Second))
	if td.Has("never-made") {
		t.Fatal("topic created with auto-creation off")
	}
}
