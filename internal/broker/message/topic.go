package message

import (
	"strconv"

	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Topic records: a message published over AMQP into a Kafka topic, and a
// record produced by a Kafka client read over AMQP (docs/bridge.md has the
// table).
//
// Into a topic, a message is stored as Record stores it, and each AMQP
// header whose value has a plain text form (a string, byte array, number
// or boolean) is also a record header of its own name, so that a Kafka
// consumer reads it without decoding amqp.headers. Names the stored form
// reserves (the property names, amqp.*, x-sluice-*) are not copied.
//
// Out of a topic, a record that carries amqp.headers was published over
// AMQP: it reads back exactly as FromRecord reads it, the copies ignored.
// Any other record was produced by a Kafka client: headers of a property's
// name set that property, and every other header becomes an AMQP header
// holding its value as a long string.

// Header names added to a message read from a topic over AMQP.
const (
	// HeaderKey carries the record's key as a long string (absent for a
	// null key); the delivery's routing key is the key too.
	HeaderKey = "x-kafka-key"
	// HeaderTimestamp is the record's timestamp in milliseconds since the
	// epoch (the timestamp property has whole seconds only).
	HeaderTimestamp = "x-kafka-timestamp"
)

// reserved reports whether a header name belongs to the stored form.
func reserved(name string) bool {
	switch name {
	case hdrExchange, hdrHeaders, "delivery-mode", "priority", "timestamp":
		return true
	}
	if len(name) >= 5 && name[:5] == "amqp." || len(name) >= 9 && name[:9] == "x-sluice-" {
		return true
	}
	for _, sp := range stringProps {
		if sp.name == name {
			return true
		}
	}
	return false
}

// TopicRecord is m as a record of a Kafka topic: Record, plus the text
// form of each AMQP header as a record header.
func (m *Message) TopicRecord() (storage.Record, error) {
	r, err := m.Record()
	if err != nil || m.Properties.Present&PropHeaders == 0 {
		return r, err
	}
	for k, v := range m.Properties.Headers {
		if reserved(k) {
			continue
		}
		if t, ok := headerText(v); ok {
			r.Headers = append(r.Headers, storage.RecordHeader{Key: k, Value: t})
		}
	}
	return r, nil
}

// headerText is the text form of an AMQP header value, if it has one.
func headerText(v any) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		return []byte(v), true
	case []byte:
		return v, true
	case bool:
		return strconv.AppendBool(nil, v), true
	case int8:
		return strconv.AppendInt(nil, int64(v), 10), true
	case int16:
		return strconv.AppendInt(nil, int64(v), 10), true
	case int32:
		return strconv.AppendInt(nil, int64(v), 10), true
	case int64:
		return strconv.AppendInt(nil, v, 10), true
	case uint8:
		return strconv.AppendUint(nil, uint64(v), 10), true
	case uint16:
		return strconv.AppendUint(nil, uint64(v), 10), true
	case uint32:
		return strconv.AppendUint(nil, uint64(v), 10), true
	case float32:
		return strconv.AppendFloat(nil, float64(v), 'g', -1, 32), true
	case float64:
		return strconv.AppendFloat(nil, v, 'g', -1, 64), true
	}
	return nil, false
}

// FromTopicRecord reads a topic's record stamped ts (ms) as a message:
// FromRecord for a message published over AMQP; for a Kafka client's
// record its headers become properties and AMQP headers. Either way the
// key is in HeaderKey, the timestamp in HeaderTimestamp and, unless the
// message has its own, in the timestamp property.
func FromTopicRecord(r storage.Record, ts int64) (Message, error) {
	m, err := FromRecord(r)
	if err != nil {
		return Message{}, err
	}
	p := &m.Properties
	if p.Present&PropHeaders == 0 {
		for _, h := range r.Headers {
			if reserved(h.Key) {
				continue
			}
			if p.Headers == nil {
				p.Headers = fieldtable.Table{}
			}
			p.Headers[h.Key] = string(h.Value)
		}
	}
	// Otherwise the table was decoded from the record for this message
	// alone (FromRecord): it is added to in place.
	if p.Headers == nil {
		p.Headers = fieldtable.Table{}
	}
	if r.Key != nil {
		p.Headers[HeaderKey] = string(r.Key)
	}
	p.Headers[HeaderTimestamp] = ts
	p.Present |= PropHeaders
	if p.Present&PropTimestamp == 0 {
		p.Timestamp, p.Present = ts/1000, p.Present|PropTimestamp
	}
	return m, nil
}
