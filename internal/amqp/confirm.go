package amqp

import (
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
)

// Publisher confirms: a channel in confirm mode numbers its publishes from
// 1; the confirmer waits, in that order, until each is durable in every
// queue it went to, then sends basic.ack (multiple when several are ready
// together) or basic.nack when a queue refused it or storage failed.

type confirmItem struct {
	seq   uint64
	rt    broker.Routed
	nack  bool
	start time.Time // when the publish arrived; zero: not timed
}

type confirmer struct {
	ch   *channel
	seq  uint64
	in   chan confirmItem
	quit chan struct{}
	done chan struct{}
}

func (ch *channel) confirmSelect(m *wire.ConfirmSelect) error {
	if ch.tx {
		return errorf(wire.PreconditionFailed, "cannot switch from tx to confirm mode")
	}
	if !ch.confirm {
		ch.confirm = true
		ch.mode.Store(modeConfirm)
		ch.confirms = &confirmer{ch: ch, in: make(chan confirmItem, 4096), quit: make(chan struct{}), done: make(chan struct{})}
		go ch.confirms.run()
	}
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.ConfirmSelectOk{})
	}
	return nil
}

func (cf *confirmer) next() uint64 { cf.seq++; return cf.seq }

// add queues a publish for confirmation; it blocks while 4096 are waiting,
// which holds the publisher back until the disk catches up.
func (cf *confirmer) add(it confirmItem) {
	select {
	case cf.in <- it:
	case <-cf.quit:
	}
}

func (cf *confirmer) stop() {
	select {
	case <-cf.quit:
	default:
		close(cf.quit)
	}
}

func (cf *confirmer) run() {
	defer close(cf.done)
	c, id := cf.ch.c, cf.ch.id
	var last uint64
	n := 0
	flush := func() {
		if n > 0 {
			c.sendMethod(id, &wire.BasicAck{DeliveryTag: last, Multiple: n > 1})
			n = 0
		}
	}
	for {
		var it confirmItem
		select {
		case it = <-cf.in:
		default:
			flush()
			select {
			case it = <-cf.in:
			case <-cf.quit:
				return
			}
		}
		ok := !it.nack
		if ok && !it.rt.Ready() {
			// About to wait for the disk: confirm what is durable first.
			flush()
		}
		if ok {
			ok = it.rt.Wait() == nil
		}
		select {
		case <-cf.quit:
			return
		default:
		}
		if ok {
			if !it.start.IsZero() {
				c.s.opts.Hooks.Confirmed(time.Since(it.start))
			}
			cf.ch.stats.Add(broker.StatConfirm, 1)
			last = it.seq
			n++
			continue
		}
		flush()
		c.sendMethod(id, &wire.BasicNack{DeliveryTag: it.seq})
	}
}
