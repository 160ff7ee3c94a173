package message

import (
	"slices"
	"strconv"

	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Headers a message fed from a topic carries (FromTopicRecord), so that an
// AMQP consumer knows where in the topic it came from, as a stream
// consumer knows from x-stream-offset.
const (
	HeaderTopic     = "x-kafka-topic"     // the topic's name, string
	HeaderPartition = "x-kafka-partition" // the partition, int32
	HeaderOffset    = "x-kafka-offset"    // the record's offset, int64
	HeaderKey       = "x-kafka-key"       // the record key, string; absent for a null key
	HeaderTimestamp = "x-kafka-timestamp" // the record's timestamp, ms since the epoch, int64
)

// storedKey reports whether a record header key belongs to the stored
// form of a message (Record) rather than being a header of its own.
func storedKey(k string) bool {
	switch k {
	case hdrExchange, hdrHeaders, "delivery-mode", "priority", "timestamp":
		return true
	}
	for _, sp := range stringProps {
		if sp.name == k {
			return true
		}
	}
	return false
}

// FromTopicRecord is the message an AMQP queue receives for record r at
// offset of a topic's partition, with timestamp ts (ms):
//
//   - the key is the routing key (and header x-kafka-key), the value the
//     body; the exchange is the topic's name;
//   - record headers named as stored-form headers (content-type,
//     message-id, ..., amqp.headers) become those properties, so that a
//     message an AMQP publisher sent into the topic comes back as it was;
//   - every other record header becomes an AMQP header of that name, a
//     long string (an AMQP header of the same name wins); x-delay holding
//     a decimal integer becomes a long, so that a delayed-message exchange
//     reads it;
//   - the timestamp property is the record's timestamp in seconds unless
//     the record carries one; delivery mode is persistent unless given;
//   - x-kafka-topic, x-kafka-partition, x-kafka-offset and
//     x-kafka-timestamp say where the record was read.
//
// The body aliases r.Value.
func FromTopicRecord(topic string, partition int32, offset, ts int64, r storage.Record) Message {
	m, err := FromRecord(r)
	if err != nil { // an amqp.headers table that does not decode: drop it
		r.Headers = slices.DeleteFunc(slices.Clone(r.Headers), func(h storage.RecordHeader) bool { return h.Key == hdrHeaders })
		m, _ = FromRecord(r)
	}
	if m.Body == nil {
		m.Body = []byte{}
	}
	m.Exchange = topic
	p := &m.Properties
	h := make(fieldtable.Table, len(p.Headers)+len(r.Headers)+5)
	for _, rh := range r.Headers {
		if storedKey(rh.Key) || len(rh.Key) > 255 { // an AMQP table key is a short string
			continue
		}
		if rh.Key == "x-delay" {
			if n, err := strconv.ParseInt(string(rh.Value), 10, 64); err == nil {
				h[rh.Key] = n
				continue
			}
		}
		h[rh.Key] = string(rh.Value)
	}
	for k, v := range p.Headers {
		h[k] = v
	}
	if r.Key != nil {
		h[HeaderKey] = string(r.Key)
	} else {
		delete(h, HeaderKey)
	}
	h[HeaderTopic] = topic
	h[HeaderPartition] = partition
	h[HeaderOffset] = offset
	h[HeaderTimestamp] = ts
	p.Headers, p.Present = h, p.Present|PropHeaders
	if p.Present&PropTimestamp == 0 {
		p.Timestamp, p.Present = ts/1000, p.Present|PropTimestamp
	}
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
