package mgmt

import (
	"encoding/base64"
	"net/http"
	"unicode/utf8"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// Publishing and getting messages, as RabbitMQ's management API does for
// testing and debugging.

type publishBody struct {
	RoutingKey      string         `json:"routing_key"`
	Payload         string         `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
	Properties      map[string]any `json:"properties"`
}

// propertiesFromJSON reads RabbitMQ's JSON form of basic properties.
func propertiesFromJSON(m map[string]any) (message.Properties, error) {
	var p message.Properties
	str := func(key string, bit uint16, dst *string) {
		if v, ok := m[key].(string); ok {
			*dst = v
			p.Present |= bit
		}
	}
	num := func(key string) (int64, bool, error) {
		v, ok := m[key]
		if !ok || v == nil {
			return 0, false, nil
		}
		x, err := jsonValue(v)
		if err != nil {
			return 0, false, err
		}
		switch n := x.(type) {
		case int64:
			return n, true, nil
		case string:
			var f flexInt
			if err := f.UnmarshalJSON([]byte(n)); err != nil {
				return 0, false, badRequest("property %s: %v", key, err)
			}
			return int64(f), true, nil
		}
		return 0, false, badRequest("property %s must be an integer", key)
	}
	str("content_type", message.PropContentType, &p.ContentType)
	str("content_encoding", message.PropContentEncoding, &p.ContentEncoding)
	str("correlation_id", message.PropCorrelationID, &p.CorrelationID)
	str("reply_to", message.PropReplyTo, &p.ReplyTo)
	str("expiration", message.PropExpiration, &p.Expiration)
	str("message_id", message.PropMessageID, &p.MessageID)
	str("type", message.PropType, &p.Type)
	str("user_id", message.PropUserID, &p.UserID)
	str("app_id", message.PropAppID, &p.AppID)
	str("cluster_id", message.PropClusterID, &p.ClusterID)
	if n, ok, err := num("delivery_mode"); err != nil {
		return p, err
	} else if ok {
		if n < 0 || n > 255 {
			return p, badRequest("delivery_mode out of range")
		}
		p.DeliveryMode, p.Present = uint8(n), p.Present|message.PropDeliveryMode
	}
	if n, ok, err := num("priority"); err != nil {
		return p, err
	} else if ok {
		if n < 0 || n > 255 {
			return p, badRequest("priority out of range")
		}
		p.Priority, p.Present = uint8(n), p.Present|message.PropPriority
	}
	if n, ok, err := num("timestamp"); err != nil {
		return p, err
	} else if ok {
		p.Timestamp, p.Present = n, p.Present|message.PropTimestamp
	}
	if h, ok := m["headers"].(map[string]any); ok {
		t, err := jsonTable(h)
		if err != nil {
			return p, badRequest("headers: %v", err)
		}
		if t == nil {
			t = fieldtable.Table{}
		}
		p.Headers, p.Present = t, p.Present|message.PropHeaders
	}
	return p, nil
}

func propertiesJSON(p *message.Properties) map[string]any {
	out := map[string]any{}
	set := func(bit uint16, key string, v any) {
		if p.Present&bit != 0 {
			out[key] = v
		}
	}
	set(message.PropContentType, "content_type", p.ContentType)
	set(message.PropContentEncoding, "content_encoding", p.ContentEncoding)
	set(message.PropHeaders, "headers", tableJSON(p.Headers))
	set(message.PropDeliveryMode, "delivery_mode", p.DeliveryMode)
	set(message.PropPriority, "priority", p.Priority)
	set(message.PropCorrelationID, "correlation_id", p.CorrelationID)
	set(message.PropReplyTo, "reply_to", p.ReplyTo)
	set(message.PropExpiration, "expiration", p.Expiration)
	set(message.PropMessageID, "message_id", p.MessageID)
	set(message.PropTimestamp, "timestamp", p.Timestamp)
	set(message.PropType, "type", p.Type)
	set(message.PropUserID, "user_id", p.UserID)
	set(message.PropAppID, "app_id", p.AppID)
	set(message.PropClusterID, "cluster_id", p.ClusterID)
	return out
}

// publish routes one message and answers {"routed": bool} once it is
// durable in every queue it went to (the management plugin waits for the
// publisher confirm too).
func (a *API) publish(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	name := exchangeName(r)
	var b publishBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	if err := s.permitted(vh, auth.AccessWrite, "exchange", name); err != nil {
		return nil, err
	}
	var body []byte
	switch b.PayloadEncoding {
	case "", "string":
		body = []byte(b.Payload)
	case "base64":
		if body, err = base64.StdEncoding.DecodeString(b.Payload); err != nil {
			return nil, badRequest("payload is not valid base64: %v", err)
		}
	default:
		return nil, badRequest("payload_encoding must be 'string' or 'base64'")
	}
	props, err := propertiesFromJSON(b.Properties)
	if err != nil {
		return nil, err
	}
	if props.Present&message.PropUserID != 0 && props.UserID != s.user.Name {
		return nil, badRequest("user_id property set to '%s' but authenticated user was '%s'", props.UserID, s.user.Name)
	}
	m := &message.Message{Exchange: name, RoutingKey: b.RoutingKey, Properties: props, Body: body}
	rt, err := a.opts.Router.Publish(vh, m)
	if err != nil {
		return nil, err
	}
	if err := rt.Wait(); err != nil {
		if err == queue.ErrRejected {
			return map[string]any{"routed": false}, nil
		}
		return nil, err
	}
	return map[string]any{"routed": rt.Queues > 0}, nil
}

type getBody struct {
	Count    flexInt `json:"count"`
	Ackmode  string  `json:"ackmode"`
	Encoding string  `json:"encoding"`
	Truncate flexInt `json:"truncate"`
}

// get takes up to count messages, then acks, requeues or rejects them
// all, as ackmode says. Requeued messages come back flagged redelivered.
func (a *API) get(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	name := pathValue(r, "name")
	b := getBody{Count: 1}
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	var ack, requeue bool
	switch b.Ackmode {
	case "ack_requeue_true", "":
		ack, requeue = true, true
	case "ack_requeue_false":
		ack = true
	case "reject_requeue_true":
		requeue = true
	case "reject_requeue_false":
	default:
		return nil, badRequest("ackmode must be one of ack_requeue_true, ack_requeue_false, reject_requeue_true, reject_requeue_false")
	}
	if b.Encoding != "" && b.Encoding != "auto" && b.Encoding != "base64" {
		return nil, badRequest("encoding must be 'auto' or 'base64'")
	}
	if err := s.permitted(vh, auth.AccessRead, "queue", name); err != nil {
		return nil, err
	}
	q, err := a.opts.Router.Queue(vh, name, "")
	if err != nil {
		return nil, err
	}
	var got []queue.Delivery
	for i := int64(0); i < int64(b.Count); i++ {
		d, ok := q.Get(false)
		if !ok {
			break
		}
		got = append(got, d)
	}
	ready, _, _ := q.Counts()
	out := make([]map[string]any, 0, len(got))
	for i, d := range got {
		payload := d.Message.Body
		if b.Truncate > 0 && int64(len(payload)) > int64(b.Truncate) {
			payload = payload[:b.Truncate]
		}
		enc, text := "string", string(payload)
		if b.Encoding == "base64" || !utf8.Valid(payload) {
			enc, text = "base64", base64.StdEncoding.EncodeToString(payload)
		}
		out = append(out, map[string]any{
			"payload_bytes": len(d.Message.Body), "redelivered": d.Redelivered,
			"exchange": d.Message.Exchange, "routing_key": d.Message.RoutingKey,
			"message_count": ready + int64(len(got)-1-i)*boolInt(requeue),
			"properties":    propertiesJSON(&d.Message.Properties),
			"payload":       text, "payload_encoding": enc,
		})
	}
	// Settle after taking them all, so that a requeued message is not
	// taken again by the same get.
	for _, d := range got {
		switch {
		case requeue:
			d.Queue.Requeue(d.Offset)
		case ack:
			d.Queue.Ack(d.Offset)
		default:
			d.Queue.Reject(d.Offset)
		}
	}
	return out, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
