package message

import (
	"slices"
	"strconv"

	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Headers a message fed from a topic to a queue carries (FromFedRecord)
// besides FromTopicRecord's, so that an AMQP consumer knows where in the
// topic it came from, as a stream consumer knows from x-stream-offset.
const (
	HeaderTopic     = "x-kafka-topic"     // the topic's name, string
	HeaderPartition = "x-kafka-partition" // the partition, int32
	HeaderOffset    = "x-kafka-offset"    // the record's offset, int64
)

// FromFedRecord is the message an AMQP queue bound to a topic (or the
// exchange a topic forwards to) receives for record r at offset of a
// topic's partition, with timestamp ts (ms): FromTopicRecord's (key as
// routing key and x-kafka-key, value as body, property headers as
// properties, other record headers as long-string AMQP headers,
// x-kafka-timestamp and the timestamp property), and
//
//   - the exchange is the topic's name;
//   - x-delay holding a decimal integer becomes a long, so that a
//     delayed-message exchange reads it;
//   - a header whose name is over 255 bytes, which an AMQP table cannot
//     hold, is dropped;
//   - delivery mode is persistent unless given;
//   - x-kafka-topic, x-kafka-partition and x-kafka-offset say where the
//     record was read.
//
// A record whose amqp.headers does not decode is read without it. The
// body aliases r.Value.
func FromFedRecord(topic string, partition int32, offset, ts int64, r storage.Record) Message {
	m, err := FromTopicRecord(r, ts)
	if err != nil { // an amqp.headers table that does not decode: drop it
		r.Headers = slices.DeleteFunc(slices.Clone(r.Headers), func(h storage.RecordHeader) bool { return h.Key == hdrHeaders })
		m, _ = FromTopicRecord(r, ts)
	}
	if m.Body == nil {
		m.Body = []byte{}
	}
	m.Exchange = topic
	p := &m.Properties
	h := p.Headers
	for k, v := range h {
		if len(k) > 255 {
			delete(h, k)
		} else if s, ok := v.(string); ok && k == "x-delay" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				h[k] = n
			}
		}
	}
	h[HeaderTopic] = topic
	h[HeaderPartition] = partition
	h[HeaderOffset] = offset
	if p.Present&PropDeliveryMode == 0 {
		p.DeliveryMode, p.Present = 2, p.Present|PropDeliveryMode
	}
	return m
}

// TopicSource reads, from a stored queue record, the topic position a
// message fed by FromTopicRecord came from: ok only if the record's
// exchange is exchange and its headers name topic.
func TopicSource(r storage.Record, exchange, topic string) (partition int32, offset int64, ok bool) {
	var hdrs []byte
	seen := false
	for _, h := range r.Headers {
		switch h.Key {
		case hdrExchange:
			if string(h.Value) != exchange {
				return 0, 0, false
			}
			seen = true
		case hdrHeaders:
			hdrs = h.Value
		}
	}
	if !seen || hdrs == nil {
		return 0, 0, false
	}
	t, _, err := fieldtable.Read(hdrs)
	if err != nil {
		return 0, 0, false
	}
	if s, _ := t[HeaderTopic].(string); s != topic {
		return 0, 0, false
	}
	p, ok1 := t[HeaderPartition].(int32)
	o, ok2 := t[HeaderOffset].(int64)
	return p, o, ok1 && ok2
}
