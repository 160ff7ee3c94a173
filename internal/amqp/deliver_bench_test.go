package amqp

import (
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// BenchmarkConsumerDeliver is one delivery of a 1 KiB persistent message
// to a consumer, encoded into frames and written to the socket by the
// connection's writer goroutine, and its entry settled again (as its ack
// would). Allocations per delivery show what the send path costs the
// collector flat out.
//
//	go test -run - -bench ConsumerDeliver -benchmem ./internal/amqp/
func BenchmarkConsumerDeliver(b *testing.B) {
	srv, cli := net.Pipe()
	go io.Copy(io.Discard, cli)
	s := &Server{opts: Options{Hooks: noHooks{}}, log: slog.New(slog.DiscardHandler)}
	c := newConn(s, srv)
	c.frameMax = 131072
	c.stats = broker.NewMessageStats(nil)
	go c.writer()
	defer func() {
		close(c.dead)
		close(c.closeW)
		<-c.wdone
		cli.Close()
	}()
	ch := newChannel(c, 1)
	cs := &consumer{ch: ch, tag: "ctag", ready: true, prefetch: 0}
	ch.consumers[cs.tag] = cs
	d := queue.Delivery{Offset: 1, Message: message.Message{RoutingKey: "q", Body: make([]byte, 1024),
		Properties: message.Properties{DeliveryMode: 2}}}
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cs.Reserve()
		cs.Deliver(d)
		ch.mu.Lock()
		delete(ch.unacked, ch.deliveryTag)
		cs.unacked--
		ch.globalUnacked--
		ch.mu.Unlock()
	}
}
