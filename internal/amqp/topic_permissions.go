package amqp

// RabbitMQ's topic authorisation: a user's topic permissions in the
// connection's vhost (write and read patterns over routing keys, per
// exchange) restrict what it may publish to and bind from a topic
// exchange. As in RabbitMQ:
//
//   - They apply only to exchanges of type topic, and only to an exchange
//     the user has a topic permission on: without one, the vhost
//     permissions alone decide.
//   - basic.publish checks the routing key against write; queue.bind and
//     queue.unbind check the binding key against read (exchange.bind and
//     exchange.unbind check the source exchange's read pattern too).
//   - "{username}" and "{vhost}" in a pattern are replaced by the
//     connection's user and vhost before matching, as they are, without
//     escaping (so a user name with regular expression syntax in it keeps
//     its meaning there, as in RabbitMQ).
//   - A refusal is ACCESS_REFUSED (403), closing the channel.
//
// They are read at connection.open, like the vhost permissions: a change
// applies to new connections.

import (
	"strings"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
)

// loadTopicPermissions keeps the user's topic permissions in the vhost,
// by exchange; none if the accounts do not store them.
func (c *conn) loadTopicPermissions() {
	src, ok := c.s.accts.(broker.TopicPermissionSource)
	if !ok {
		return
	}
	for _, p := range src.TopicPermissions(c.user, c.vhost) {
		if c.topicPerms == nil {
			c.topicPerms = make(map[string]broker.TopicPermission)
		}
		c.topicPerms[p.Exchange] = p
	}
}

// topicAllowed checks a routing key against the user's topic permission
// on exchange (write for publishing, read for binding), if the exchange
// is a topic exchange the user has one on.
func (ch *channel) topicAllowed(a accessKind, exchange, key string) error {
	c := ch.c
	if len(c.topicPerms) == 0 {
		return nil
	}
	p, ok := c.topicPerms[exchange]
	if !ok || c.s.router.ExchangeType(c.vhost, exchange) != "topic" {
		return nil
	}
	pattern, what := p.Write, "write"
	if a == accessRead {
		pattern, what = p.Read, "read"
	}
	pattern = strings.NewReplacer("{username}", c.user, "{vhost}", c.vhost).Replace(pattern)
	if !c.s.checker.Allowed(pattern, key) {
		return errorf(wire.AccessRefused, "%s access to topic '%s' in exchange '%s' in vhost '%s' refused for user '%s'", what, key, exchange, c.vhost, c.user)
	}
	return nil
}
