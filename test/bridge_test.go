package test

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestExchangeFeedsTopic: a binding made through the management API
// (/api/bindings/{vhost}/e/{exchange}/t/{topic}) leads an AMQP exchange
// into a Kafka topic. Messages an amqp091-go publisher has confirmed are
// read by a franz-go consumer as records: the routing key as key, the
// body as value, the exchange and properties as headers; a binding to a
// topic that does not exist is refused; the binding survives a restart.
func TestExchangeFeedsTopic(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	b.createTopic(t, "orders", 3, nil)
	b.api(t, "POST", "/api/bindings/%2F/e/amq.topic/t/orders", map[string]any{"routing_key": "order.#"}, 201)
	if code, out := b.httpDo(t, "guest", "guest", "POST", "/api/bindings/%2F/e/amq.topic/t/nope", map[string]any{"routing_key": "#"}); code < 400 {
		t.Fatalf("binding to a missing topic: status %d %s", code, out)
	}

	publish := func(keys ...string) {
		ch := b.channel(t)
		fatal(ch.Confirm(false))
		for _, k := range keys {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "amq.topic", k, false, false,
				amqp.Publishing{DeliveryMode: amqp.Persistent, ContentType: "text/plain", Body: []byte("body of " + k)})
			fatal(err)
			if ok, err := dc.WaitContext(ctxT(t, 10*time.Second)); !ok || err != nil {
				t.Fatalf("publish %s: confirmed %v, %v", k, ok, err)
			}
		}
	}
	var keys []string
	for i := range 9 {
		keys = append(keys, fmt.Sprintf("order.%d", i))
	}
	publish(keys...)
	publish("invoice.1") // not bound: stays out of the topic

	read := func(n int) map[string]*kgo.Record {
		c := b.client(t, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := map[string]*kgo.Record{}
		for _, r := range consumeN(t, c, n, 20*time.Second) {
			got[string(r.Key)] = r
		}
		return got
	}
	got := read(len(keys))
	t.Logf("read %d records from the topic", len(got))
	for _, k := range keys {
		r, ok := got[k]
		if !ok {
			t.Fatalf("record %s not read from the topic (got %d records)", k, len(got))
		}
		if string(r.Value) != "body of "+k {
			t.Errorf("%s: value %q", k, r.Value)
		}
		headers := map[string]string{}
		for _, h := range r.Headers {
			headers[h.Key] = string(h.Value)
		}
		if headers["amqp.exchange"] != "amq.topic" || headers["content-type"] != "text/plain" {
			t.Errorf("%s: headers %v, want the exchange and content type", k, headers)
		}
	}
	if _, ok := got["invoice.1"]; ok {
		t.Errorf("an unbound routing key reached the topic")
	}

	b.Stop()
	b.Restart()
	publish("order.after-restart")
	if _, ok := read(len(keys) + 1)["order.after-restart"]; !ok {
		t.Fatalf("the binding did not survive a restart")
	}
}
