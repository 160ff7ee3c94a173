package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newCore opens a metadata store, the topics and the router over them in
// a temporary directory, with vhost "/".
func newCore(t *testing.T) (*Broker, *Router) {
	t.Helper()
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	b, err := New(Options{DataDir: dir, Logger: quiet}, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r, err := NewRouter(RouterOptions{DataDir: dir, Logger: quiet, Topics: b}, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.AddVhost("/"); err != nil {
		t.Fatal(err)
	}
	return b, r
}

// recordsOf reads every record of a partition as messages by routing key.
func recordsOf(t *testing.T, p *Partition) map[string]message.Message {
	t.Helper()
	data, err := p.Read(0, 1<<20, ReadUncommitted)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]message.Message{}
	for len(data) > 0 {
		n, err := storage.ReadRecords(data, func(_, _ int64, r storage.Record) bool {
			m, err := message.FromRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			out[m.RoutingKey] = m
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	return out
}

// TestExchangeFeedsTopic: a binding can lead from an exchange to a topic,
// as to a queue. A routed message is stored in the partition a Kafka
// producer's default partitioner picks for its routing key, as a record
// a Kafka consumer reads (key, value, the exchange in a header); one
// publish fans out to a queue and a topic alike and is confirmed when
// both are durable. A binding to a missing topic is refused; one whose
// topic was deleted routes nowhere.
func TestExchangeFeedsTopic(t *testing.T) {
	b, r := newCore(t)
	const parts = 4
	if _, err := b.CreateTopic("orders", parts, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := r.DeclareExchange("/", ExchangeDecl{Name: "events", Type: ExchangeTopic, Durable: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeclareQueue("/", QueueDecl{Name: "audit", Durable: true}); err != nil {
		t.Fatal(err)
	}
	for _, bd := range []Binding{
		{Vhost: "/", Source: "events", DestinationKind: DestTopic, Destination: "orders", RoutingKey: "order.#"},
		{Vhost: "/", Source: "events", DestinationKind: DestQueue, Destination: "audit", RoutingKey: "#"},
	} {
		if err := r.Bind(bd, nil, ""); err != nil {
			t.Fatalf("bind %+v: %v", bd, err)
		}
	}
	err := r.Bind(Binding{Vhost: "/", Source: "events", DestinationKind: DestTopic, Destination: "nope", RoutingKey: "#"}, nil, "")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("binding to a missing topic: %v, want not found", err)
	}

	kafka := kgo.StickyKeyPartitioner(nil).ForTopic("orders")
	want := map[int][]string{}
	for i := range 20 {
		key := fmt.Sprintf("order.%d", i)
		rt, err := r.Publish("/", &message.Message{Exchange: "events", RoutingKey: key, Body: []byte("body " + key)})
		if err != nil {
			t.Fatal(err)
		}
		if rt.Queues != 2 {
			t.Fatalf("%s routed to %d destinations, want the queue and the topic", key, rt.Queues)
		}
		if err := rt.Wait(); err != nil {
			t.Fatal(err)
		}
		p := kafka.Partition(&kgo.Record{Key: []byte(key)}, parts)
		want[p] = append(want[p], key)
	}
	tp, _ := b.Topic("orders")
	for i, p := range tp.Partitions {
		got := recordsOf(t, p)
		if len(got) != len(want[i]) {
			t.Errorf("partition %d holds %d records, want %d (%v)", i, len(got), len(want[i]), want[i])
		}
		for _, key := range want[i] {
			m, ok := got[key]
			switch {
			case !ok:
				t.Errorf("%s not in partition %d, where Kafka's partitioner puts it", key, i)
			case string(m.Body) != "body "+key || m.Exchange != "events":
				t.Errorf("%s read back as body %q from exchange %q", key, m.Body, m.Exchange)
			}
		}
	}
	if ready, _, _ := mustQueue(t, r, "audit").Counts(); ready != 20 {
		t.Errorf("audit holds %d messages, want 20", ready)
	}

	// Keyless messages go round the partitions.
	if err := r.DeclareExchange("/", ExchangeDecl{Name: "firehose", Type: ExchangeFanout, Durable: true}); err != nil {
		t.Fatal(err)
	}
	if err := r.Bind(Binding{Vhost: "/", Source: "firehose", DestinationKind: DestTopic, Destination: "orders"}, nil, ""); err != nil {
		t.Fatal(err)
	}
	for range parts {
		rt, err := r.Publish("/", &message.Message{Exchange: "firehose", Body: []byte("x")})
		if err != nil || rt.Queues != 1 {
			t.Fatalf("keyless publish: %v, %d destinations", err, rt.Queues)
		}
		if err := rt.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range tp.Partitions {
		if _, _, end := p.Offsets(); end != int64(len(want[i])+1) {
			t.Errorf("partition %d ends at %d after %d keyed and one round of keyless messages", i, end, len(want[i]))
		}
	}

	if err := b.DeleteTopic("orders"); err != nil {
		t.Fatal(err)
	}
	rt, err := r.Publish("/", &message.Message{Exchange: "events", RoutingKey: "order.1", Body: []byte("late")})
	if err != nil || rt.Queues != 1 {
		t.Fatalf("after the topic's deletion: %v, %d destinations, want the queue alone", err, rt.Queues)
	}
}

func mustQueue(t *testing.T, r *Router, name string) interface{ Counts() (int64, int64, int) } {
	t.Helper()
	q, err := r.Queue("/", name, "")
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestMurmur2: the partitioner's hash agrees with Kafka's on keys of
// every length remainder.
func TestMurmur2(t *testing.T) {
	kafka := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, key := range []string{"a", "ab", "abc", "abcd", "abcde", "order-12345", "ünïcödé", "21"} {
		for _, n := range []int{1, 3, 7, 64} {
			if got, want := int(murmur2([]byte(key))&0x7fffffff)%n, kafka.Partition(&kgo.Record{Key: []byte(key)}, n); got != want {
				t.Errorf("key %q over %d partitions: %d, Kafka's partitioner says %d", key, n, got, want)
			}
		}
	}
}
