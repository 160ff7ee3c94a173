package queue

import (
	"testing"

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
