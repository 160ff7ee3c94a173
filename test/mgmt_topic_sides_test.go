package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A topic's page in the API shows both faces of its data: the AMQP
// exchange that feeds it (a binding of kind topic) among its writers, and
// the Kafka consumer group that reads it, with its lag on this topic,
// among its readers. amqp091-go publishes through the exchange; a franz-go
// consumer group reads part of it and commits.
func TestTopicReadersAndWriters(t *testing.T) {
	b := startBroker(t)
	b.createTopic(t, "sides", 1, nil)
	b.createTopic(t, "other", 1, nil)
	ch := b.channel(t)
	if err := ch.ExchangeDeclare("orders.x", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	b.api(t, "POST", "/api/bindings/%2F/e/orders.x/t/sides", map[string]any{"routing_key": "order.#"}, 201)

	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "orders.x", "order.created", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := c.WaitContext(ctxT(t, 10*time.Second)); !ok || err != nil {
			t.Fatalf("publish %d not confirmed: %v", i, err)
		}
	}
	// The group reads 4 of the 10 and commits: a lag of 6. It also reads
	// another topic, which must not count here.
	prod := b.client(t)
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "other", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons := b.client(t, kgo.ConsumerGroup("analytics"), kgo.ConsumeTopics("sides", "other"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	var seen []*kgo.Record
	for len(seen) < 11 {
		fs := cons.PollFetches(ctxT(t, 15*time.Second))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, fs.Records()...)
	}
	offsets := map[string]map[int32]kgo.EpochOffset{"sides": {0: {Epoch: -1, Offset: 4}}, "other": {0: {Epoch: -1, Offset: 0}}}
	var commitErr error
	cons.CommitOffsetsSync(ctxT(t, 10*time.Second), offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
	})
	if commitErr != nil {
		t.Fatal(commitErr)
	}

	type side struct {
		Kind       string `json:"kind"`
		Name       string `json:"name"`
		Vhost      string `json:"vhost"`
		RoutingKey string `json:"routing_key"`
		Lag        *int64 `json:"lag"`
		Members    *int   `json:"members"`
		Partitions int    `json:"partitions"`
	}
	topic := decodeJSON[struct {
		Messages int64  `json:"messages"`
		Readers  []side `json:"readers"`
		Writers  []side `json:"writers"`
	}](t, b.api(t, "GET", "/api/kafka/topics/sides", nil, 200))
	if topic.Messages != 10 {
		t.Errorf("%d records in the topic, want the 10 published through the exchange", topic.Messages)
	}
	if len(topic.Writers) != 1 || topic.Writers[0] != (side{Kind: "exchange", Name: "orders.x", Vhost: "/", RoutingKey: "order.#"}) {
		t.Errorf("writers %+v, want the exchange orders.x with key order.#", topic.Writers)
	}
	if len(topic.Readers) != 1 {
		t.Fatalf("readers %+v, want the group analytics", topic.Readers)
	}
	r := topic.Readers[0]
	if r.Kind != "consumer_group" || r.Name != "analytics" || r.Lag == nil || *r.Lag != 6 || r.Partitions != 1 || r.Members == nil || *r.Members != 1 {
		t.Errorf("reader %+v (lag %v, members %v): want group analytics, 1 member, lag 6 on 1 partition", r, deref(r.Lag), deref(r.Members))
	}

	// The other topic has the group too (lag 1) and no exchange.
	other := decodeJSON[struct {
		Readers []side `json:"readers"`
		Writers []side `json:"writers"`
	}](t, b.api(t, "GET", "/api/kafka/topics/other", nil, 200))
	if len(other.Writers) != 0 || len(other.Readers) != 1 || deref(other.Readers[0].Lag) != int64(1) {
		t.Errorf("other topic: readers %+v, writers %+v", other.Readers, other.Writers)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// Every kind of reader a topic can have is on its page: an AMQP consumer
// of its partition's stream queue (super stream), a classic queue bound
// to it and the exchange it forwards to (both fed from the log, with
// their lag), and a share group, next to nothing else. franz-go produces;
// amqp091-go consumes the stream queue and binds the queue; a franz-go
// share consumer takes records.
func TestTopicReadersOfEveryKind(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	if err := ch.ExchangeDeclare("both.fwd", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	fwd := "both.fwd"
	b.createTopic(t, "both", 1, map[string]*string{"sluice.forward.exchange": &fwd})
	if _, err := ch.QueueDeclare("both.q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("both.q", "#", "both", false, nil); err != nil {
		t.Fatal(err)
	}
	prod := b.client(t)
	for i := range 5 {
		if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "both", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sc := b.channel(t)
	if err := sc.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	dels, err := sc.Consume("both-0", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-dels:
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery from the stream queue both-0")
	}
	share := b.client(t, kgo.ShareGroup("both.share"), kgo.ConsumeTopics("both"), kgo.FetchMaxWait(200*time.Millisecond))
	// A share group starts at the end: records produced after it joins.
	waitFor(t, 30*time.Second, "the share group taking a record", func() bool {
		if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "both", Value: []byte("late")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return len(share.PollFetches(ctx).Records()) > 0
	})

	type reader struct {
		Kind      string `json:"kind"`
		Vhost     string `json:"vhost"`
		Name      string `json:"name"`
		Consumers int    `json:"consumers"`
		Ready     int64  `json:"ready"`
		Members   int    `json:"members"`
		Lag       *int64 `json:"lag"`
	}
	var got map[string]reader
	waitFor(t, 30*time.Second, "the topic's page listing every kind of reader", func() bool {
		topic := decodeJSON[struct {
			Readers []reader `json:"readers"`
		}](t, b.api(t, "GET", "/api/kafka/topics/both", nil, 200))
		got = map[string]reader{}
		for _, r := range topic.Readers {
			got[r.Kind] = r
		}
		q := got["bound_queue"]
		return len(got) == 4 && q.Ready >= 5 && q.Lag != nil && *q.Lag == 0
	})
	if r := got["stream_queue"]; r.Vhost != "/" || r.Name != "both-0" || r.Consumers != 1 {
		t.Errorf("stream queue reader %+v, want both-0 in / with 1 consumer", r)
	}
	if r := got["bound_queue"]; r.Vhost != "/" || r.Name != "both.q" {
		t.Errorf("bound queue reader %+v, want both.q in /", r)
	}
	if r := got["exchange_forward"]; r.Vhost != "/" || r.Name != "both.fwd" || r.Lag == nil {
		t.Errorf("forwarding reader %+v, want the exchange both.fwd in / with a lag", r)
	}
	if r := got["share_group"]; r.Name != "both.share" || r.Members != 1 {
		t.Errorf("share group reader %+v, want both.share with 1 member", r)
	}
	if _, ok := got["consumer_group"]; ok || len(got) != 4 {
		t.Errorf("readers %+v, want exactly the four kinds above", got)
	}
}
