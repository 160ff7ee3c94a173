package broker

import (
	"reflect"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/meta"
)

func TestRemoteCallsRoundTrip(t *testing.T) {
	ref := meta.Queue{Vhost: "/", Name: "orders", ID: "0a1b"}
	w := newWire(queueRef(ref))
	w.bool(true)
	w.bool(false)
	prio := int64(-3)
	w.u64(uint64(prio))
	c, err := parseConsume(w.b)
	if err != nil || !reflect.DeepEqual(c, consumeReq{ref, queue.ConsumerOptions{NoAck: true, Priority: -3}}) {
		t.Fatalf("consume: %+v %v", c, err)
	}
	if _, err := parseConsume(append(w.b, 0)); err == nil {
		t.Fatal("a consume call with a byte too many parsed")
	}

	w = newWire(nil)
	w.u8(settleRequeueKind)
	w.u64(2)
	w.u64(7)
	w.u64(9)
	s, err := parseSettle(w.b)
	if err != nil || s.kind != settleRequeueKind || !reflect.DeepEqual(s.ids, []int64{7, 9}) {
		t.Fatalf("settle: %+v %v", s, err)
	}
	if _, err := parseSettle(w.b[:len(w.b)-1]); err == nil {
		t.Fatal("a short settle call parsed")
	}

	d := queue.Delivery{Offset: 42, Redelivered: true, DeliveryCount: 3,
		Message: message.Message{Exchange: "ex", RoutingKey: "k", Body: []byte("hi")}}
	w = newWire(nil)
	w.u64(5)
	w.delivery(&d)
	got, sid, err := decodeDeliver(w.b)
	if err != nil || sid != 5 || !reflect.DeepEqual(got.Delivery, d) {
		t.Fatalf("deliver: %+v sid %d err %v", got, sid, err)
	}
}

// FuzzRemoteCalls: the calls between nodes for consuming through any node
// come over the network; no input may panic their decoders.
func FuzzRemoteCalls(f *testing.F) {
	w := newWire(queueRef(meta.Queue{Vhost: "/", Name: "q", ID: "ab"}))
	w.bool(false)
	w.bool(false)
	w.u64(0)
	f.Add(w.b)
	w = newWire(nil)
	w.u64(1)
	w.delivery(&queue.Delivery{Message: message.Message{Body: []byte("x")}})
	f.Add(w.b)
	f.Add([]byte{settleCreditKind, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseConsume(b)
		parseSettle(b)
		parseIDs(b)
		parseGet(b)
		parseRef(b)
		decodeDeliver(b)
		decodeDelivery(b)
		parseList(b)
	})
}
