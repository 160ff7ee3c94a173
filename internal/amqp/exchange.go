package amqp

import (
	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/route"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// exchange.declare, exchange.delete, exchange.bind, exchange.unbind.

func (ch *channel) exchangeDeclare(m *wire.ExchangeDeclare) error {
	if !m.Passive {
		if err := ch.allowed(accessConfigure, "exchange", m.Exchange); err != nil {
			return err
		}
	}
	if !m.Passive && m.Exchange == "" {
		return errorf(wire.AccessRefused, "operation not permitted on the default exchange")
	}
	if !m.Passive {
		switch m.Type {
		case broker.ExchangeDirect, broker.ExchangeFanout, broker.ExchangeTopic, broker.ExchangeHeaders, broker.ExchangeDelayed:
		default:
			return errorf(wire.CommandInvalid, "unknown exchange type '%s'", m.Type)
		}
	}
	err := ch.c.s.router.DeclareExchange(ch.c.vhost, broker.ExchangeDecl{
		Name: m.Exchange, Type: m.Type, Passive: m.Passive, Durable: m.Durable,
		AutoDelete: m.AutoDelete, Internal: m.Internal, Arguments: m.Arguments,
	})
	if err != nil {
		return err
	}
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.ExchangeDeclareOk{})
	}
	return nil
}

func (ch *channel) exchangeDelete(m *wire.ExchangeDelete) error {
	if err := ch.allowed(accessConfigure, "exchange", m.Exchange); err != nil {
		return err
	}
	if err := ch.c.s.router.DeleteExchange(ch.c.vhost, m.Exchange, m.IfUnused); err != nil {
		// Deleting a missing exchange is not an error in RabbitMQ.
		if ae := fromBroker(err); ae.code != wire.NotFound {
			return err
		}
	}
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.ExchangeDeleteOk{})
	}
	return nil
}

func (ch *channel) exchangeBind(destination, source, key string, args fieldtable.Table, noWait, bind bool) error {
	if err := ch.allowed(accessWrite, "exchange", destination); err != nil {
		return err
	}
	if err := ch.allowed(accessRead, "exchange", source); err != nil {
		return err
	}
	if err := ch.topicAllowed(accessRead, source, key); err != nil {
		return err
	}
	b := broker.Binding{Vhost: ch.c.vhost, Source: source, DestinationKind: broker.DestExchange, Destination: destination, RoutingKey: key}
	var err error
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
	if !noWait {
		if bind {
			ch.c.sendMethod(ch.id, &wire.ExchangeBindOk{})
		} else {
			ch.c.sendMethod(ch.id, &wire.ExchangeUnbindOk{})
		}
	}
	return nil
}
