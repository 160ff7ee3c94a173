package message

import (
	"testing"

	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/storage"
)

// TestTopicRecordRoundTrip: an AMQP message into a topic carries its
// headers also as record headers (those with a text form, not the
// reserved names), and reads back exactly, plus the key and timestamp.
func TestTopicRecordRoundTrip(t *testing.T) {
	m := Message{Exchange: "x", RoutingKey: "k", Body: []byte("b"), Properties: Properties{
		Present: PropHeaders | PropContentType, ContentType: "text/plain",
		Headers: fieldtable.Table{"s": "v", "n": int32(7), "f": true, "content-type": "spoof", "t": fieldtable.Table{"a": "b"}},
	}}
	r, err := m.TopicRecord()
	if err != nil {
		t.Fatal(err)
	}
	hs := map[string]string{}
	for _, h := range r.Headers {
		if _, dup := hs[h.Key]; dup {
			t.Fatalf("header %s twice", h.Key)
		}
		hs[h.Key] = string(h.Value)
	}
	if hs["s"] != "v" || hs["n"] != "7" || hs["f"] != "true" || hs["content-type"] != "text/plain" {
		t.Fatalf("record headers %v", hs)
	}
	if _, ok := hs["t"]; ok {
		t.Fatal("a table header has no text form, but was copied")
	}
	got, err := FromTopicRecord(r, 1_700_000_123_456)
	if err != nil {
		t.Fatal(err)
	}
	p := got.Properties
	if got.RoutingKey != "k" || p.ContentType != "text/plain" || p.Headers["n"] != int32(7) || p.Headers["content-type"] != "spoof" ||
		p.Headers[HeaderKey] != "k" || p.Headers[HeaderTimestamp] != int64(1_700_000_123_456) || p.Timestamp != 1_700_000_123 {
		t.Fatalf("read back %+v", got)
	}
}

// TestFromTopicRecordKafka: a Kafka client's record: headers of property
// names set the properties, the others become AMQP headers; a null key
// has no key header.
func TestFromTopicRecordKafka(t *testing.T) {
	r := storage.Record{Value: []byte("v"), Headers: []storage.RecordHeader{
		{Key: "content-type", Value: []byte("application/json")}, {Key: "trace", Value: []byte("abc")}, {Key: "amqp.exchange", Value: []byte("e")}}}
	m, err := FromTopicRecord(r, 5000)
	if err != nil {
		t.Fatal(err)
	}
	p := m.Properties
	if p.ContentType != "application/json" || p.Headers["trace"] != "abc" || m.Exchange != "e" || p.Timestamp != 5 {
		t.Fatalf("%+v", m)
	}
	if _, ok := p.Headers[HeaderKey]; ok {
		t.Fatal("a null key got a key header")
	}
	if _, ok := p.Headers["content-type"]; ok {
		t.Fatal("a property's header is also an AMQP header")
	}
}
