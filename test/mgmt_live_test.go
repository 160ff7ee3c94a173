package test

import (
	"fmt"
	"math"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// liveSample is one second of /api/live/...: rates are absent on a
// series' first sample.
type liveSample struct {
	Timestamp int64    `json:"timestamp"`
	Inflow    *float64 `json:"inflow"`
	Outflow   *float64 `json:"outflow"`
	Backlog   int64    `json:"backlog"`
	Ready     *int64   `json:"ready"`
	Groups    []string `json:"groups"`
}

type liveAnswer struct {
	IntervalMs int64        `json:"interval_ms"`
	Samples    []liveSample `json:"samples"`
}

// sums adds up a series' rates × interval: the messages that came in
// and went out while it was watched.
func (l liveAnswer) sums() (in, out float64) {
	for i, s := range l.Samples {
		if i == 0 || s.Inflow == nil {
			continue
		}
		dt := float64(s.Timestamp-l.Samples[i-1].Timestamp) / 1000
		in += *s.Inflow * dt
		out += *s.Outflow * dt
	}
	// Rates are per second over the server's exact interval, timestamps
	// whole milliseconds: round to whole messages.
	return math.Round(in), math.Round(out)
}

// The live curves the console draws for a queue: published messages show
// as inflow and backlog, consumed and acked ones as outflow, and the
// backlog returns to zero; amqp091-go on both ends.
func TestLiveQueueCurves(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	if _, err := ch.QueueDeclare("live-q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	path := "/api/live/queues/%2F/live-q"
	get := func() liveAnswer { return decodeJSON[liveAnswer](t, b.api(t, "GET", path, nil, 200)) }
	if l := get(); l.IntervalMs != 1000 || len(l.Samples) != 1 || l.Samples[0].Backlog != 0 || l.Samples[0].Ready == nil {
		t.Fatalf("first answer: %+v, want one sample of an empty queue at 1 s", l)
	}
	b.api(t, "GET", "/api/live/queues/%2F/no-such-queue", nil, 404)

	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "", "live-q", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		if i == n-1 {
			if ok, err := c.WaitContext(ctxT(t, 10*time.Second)); !ok || err != nil {
				t.Fatalf("not confirmed: %v", err)
			}
		}
	}
	var l liveAnswer
	waitFor(t, 20*time.Second, "the backlog of 300 and its inflow in the live samples", func() bool {
		l = get()
		in, _ := l.sums()
		return l.Samples[len(l.Samples)-1].Backlog == n && in == n
	})

	sub := b.channel(t)
	dels, err := sub.Consume("live-q", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case d := <-dels:
			d.Ack(false)
		case <-time.After(10 * time.Second):
			t.Fatal("deliveries stopped")
		}
	}
	waitFor(t, 20*time.Second, "outflow of 300 and the backlog back to 0", func() bool {
		l = get()
		_, out := l.sums()
		return l.Samples[len(l.Samples)-1].Backlog == 0 && out == n
	})
	var peak int64
	for _, s := range l.Samples {
		peak = max(peak, s.Backlog)
	}
	if peak != n {
		t.Errorf("peak backlog %d in %+v, want %d", peak, l.Samples, n)
	}
}

// The live curves of a topic: records produced with franz-go show as
// inflow, a consumer group's commits as outflow and its lag as backlog.
func TestLiveTopicCurves(t *testing.T) {
	b := startBroker(t)
	b.createTopic(t, "live-t", 2, nil)
	path := "/api/live/topics/live-t"
	get := func() liveAnswer { return decodeJSON[liveAnswer](t, b.api(t, "GET", path, nil, 200)) }
	get()
	b.api(t, "GET", "/api/live/topics/no-such-topic", nil, 404)

	prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := range 200 {
		recs = append(recs, &kgo.Record{Topic: "live-t", Partition: int32(i % 2), Value: []byte("r")})
	}
	if err := prod.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	commit := func(off int64) {
		t.Helper()
		cl := b.client(t)
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = "live-readers"
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "live-t"
		for p := range int32(2) {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p, off
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("commit: error %d", rp.ErrorCode)
				}
			}
		}
	}
	// The group has read 40 of each partition's 100: a backlog of 120.
	commit(40)
	var l liveAnswer
	waitFor(t, 20*time.Second, "inflow of 200 and the group's lag of 120", func() bool {
		l = get()
		in, _ := l.sums()
		last := l.Samples[len(l.Samples)-1]
		return in == 200 && last.Backlog == 120 && len(last.Groups) == 1 && last.Groups[0] == "live-readers"
	})
	commit(100)
	waitFor(t, 20*time.Second, "outflow of 120 and no lag", func() bool {
		l = get()
		_, out := l.sums()
		return out == 120 && l.Samples[len(l.Samples)-1].Backlog == 0
	})
}
