package message

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/storage"
)

// TestAMQPRoundTrip: a message published over AMQP, stored and read back
// is the same message, property by property (present-but-empty kept apart
// from absent).
func TestAMQPRoundTrip(t *testing.T) {
	all := Properties{
		Present: PropContentType | PropContentEncoding | PropHeaders | PropDeliveryMode | PropPriority |
			PropCorrelationID | PropReplyTo | PropExpiration | PropMessageID | PropTimestamp | PropType |
			PropUserID | PropAppID | PropClusterID,
		ContentType: "application/json", ContentEncoding: "gzip",
		Headers:      fieldtable.Table{"retries": int32(3), "tenant": "acme", "flag": true, "nested": fieldtable.Table{"n": int64(-7)}},
		DeliveryMode: 2, Priority: 9, CorrelationID: "c-1", ReplyTo: "amq.rabbitmq.reply-to",
		Expiration: "60000", MessageID: "m-1", Timestamp: 1_700_000_000, Type: "order.created",
		UserID: "guest", AppID: "shop", ClusterID: "eu",
	}
	cases := []struct {
		name string
		msg  Message
	}{
		{"no properties, empty body", Message{Exchange: "", RoutingKey: "q", Body: []byte{}}},
		{"every property", Message{Exchange: "orders", RoutingKey: "order.created.eu", Properties: all, Body: []byte(`{"id":1}`)}},
		{"present but empty strings", Message{Exchange: "x", Properties: Properties{Present: PropContentType | PropMessageID}, Body: []byte("b")}},
		{"transient, priority 0", Message{Exchange: "x", RoutingKey: "k", Properties: Properties{Present: PropDeliveryMode | PropPriority, DeliveryMode: 1}, Body: []byte("b")}},
		{"negative timestamp", Message{Properties: Properties{Present: PropTimestamp, Timestamp: -1}, Body: []byte("b")}},
		{"empty headers table", Message{Properties: Properties{Present: PropHeaders, Headers: fieldtable.Table{}}, Body: []byte("b")}},
		{"binary body", Message{RoutingKey: "k", Body: []byte{0, 1, 2, 0xff}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, err := c.msg.Record()
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.msg) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, c.msg)
			}
		})
	}
}

// TestStoredFormAsKafkaSeesIt: the record a Kafka client reads from the
// same log has the routing key as key, the body as value and the
// documented headers, in order.
func TestStoredFormAsKafkaSeesIt(t *testing.T) {
	m := Message{Exchange: "orders", RoutingKey: "order.created", Body: []byte("hello"), Properties: Properties{
		Present:     PropContentType | PropDeliveryMode | PropPriority | PropTimestamp | PropMessageID,
		ContentType: "text/plain", DeliveryMode: 2, Priority: 5, Timestamp: 1700000000, MessageID: "m-9",
	}}
	rec, err := m.Record()
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Key) != "order.created" || string(rec.Value) != "hello" {
		t.Fatalf("key %q value %q", rec.Key, rec.Value)
	}
	want := []storage.RecordHeader{
		{Key: "amqp.exchange", Value: []byte("orders")},
		{Key: "content-type", Value: []byte("text/plain")},
		{Key: "message-id", Value: []byte("m-9")},
		{Key: "delivery-mode", Value: []byte("2")},
		{Key: "priority", Value: []byte("5")},
		{Key: "timestamp", Value: []byte("1700000000")},
	}
	if len(rec.Headers) != len(want) {
		t.Fatalf("headers %v, want %v", rec.Headers, want)
	}
	for i, h := range rec.Headers {
		if h.Key != want[i].Key || !bytes.Equal(h.Value, want[i].Value) {
			t.Errorf("header %d: %s=%q, want %s=%q", i, h.Key, h.Value, want[i].Key, want[i].Value)
		}
	}
}

