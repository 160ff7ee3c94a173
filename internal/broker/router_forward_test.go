package broker

import (
	"reflect"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/meta"
)

func TestForwardedPublishRoundTrip(t *testing.T) {
	q := meta.Queue{Vhost: "/", Name: "orders", ID: "0a1b2c"}
	m := message.Message{Exchange: "ex", RoutingKey: "k", Body: []byte("body")}
	m.Properties.Present = message.PropDeliveryMode | message.PropHeaders | message.PropCorrelationID
	m.Properties.DeliveryMode = 2
	m.Properties.CorrelationID = "c-1"
	m.Properties.Headers = fieldtable.Table{"x": int32(7)}
	b, err := encodeForward(q, &m, time.UnixMilli(1000))
	if err != nil {
		t.Fatal(err)
	}
	gq, gm, err := decodeForward(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gq, q) {
		t.Fatalf("queue %+v, want %+v", gq, q)
	}
	if !reflect.DeepEqual(gm, m) {
		t.Fatalf("message %+v\nwant %+v", gm, m)
	}
	for _, bad := range [][]byte{nil, b[:3], b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		if _, _, err := decodeForward(bad); err == nil {
			t.Fatalf("%d bytes decoded", len(bad))
		}
	}
}

// FuzzDecodeForward: a forwarded publish comes from another node over the
// network; no input may panic the decoder.
func FuzzDecodeForward(f *testing.F) {
	m := message.Message{Exchange: "ex", RoutingKey: "k", Body: []byte("body")}
	b, _ := encodeForward(meta.Queue{Vhost: "/", Name: "q", ID: "ab"}, &m, time.UnixMilli(1))
	f.Add(b)
	f.Add([]byte{0, 1, 'a', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, m, err := decodeForward(b)
		if err != nil {
			return
		}
		again, err := encodeForward(q, &m, time.UnixMilli(1))
		if err != nil {
			return // a header value the encoding refuses
		}
		if _, _, err := decodeForward(again); err != nil {
			t.Fatalf("re-encoded publish does not decode: %v", err)
		}
	})
}
