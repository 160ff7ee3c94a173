package message

import (
	"testing"

	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/storage"
)

// TestFromFedRecord is the mapping table of docs/amqp-compatibility.md
// ("Queues bound to topics"), row by row.
func TestFromFedRecord(t *testing.T) {
	r := storage.Record{Key: []byte("order-1"), Value: []byte("body"), Headers: []storage.RecordHeader{
		{Key: "trace", Value: []byte("abc")},
		{Key: "x-delay", Value: []byte("5000")},
		{Key: "content-type", Value: []byte("application/json")},
		{Key: "expiration", Value: []byte("60000")},
	}}
	m := FromFedRecord("orders", 2, 41, 1700000000123, r)
	p := m.Properties
	h := p.Headers
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"exchange", m.Exchange, "orders"},
		{"routing key", m.RoutingKey, "order-1"},
		{"body", string(m.Body), "body"},
		{"plain header", h["trace"], "abc"},
		{"x-delay", h["x-delay"], int64(5000)},
		{"content-type", p.ContentType, "application/json"},
		{"expiration", p.Expiration, "60000"},
		{"x-kafka-key", h[HeaderKey], "order-1"},
		{"x-kafka-topic", h[HeaderTopic], "orders"},
		{"x-kafka-partition", h[HeaderPartition], int32(2)},
		{"x-kafka-offset", h[HeaderOffset], int64(41)},
		{"x-kafka-timestamp", h[HeaderTimestamp], int64(1700000000123)},
		{"timestamp", p.Timestamp, int64(1700000000)},
		{"delivery mode", p.DeliveryMode, uint8(2)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %#v, want %#v", c.what, c.got, c.want)
		}
	}
	if _, ok := h["content-type"]; ok {
		t.Errorf("a property's record header is also an AMQP header")
	}

	// A message an AMQP publisher routed into the topic comes back as sent.
	orig := Message{Exchange: "amq.topic", RoutingKey: "k", Body: []byte("x"), Properties: Properties{
		Present: PropHeaders | PropTimestamp | PropMessageID, MessageID: "m1", Timestamp: 42,
		Headers: fieldtable.Table{"n": int32(7)}}}
	rec, err := orig.Record()
	if err != nil {
		t.Fatal(err)
	}
	m = FromFedRecord("t", 0, 5, 99000, rec)
	if m.Properties.MessageID != "m1" || m.Properties.Timestamp != 42 || m.Properties.Headers["n"] != int32(7) {
		t.Errorf("AMQP-published record: %+v", m.Properties)
	}

	// The stored form of a fed message names its source.
	stored, err := m.Record()
	if err != nil {
		t.Fatal(err)
	}
	if p, off, ok := TopicSource(stored, "t", "t"); !ok || p != 0 || off != 5 {
		t.Errorf("TopicSource: %d %d %v", p, off, ok)
	}
	if _, _, ok := TopicSource(stored, "other", "t"); ok {
		t.Errorf("TopicSource matched another exchange")
	}
	if _, _, ok := TopicSource(rec, "amq.topic", "t"); ok {
		t.Errorf("TopicSource matched a message that was not fed")
	}
}

// FuzzFromFedRecord: whatever headers a Kafka producer sends, the
// mapping does not panic, and its stored form names the record's source.
func FuzzFromFedRecord(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), "h", []byte("x"), "amqp.headers", []byte{0, 0, 0, 1})
	f.Add([]byte(nil), []byte(nil), "x-delay", []byte("12"), "timestamp", []byte("nope"))
	f.Fuzz(func(t *testing.T, key, value []byte, k1 string, v1 []byte, k2 string, v2 []byte) {
		r := storage.Record{Key: key, Value: value, Headers: []storage.RecordHeader{{Key: k1, Value: v1}, {Key: k2, Value: v2}}}
		m := FromFedRecord("t", 3, 77, 1000, r)
		stored, err := m.Record()
		if err != nil {
			t.Fatalf("the mapped message cannot be stored: %v", err)
		}
		if p, off, ok := TopicSource(stored, "t", "t"); !ok || p != 3 || off != 77 {
			t.Fatalf("TopicSource: %d %d %v", p, off, ok)
		}
	})
}
