package amqp

import (
	"errors"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// Transactions (tx.select / commit / rollback): publishes and acks are held
// on the channel until commit, which routes the publishes, waits until
// they are durable, applies the acks in order and answers commit-ok.
// Rollback drops them. A transaction holds at most txMaxBytes of bodies.

const txMaxBytes = 64 << 20

type txItem struct {
	msg       *message.Message
	mandatory bool

	ack      bool
	tag      uint64
	multiple bool
	kind     settleKind
	requeue  bool
}

func (ch *channel) txSelect() error {
	if ch.confirm {
		return errorf(wire.PreconditionFailed, "cannot switch from confirm to tx mode")
	}
	ch.tx = true
	ch.mode.Store(modeTx)
	ch.c.sendMethod(ch.id, &wire.TxSelectOk{})
	return nil
}

func (ch *channel) txCommit() error {
	if !ch.tx {
		return errorf(wire.PreconditionFailed, "channel is not transactional")
	}
	work := ch.txWork
	ch.txWork, ch.txBytes = nil, 0
	var routed []broker.Routed
	for _, it := range work {
		if it.ack {
			if err := ch.settleNow(it.tag, it.multiple, it.kind, it.requeue); err != nil {
				return err
			}
			continue
		}
		rt, err := ch.c.s.router.Publish(ch.c.vhost, it.msg)
		if err != nil {
			return err
		}
		if rt.Queues == 0 {
			ch.unroutable(it.mandatory)
		}
		if rt.Queues == 0 && it.mandatory {
			ch.sendReturn(wire.NoRoute, "NO_ROUTE", it.msg)
		}
		routed = append(routed, rt)
	}
	for _, rt := range routed {
		if err := rt.Wait(); err != nil && !errors.Is(err, queue.ErrRejected) {
			return errorf(wire.InternalError, "commit failed: %v", err)
		}
	}
	ch.c.sendMethod(ch.id, &wire.TxCommitOk{})
	return nil
}

func (ch *channel) txRollback() error {
	if !ch.tx {
		return errorf(wire.PreconditionFailed, "channel is not transactional")
	}
	ch.txWork, ch.txBytes = nil, 0
	ch.c.sendMethod(ch.id, &wire.TxRollbackOk{})
	return nil
}