// TestFromKafkaRecord: a record produced by a Kafka client reads as a
// message: key as routing key, value as body, the headers Sluice knows
// taken as properties when well formed, every other header ignored.
func TestFromKafkaRecord(t *testing.T) {
	cases := []struct {
		name    string
		rec     storage.Record
		want    Message
		wantErr bool
	}{
		{"plain record", storage.Record{Key: []byte("user-1"), Value: []byte("v")},
			Message{RoutingKey: "user-1", Body: []byte("v")}, false},
		{"null key", storage.Record{Value: []byte("v")}, Message{Body: []byte("v")}, false},
		{"unknown headers ignored", storage.Record{Value: []byte("v"), Headers: []storage.RecordHeader{{Key: "traceparent", Value: []byte("00-ab")}, {Key: "x", Value: nil}}},
			Message{Body: []byte("v")}, false},
		{"known string headers", storage.Record{Value: []byte("v"), Headers: []storage.RecordHeader{{Key: "content-type", Value: []byte("application/avro")}, {Key: "reply-to", Value: []byte("replies")}}},
			Message{Body: []byte("v"), Properties: Properties{Present: PropContentType | PropReplyTo, ContentType: "application/avro", ReplyTo: "replies"}}, false},
		{"well-formed numbers", storage.Record{Value: []byte("v"), Headers: []storage.RecordHeader{{Key: "delivery-mode", Value: []byte("2")}, {Key: "priority", Value: []byte("7")}, {Key: "timestamp", Value: []byte("12")}}},
			Message{Body: []byte("v"), Properties: Properties{Present: PropDeliveryMode | PropPriority | PropTimestamp, DeliveryMode: 2, Priority: 7, Timestamp: 12}}, false},
		{"malformed numbers ignored", storage.Record{Value: []byte("v"), Headers: []storage.RecordHeader{{Key: "delivery-mode", Value: []byte("persistent")}, {Key: "priority", Value: []byte("300")}, {Key: "timestamp", Value: []byte("")}}},
			Message{Body: []byte("v")}, false},
		{"corrupt amqp.headers", storage.Record{Value: []byte("v"), Headers: []storage.RecordHeader{{Key: "amqp.headers", Value: []byte{0, 0, 0, 9, 1}}}},
			Message{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromRecord(c.rec)
			if c.wantErr {
				if err == nil || !errors.Is(err, fieldtable.ErrMalformed) {
					t.Fatalf("error %v, want a malformed field table", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v\nwant %#v", got, c.want)
			}
		})
	}
}

// FuzzFromRecord: records come from Kafka clients, so any key, value and
// headers must decode or fail cleanly, and whatever decodes must store and
// decode again to the same message.
func FuzzFromRecord(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), "delivery-mode", []byte("2"), "amqp.headers", []byte{0, 0, 0, 0})
	f.Add([]byte(nil), []byte(nil), "priority", []byte("255"), "content-type", []byte("x"))
	f.Add([]byte("k"), []byte("v"), "amqp.headers", []byte{0, 0, 0, 5, 1, 'a', 't', 1}, "timestamp", []byte("-5"))
	f.Fuzz(func(t *testing.T, key, value []byte, h1 string, v1 []byte, h2 string, v2 []byte) {
		rec := storage.Record{Key: key, Value: value, Headers: []storage.RecordHeader{{Key: h1, Value: v1}, {Key: h2, Value: v2}}}
		m, err := FromRecord(rec)
		if err != nil {
			return
		}
		again, err := m.Record()
		if err != nil {
			return // a decoded table the encoder refuses (a value past its limits)
		}
		m2, err := FromRecord(again)
		if err != nil {
			t.Fatalf("a decoded message does not decode after storing: %v", err)
		}
		if m2.RoutingKey != m.RoutingKey || !bytes.Equal(m2.Body, m.Body) || m2.Properties.Present != m.Properties.Present {
			t.Fatalf("stored and decoded again: %#v, was %#v", m2, m)
		}
	})
}
