package amqp

import (
	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/route"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// queue.declare, queue.bind, queue.unbind, queue.purge, queue.delete.

func (ch *channel) queueDeclare(m *wire.QueueDeclare) error {
	if !m.Passive || m.Queue != "" {
		if err := ch.allowed(accessConfigure, "queue", m.Queue); err != nil && !m.Passive {
			return err
		}
	}
	name := m.Queue
	if m.Passive && name == "" {
		var err error
		if name, err = ch.queueName(""); err != nil {
			return err
		}
	}
	info, err := ch.c.s.router.DeclareQueue(ch.c.vhost, broker.QueueDecl{
		Name: name, Passive: m.Passive, Durable: m.Durable, Exclusive: m.Exclusive,
		AutoDelete: m.AutoDelete, Arguments: m.Arguments, Owner: ch.c.id,
	})
	if err != nil {
		return err
	}
	ch.lastQueue = info.Name
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.QueueDeclareOk{Queue: info.Name, MessageCount: uint32(info.Messages), ConsumerCount: uint32(info.Consumers)})
	}
	return nil
}

func (ch *channel) queueBind(qname, exchange, key string, args fieldtable.Table, noWait, bind bool) error {
	qname, err := ch.queueName(qname)
	if err != nil {
		return err
	}
	if err := ch.allowed(accessWrite, "queue", qname); err != nil {
		return err
	}
	if err := ch.allowed(accessRead, "exchange", exchange); err != nil {
		return err
	}
	if err := ch.topicAllowed(accessRead, exchange, key); err != nil {
		return err
	}
	b := broker.Binding{Vhost: ch.c.vhost, Source: exchange, DestinationKind: broker.DestQueue, Destination: qname, RoutingKey: key}
	if bind {
		if err = route.ValidateHeadersArgs(args); err != nil {
			return errorf(wire.PreconditionFailed, "%v", err)
		}
		err = ch.c.s.router.Bind(b, args, ch.c.id)
	} else {
		err = ch.c.s.router.Unbind(b, args, ch.c.id)
	}
	if err != nil {
		return err
	}
	switch {
	case bind && !noWait:
		ch.c.sendMethod(ch.id, &wire.QueueBindOk{})
	case !bind:
		ch.c.sendMethod(ch.id, &wire.QueueUnbindOk{})
	}
	return nil
}

func (ch *channel) queuePurge(m *wire.QueuePurge) error {
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	if err := ch.allowed(accessRead, "queue", name); err != nil {
		return err
	}
	n, err := ch.c.s.router.PurgeQueue(ch.c.vhost, name, ch.c.id)
	if err != nil {
		return err
	}
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.QueuePurgeOk{MessageCount: uint32(n)})
	}
	return nil
}

func (ch *channel) queueDelete(m *wire.QueueDelete) error {
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	if err := ch.allowed(accessConfigure, "queue", name); err != nil {
		return err
	}
	n, err := ch.c.s.router.DeleteQueue(ch.c.vhost, name, ch.c.id, m.IfUnused, m.IfEmpty)
	if err != nil {
		// Deleting a missing queue is not an error in RabbitMQ.
		if ae := fromBroker(err); ae.code != wire.NotFound {
			return err
		}
	}
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.QueueDeleteOk{MessageCount: uint32(n)})
	}
	return nil
}
