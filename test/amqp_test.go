package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestAMQPWorkQueue: the RabbitMQ "work queues" tutorial — a durable queue,
// persistent messages, manual acks with prefetch 1 — against Sluice.
func TestAMQPWorkQueue(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	q, err := ch.QueueDeclare("tasks", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != "tasks" || q.Messages != 0 {
		t.Fatalf("declare-ok %+v", q)
	}
	ctx := ctxT(t, 10*time.Second)
	for i := range 10 {
		if err := ch.PublishWithContext(ctx, "", "tasks", false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ContentType: "text/plain", Body: []byte(fmt.Sprint("task ", i)),
			Headers: amqp.Table{"n": int32(i), "s": "x"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "10 ready messages", func() bool {
		q, err := ch.QueueDeclarePassive("tasks", true, false, false, false, nil)
		return err == nil && q.Messages == 10
	})
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume("tasks", "worker", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		m := recv(t, d, 5*time.Second)
		if string(m.Body) != fmt.Sprint("task ", i) || m.ContentType != "text/plain" || m.DeliveryMode != amqp.Persistent {
			t.Fatalf("message %d: %q %+v", i, m.Body, m)
		}
		if m.Headers["n"] != int32(i) || m.Headers["s"] != "x" {
			t.Fatalf("headers %v", m.Headers)
		}
		noDelivery(t, d, 20*time.Millisecond) // prefetch 1: nothing more until the ack
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAMQPConfirmsAndRestart: confirmed persistent messages on a durable
// queue survive a restart; unacked ones come back.
func TestAMQPConfirmsAndRestart(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("durable", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	var confs []*amqp.DeferredConfirmation
	for i := range 100 {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "durable", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, dc)
	}
	for i, dc := range confs {
		ok, err := dc.WaitContext(ctx)
		if err != nil || !ok {
			t.Fatalf("confirm %d: ok=%v err=%v", i, ok, err)
		}
	}
	// take 10, ack 5, leave 5 unacked across the restart
	for i := range 10 {
		m, ok, err := ch.Get("durable", false)
		if err != nil || !ok || string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("get %d: %v %v %q", i, ok, err, m.Body)
		}
		if i < 5 {
			m.Ack(false)
		}
	}
	conn.Close()
	b.Stop()
	b.Restart()
	ch = b.channel(t)
	q, err := ch.QueueDeclarePassive("durable", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 95 {
		t.Fatalf("after restart %d ready, want 95", q.Messages)
	}
	for i := 5; i < 100; i++ {
		m, ok, err := ch.Get("durable", true)
		if err != nil || !ok || string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("after restart get %d: %v %v %q", i, ok, err, m.Body)
		}
	}
}

// TestAMQPExchangeTypes routes through direct, fanout, topic and headers
// exchanges.
func TestAMQPExchangeTypes(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	must := fatalIf(t)
	declare := func(name string) {
		_, err := ch.QueueDeclare(name, false, false, true, false, nil)
		must(err)
	}
	for _, q := range []string{"d1", "f1", "f2", "t1", "t2", "h1", "h2"} {
		declare(q)
	}
	must(ch.ExchangeDeclare("dx", "direct", false, false, false, false, nil))
	must(ch.ExchangeDeclare("fx", "fanout", false, false, false, false, nil))
	must(ch.ExchangeDeclare("tx", "topic", false, false, false, false, nil))
	must(ch.ExchangeDeclare("hx", "headers", false, false, false, false, nil))
	must(ch.QueueBind("d1", "red", "dx", false, nil))
	must(ch.QueueBind("f1", "", "fx", false, nil))
	must(ch.QueueBind("f2", "", "fx", false, nil))
	must(ch.QueueBind("t1", "*.orange.*", "tx", false, nil))
	must(ch.QueueBind("t2", "lazy.#", "tx", false, nil))
	must(ch.QueueBind("h1", "", "hx", false, amqp.Table{"x-match": "all", "format": "pdf", "type": "report"}))
	must(ch.QueueBind("h2", "", "hx", false, amqp.Table{"x-match": "any", "format": "pdf", "type": "log"}))
	ctx := ctxT(t, 10*time.Second)
	pub := func(x, key string, h amqp.Table, body string) {
		t.Helper()
		must(ch.PublishWithContext(ctx, x, key, false, false, amqp.Publishing{Headers: h, Body: []byte(body)}))
	}
	pub("dx", "red", nil, "d-red")
	pub("dx", "blue", nil, "d-blue")
	pub("fx", "whatever", nil, "f")
	pub("tx", "quick.orange.rabbit", nil, "t-qor")
	pub("tx", "lazy.orange.elephant", nil, "t-loe")
	pub("tx", "lazy", nil, "t-lazy")
	pub("tx", "quick.brown.fox", nil, "t-none")
	pub("hx", "", amqp.Table{"format": "pdf", "type": "report"}, "h-both")
	pub("hx", "", amqp.Table{"format": "zip", "type": "log"}, "h-any")
	want := map[string][]string{
		"d1": {"d-red"}, "f1": {"f"}, "f2": {"f"},
		"t1": {"t-qor", "t-loe"}, "t2": {"t-loe", "t-lazy"},
		"h1": {"h-both"}, "h2": {"h-both", "h-any"},
	}
	for q, bodies := range want {
		var got []string
		waitFor(t, 5*time.Second, "messages in "+q, func() bool {
			for {
				m, ok, err := ch.Get(q, true)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				got = append(got, string(m.Body))
			}
			return len(got) >= len(bodies)
		})
		if fmt.Sprint(got) != fmt.Sprint(bodies) {
			t.Errorf("queue %s got %v want %v", q, got, bodies)
		}
	}
}

// TestAMQPMandatoryReturn: an unroutable mandatory publish comes back with
// basic.return 312 NO_ROUTE, before its confirm.
func TestAMQPMandatoryReturn(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	if err := ch.PublishWithContext(ctxT(t, 5*time.Second), "", "nowhere", true, false, amqp.Publishing{Body: []byte("lost")}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || string(r.Body) != "lost" || r.RoutingKey != "nowhere" {
			t.Fatalf("return %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no basic.return")
	}
	select {
	case c := <-confirms:
		if !c.Ack {
			t.Fatal("unroutable message should still be acked")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no confirm")
	}
}

// TestAMQPErrors: soft errors close the channel with the right code, hard
// errors close the connection, and other connections carry on.
func TestAMQPErrors(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch, _ := conn.Channel()
	_, err := ch.QueueDeclarePassive("missing", false, false, false, false, nil)
	if amqpErrCode(err) != 404 {
		t.Fatalf("passive declare of a missing queue: %v, want 404", err)
	}
	ch, _ = conn.Channel()
	if _, err := ch.QueueDeclare("q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclare("q", true, false, false, false, nil)
	if amqpErrCode(err) != 406 {
		t.Fatalf("inequivalent redeclare: %v, want 406", err)
	}
	ch, _ = conn.Channel()
	err = ch.PublishWithContext(ctxT(t, 5*time.Second), "no-such-exchange", "", false, false, amqp.Publishing{})
	if err == nil {
		// the error comes asynchronously as channel.close
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case e := <-closed:
			if e == nil || e.Code != 404 {
				t.Fatalf("publish to a missing exchange: %v, want 404", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("channel not closed")
		}
	}
	ch, _ = conn.Channel()
	err = ch.ExchangeDeclare("bad", "no-such-type", false, false, false, false, nil)
	if amqpErrCode(err) != 503 {
		t.Fatalf("unknown exchange type: %v, want 503", err)
	}
	if !conn.IsClosed() {
		waitFor(t, 5*time.Second, "connection closed by a hard error", conn.IsClosed)
	}
	// another connection is fine
	ch2 := b.channel(t)
	if _, err := ch2.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
	// exclusive queue of another connection: 405
	q, _ := ch2.QueueDeclare("mine", false, false, true, false, nil)
	ch3 := b.channel(t)
	_, err = ch3.QueueDeclare(q.Name, false, false, true, false, nil)
	if amqpErrCode(err) != 405 {
		t.Fatalf("other connection's exclusive queue: %v, want 405", err)
	}
	// bad login
	if _, err := amqp.Dial("amqp://guest:wrong@" + b.AMQP + "/"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := amqp.Dial("amqp://guest:guest@" + b.AMQP + "/novhost"); err == nil {
		t.Fatal("unknown vhost accepted")
	}
	_ = context.Background
}

// TestAMQPDirectReplyTo: RPC over amq.rabbitmq.reply-to, as in RabbitMQ's
// RPC tutorial without a reply queue.
func TestAMQPDirectReplyTo(t *testing.T) {
	b := startBroker(t)
	server := b.channel(t)
	if _, err := server.QueueDeclare("rpc", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	reqs, err := server.Consume("rpc", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := b.channel(t)
	replies, err := client.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	if err := client.PublishWithContext(ctx, "", "rpc", false, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: "c1", Body: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	req := recv(t, reqs, 5*time.Second)
	if !strings.HasPrefix(req.ReplyTo, "amq.rabbitmq.reply-to.") {
		t.Fatalf("reply_to not rewritten: %q", req.ReplyTo)
	}
	if err := server.PublishWithContext(ctx, "", req.ReplyTo, false, false, amqp.Publishing{CorrelationId: req.CorrelationId, Body: []byte("pong")}); err != nil {
		t.Fatal(err)
	}
	rep := recv(t, replies, 5*time.Second)
	if string(rep.Body) != "pong" || rep.CorrelationId != "c1" {
		t.Fatalf("reply %q %q", rep.Body, rep.CorrelationId)
	}
}

// TestAMQPRoutingGraph: a message reaching a queue by several paths
// through exchange-to-exchange bindings (including a cycle) is stored
// there once, for a fan-out small and large (past the point where the
// router stops scanning and keeps a set), and an alternate exchange is
// used only when nothing else routed the message.
func TestAMQPRoutingGraph(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	must := fatalIf(t)
	must(ch.ExchangeDeclare("alt", "fanout", false, false, false, false, nil))
	must(ch.ExchangeDeclare("top", "fanout", false, false, false, false, amqp.Table{"alternate-exchange": "alt"}))
	must(ch.ExchangeDeclare("left", "fanout", false, false, false, false, nil))
	must(ch.ExchangeDeclare("right", "direct", false, false, false, false, nil))
	must(ch.ExchangeBind("left", "", "top", false, nil))
	must(ch.ExchangeBind("right", "k", "top", false, nil))
	must(ch.ExchangeBind("top", "", "left", false, nil)) // a cycle back to top
	_, err := ch.QueueDeclare("lost", false, false, true, false, nil)
	must(err)
	must(ch.QueueBind("lost", "", "alt", false, nil))

	const n = 40 // more queues than the router scans before using a set
	for i := range n {
		q := fmt.Sprintf("g%d", i)
		_, err := ch.QueueDeclare(q, false, false, true, false, nil)
		must(err)
		// every queue is reachable from top through left, and the even
		// ones also through right and directly
		must(ch.QueueBind(q, "", "left", false, nil))
		if i%2 == 0 {
			must(ch.QueueBind(q, "k", "right", false, nil))
			must(ch.QueueBind(q, "", "top", false, nil))
		}
	}
	ctx := ctxT(t, 10*time.Second)
	must(ch.PublishWithContext(ctx, "top", "k", false, false, amqp.Publishing{Body: []byte("m1")}))
	must(ch.PublishWithContext(ctx, "right", "k", false, false, amqp.Publishing{Body: []byte("m2")}))
	// Wait for the last publish to be routed: m2 reaches g0 after m1.
	waitFor(t, 5*time.Second, "g0 to hold 2 messages", func() bool {
		q, err := ch.QueueDeclarePassive("g0", false, false, true, false, nil)
		must(err)
		return q.Messages == 2
	})
	for i := range n {
		q, err := ch.QueueDeclarePassive(fmt.Sprintf("g%d", i), false, false, true, false, nil)
		must(err)
		want := 1 // m1 once, whatever the number of paths
		if i%2 == 0 {
			want = 2 // and m2 through right
		}
		if q.Messages != want {
			t.Errorf("queue g%d holds %d messages, want %d", i, q.Messages, want)
		}
	}
	if q, err := ch.QueueDeclarePassive("lost", false, false, true, false, nil); err != nil || q.Messages != 0 {
		t.Errorf("alternate exchange queue holds %d (err %v), want 0: the message was routed", q.Messages, err)
	}
	must(ch.PublishWithContext(ctx, "right", "nomatch", false, false, amqp.Publishing{Body: []byte("m3")}))
	must(ch.QueueUnbind("lost", "", "alt", nil)) // only to order: unbind answers after m3 is routed
	m, ok, err := ch.Get("lost", true)
	if err != nil || ok {
		t.Errorf("right has no alternate exchange, yet lost got %q (ok %v, err %v)", m.Body, ok, err)
	}
}
