// Package message is the broker core's protocol-neutral message: what an
// AMQP publish carries (exchange, routing key, properties, body), and how it
// is stored as one record of a RecordBatch v2 in a queue's log.
//
// # Stored form
//
// A message is one record: the key is the routing key, the value is the
// body, and each present property is a record header, so that a Kafka
// client reading the same log sees the body as the value, the routing key as
// the key and readable headers:
//
//	amqp.exchange          exchange name (always present)
//	content-type, content-encoding, correlation-id, reply-to, expiration,
//	message-id, type, user-id, app-id, cluster-id      the string as is
//	delivery-mode, priority, timestamp                  decimal text
//	amqp.headers           the headers table in AMQP field-table encoding
//	                       (internal/fieldtable), types kept exactly
//	x-sluice-death-*       reserved
//
// A property that was present but empty is stored with an empty value; an
// absent property has no header.
package message

import (
	"strconv"

	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Presence bits of Properties.Present, in AMQP's basic property order
// (bit 15 first) so that a front end can copy its flag word.
const (
	PropContentType     uint16 = 1 << 15
	PropContentEncoding uint16 = 1 << 14
	PropHeaders         uint16 = 1 << 13
	PropDeliveryMode    uint16 = 1 << 12
	PropPriority        uint16 = 1 << 11
	PropCorrelationID   uint16 = 1 << 10
	PropReplyTo         uint16 = 1 << 9
	PropExpiration      uint16 = 1 << 8
	PropMessageID       uint16 = 1 << 7
	PropTimestamp       uint16 = 1 << 6
	PropType            uint16 = 1 << 5
	PropUserID          uint16 = 1 << 4
	PropAppID           uint16 = 1 << 3
	PropClusterID       uint16 = 1 << 2
)

// Properties are a message's properties. Present says which are set.
type Properties struct {
	Present         uint16
	ContentType     string
	ContentEncoding string
	Headers         fieldtable.Table
	DeliveryMode    uint8 // 2 = persistent
	Priority        uint8
	CorrelationID   string
	ReplyTo         string
	Expiration      string // per-message TTL in milliseconds, as decimal text
	MessageID       string
	Timestamp       int64 // seconds since the epoch
	Type            string
	UserID          string
	AppID           string
	ClusterID       string
}

// Message is one published message.
type Message struct {
	Exchange   string
	RoutingKey string
	Properties Properties
	Body       []byte
}

// Size is the message's size for queue length limits: the body bytes, as
// RabbitMQ counts x-max-length-bytes.
func (m *Message) Size() int64 { return int64(len(m.Body)) }

// Persistent reports delivery mode 2.
func (m *Message) Persistent() bool {
	return m.Properties.Present&PropDeliveryMode != 0 && m.Properties.DeliveryMode == 2
}

type stringProp struct {
	bit  uint16
	name string
	get  func(*Properties) *string
}

var stringProps = []stringProp{
	{PropContentType, "content-type", func(p *Properties) *string { return &p.ContentType }},
	{PropContentEncoding, "content-encoding", func(p *Properties) *string { return &p.ContentEncoding }},
	{PropCorrelationID, "correlation-id", func(p *Properties) *string { return &p.CorrelationID }},
	{PropReplyTo, "reply-to", func(p *Properties) *string { return &p.ReplyTo }},
	{PropExpiration, "expiration", func(p *Properties) *string { return &p.Expiration }},
	{PropMessageID, "message-id", func(p *Properties) *string { return &p.MessageID }},
	{PropType, "type", func(p *Properties) *string { return &p.Type }},
	{PropUserID, "user-id", func(p *Properties) *string { return &p.UserID }},
	{PropAppID, "app-id", func(p *Properties) *string { return &p.AppID }},
	{PropClusterID, "cluster-id", func(p *Properties) *string { return &p.ClusterID }},
}

const (
	hdrExchange = "amqp.exchange"
	hdrHeaders  = "amqp.headers"
)

// decimals holds the decimal form of every uint8, for the delivery-mode
// and priority headers: shared, never written to.
var decimals [256][]byte

func init() {
	keys := []string{hdrExchange, hdrHeaders, "delivery-mode", "priority", "timestamp"}
	for _, sp := range stringProps {
		keys = append(keys, sp.name)
	}
	storage.RegisterHeaderKeys(keys...)
	for i := range decimals {
		decimals[i] = strconv.AppendUint(nil, uint64(i), 10)
	}
}

// Record is m in its stored form. It fails only if the headers table holds
// a value the field-table encoding cannot represent.
func (m *Message) Record() (storage.Record, error) {
	p := &m.Properties
	r := storage.Record{Key: []byte(m.RoutingKey), Value: m.Body}
	if r.Value == nil {
		r.Value = []byte{}
	}
	r.Headers = append(make([]storage.RecordHeader, 0, 4), storage.RecordHeader{Key: hdrExchange, Value: []byte(m.Exchange)})
	for _, sp := range stringProps {
		if p.Present&sp.bit != 0 {
			r.Headers = append(r.Headers, storage.RecordHeader{Key: sp.name, Value: []byte(*sp.get(p))})
		}
	}
	if p.Present&PropDeliveryMode != 0 {
		r.Headers = append(r.Headers, storage.RecordHeader{Key: "delivery-mode", Value: decimals[p.DeliveryMode]})
	}
	if p.Present&PropPriority != 0 {
		r.Headers = append(r.Headers, storage.RecordHeader{Key: "priority", Value: decimals[p.Priority]})
	}
	if p.Present&PropTimestamp != 0 {
		r.Headers = append(r.Headers, storage.RecordHeader{Key: "timestamp", Value: strconv.AppendInt(nil, p.Timestamp, 10)})
	}
	if p.Present&PropHeaders != 0 {
		t, err := fieldtable.Append(nil, p.Headers)
		if err != nil {
			return storage.Record{}, err
		}
		r.Headers = append(r.Headers, storage.RecordHeader{Key: hdrHeaders, Value: t})
	}
	return r, nil
}

// FromRecord decodes a stored record. Unknown headers are ignored, so a
// record produced by a Kafka client reads as a message with its key as the
// routing key and its value as the body. The body aliases r.Value: storage
// reads return fresh buffers that nobody writes to, so a delivery can hold
// on to it without a copy.
func FromRecord(r storage.Record) (Message, error) {
	m := Message{RoutingKey: string(r.Key), Body: r.Value}
	p := &m.Properties
	for _, h := range r.Headers {
		switch h.Key {
		case hdrExchange:
			m.Exchange = string(h.Value)
		case "delivery-mode":
			if v, err := strconv.ParseUint(string(h.Value), 10, 8); err == nil {
				p.DeliveryMode, p.Present = uint8(v), p.Present|PropDeliveryMode
			}
		case "priority":
			if v, err := strconv.ParseUint(string(h.Value), 10, 8); err == nil {
				p.Priority, p.Present = uint8(v), p.Present|PropPriority
			}
		case "timestamp":
			if v, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				p.Timestamp, p.Present = v, p.Present|PropTimestamp
			}
		case hdrHeaders:
			t, _, err := fieldtable.Read(h.Value)
			if err != nil {
				return Message{}, err
			}
			p.Headers, p.Present = t, p.Present|PropHeaders
		default:
			for _, sp := range stringProps {
				if sp.name == h.Key {
					*sp.get(p) = string(h.Value)
					p.Present |= sp.bit
					break
				}
			}
		}
	}
	return m, nil
}
