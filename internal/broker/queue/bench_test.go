package queue

import (
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
)

// BenchmarkPublishDeliverAck is one message's way through a queue on a
// real file system with the default fsync policy: publish (not waiting
// for the fsync), delivery to a consumer with prefetch 100, ack.
//
//	go test -run - -bench PublishDeliverAck -benchmem ./internal/broker/queue/
func BenchmarkPublishDeliverAck(b *testing.B) {
	q, err := Open(Options{Name: "q", Dir: b.TempDir(), Config: NoLimits()})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	c := newConsumer(100)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	m := message.Message{Exchange: "", RoutingKey: "q", Body: body,
		Properties: message.Properties{DeliveryMode: 2, ContentType: "application/octet-stream"}}
	acked := make(chan struct{})
	go func() {
		defer close(acked)
		for range b.N {
			d := <-c.got
			q.Ack(d.Offset)
			c.grant(1, q)
		}
	}()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for range b.N {
		if _, err := q.Publish(&m); err != nil {
			b.Fatal(err)
		}
	}
	<-acked
}

// BenchmarkPublishInFlow is a publish to a queue in credit flow, with the
// check a front end makes after it (Flow): the queue's backlog is past
// its bound and its consumer takes messages, so every publish finds the
// queue in flow. Allocations per message show what flow adds to Publish
// (nothing, once in flow).
//
//	go test -run - -bench PublishInFlow -benchmem ./internal/broker/queue/
func BenchmarkPublishInFlow(b *testing.B) {
	// A clock that stands still: the consumer's one delivery stays
	// recent however long the benchmark runs.
	t0 := time.Now()
	q, err := Open(Options{Name: "q", Dir: b.TempDir(), Config: NoLimits(), FlowBacklog: 1,
		Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	c := newConsumer(1)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	m := message.Message{Exchange: "", RoutingKey: "q", Body: body,
		Properties: message.Properties{DeliveryMode: 2, ContentType: "application/octet-stream"}}
	for range 3 {
		if _, err := q.Publish(&m); err != nil {
			b.Fatal(err)
		}
	}
	<-c.got // the consumer takes messages: the next publish puts the queue in flow
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := q.Publish(&m); err != nil {
			b.Fatal(err)
		}
		if q.Flow() == nil {
			b.Fatal("not in flow")
		}
	}
}

// BenchmarkIntervalsAck is the settled set under the acks of four
// consumers that share a queue's deliveries round robin and ack at
// different paces (each 64 deliveries behind the one before), so the set
// holds a few hundred holes above its long settled run, as with 4
// consumers at prefetch 256. An ack must not allocate.
//
//	go test -run - -bench IntervalsAck -benchmem ./internal/broker/queue/
func BenchmarkIntervalsAck(b *testing.B) {
	const consumers, lag = 4, 64
	var s intervals
	var k [consumers]int64 // next delivery each consumer acks
	for c := range consumers {
		k[c] = int64((consumers - c) * lag) // later consumers are behind
	}
	// What the leaders acked already: settled up to where each started.
	for c := range consumers {
		for i := int64(0); i < k[c]; i++ {
			s.add(i*consumers+int64(c), i*consumers+int64(c)+1)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := i % consumers
		off := k[c]*consumers + int64(c)
		k[c]++
		if s.add(off, off+1) != 1 {
			b.Fatal("acked twice")
		}
	}
}

// BenchmarkOpen is one durable queue's open at a start (its close not
// counted): a queue
// holding three messages, the first acked, on a real file system (its
// log's tail checked, its ack record replayed, its dispatcher started and
// stopped). A start with ten thousand queues does this ten thousand
// times.
//
//	go test -run - -bench Open -benchmem ./internal/broker/queue/
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	q, err := Open(Options{Name: "q", Dir: dir, Config: NoLimits()})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3 {
		m := message.Message{RoutingKey: "q", Body: []byte{byte(i)}, Properties: message.Properties{DeliveryMode: 2}}
		a, err := q.Publish(&m)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	d, ok := q.Get(false)
	if !ok {
		b.Fatal("no message")
	}
	q.Ack(d.Offset)
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		q, err := Open(Options{Name: "q", Dir: dir, Config: NoLimits()})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := q.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
