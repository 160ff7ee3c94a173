package amqp

import (
	"strings"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// Direct reply-to, as RabbitMQ has it: a client consumes (no-ack) from the
// pseudo-queue amq.rabbitmq.reply-to, publishes requests with reply_to set
// to that name, and the server rewrites it to amq.rabbitmq.reply-to.<token>.
// A reply published to the default exchange with that routing key goes
// straight to the consumer's channel, through no queue.

const replyToQueue = "amq.rabbitmq.reply-to"

type replyConsumer struct {
	tag, token string
}

// replyConsume handles basic.consume on amq.rabbitmq.reply-to.
func (ch *channel) replyConsume(m *wire.BasicConsume) error {
	if !m.NoAck {
		return errorf(wire.PreconditionFailed, "reply consumer cannot acknowledge")
	}
	if ch.reply != nil {
		return errorf(wire.PreconditionFailed, "reply consumer already set")
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = randomTag("amq.ctag-")
	}
	rc := &replyConsumer{tag: tag, token: randomTag("")}
	ch.reply = rc
	ch.c.s.replyTo.Store(rc.token, ch)
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.BasicConsumeOk{ConsumerTag: tag})
	}
	return nil
}

// releaseReply forgets the channel's reply consumer.
func (ch *channel) releaseReply() {
	if rc := ch.reply; rc != nil {
		ch.c.s.replyTo.Delete(rc.token)
		ch.reply = nil
	}
}

// rewriteReplyTo points a request's reply_to at this channel.
func (ch *channel) rewriteReplyTo(p *message.Properties) error {
	if p.Present&message.PropReplyTo == 0 || p.ReplyTo != replyToQueue {
		return nil
	}
	if ch.reply == nil {
		return errorf(wire.PreconditionFailed, "fast reply consumer does not exist")
	}
	p.ReplyTo = replyToQueue + "." + ch.reply.token
	return nil
}

// deliverReply sends a reply to the channel waiting for it; false if none.
func (s *Server) deliverReply(m *message.Message) bool {
	token, ok := strings.CutPrefix(m.RoutingKey, replyToQueue+".")
	if !ok || m.Exchange != "" {
		return false
	}
	v, ok := s.replyTo.Load(token)
	if !ok {
		return false
	}
	ch := v.(*channel)
	ch.sendMu.Lock()
	defer ch.sendMu.Unlock()
	ch.mu.Lock()
	rc := ch.reply
	if ch.closed || rc == nil {
		ch.mu.Unlock()
		return false
	}
	ch.deliveryTag++
	tag := ch.deliveryTag
	ch.mu.Unlock()
	d := queue.Delivery{Message: *m}
	return ch.sendDelivery(&wire.BasicDeliver{ConsumerTag: rc.tag, DeliveryTag: tag, RoutingKey: m.RoutingKey}, &d)
}
