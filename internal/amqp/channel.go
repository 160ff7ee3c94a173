package amqp

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// channel is one AMQP channel of a connection. The reader goroutine calls
// handle and handleContent; queue dispatchers call into its consumers.
type channel struct {
	c  *conn
	id uint16

	// Reader-goroutine state: no lock needed.
	closing   bool // channel.close sent, waiting for close-ok
	lastQueue string
	content   *pendingContent
	confirm   bool
	tx        bool
	txWork    []txItem
	txBytes   int
	confirms  *confirmer
	reply     *replyConsumer // direct reply-to consumer, if any (set and read under mu)
	// stats count the channel's messages (and its connection's and
	// vhost's), for the management API's message_stats.
	stats *broker.MessageStats
	// mode mirrors confirm / tx for other goroutines (the management API).
	mode atomic.Uint32 // modeConfirm or modeTx once selected

	sendMu sync.Mutex // held across assigning a delivery tag and sending

	mu             sync.Mutex
	closed         bool
	deliveryTag    uint64
	unacked        map[uint64]unackedEntry
	consumers      map[string]*consumer
	prefetch       uint16 // per-consumer prefetch for new consumers (basic.qos global=false)
	globalPrefetch uint16 // channel-wide (global=true)
	globalUnacked  int
}

type unackedEntry struct {
	q      queue.Settler
	offset int64
	cons   *consumer // nil for basic.get
}

func newChannel(c *conn, id uint16) *channel {
	return &channel{c: c, id: id, stats: broker.NewMessageStats(c.stats), unacked: map[uint64]unackedEntry{}, consumers: map[string]*consumer{}}
}

// handle runs one method on the channel.
func (ch *channel) handle(m wire.Method) error {
	if ch.closing {
		// After sending channel.close, everything but close-ok is
		// discarded. A crossing channel.close (the client closed the
		// channel as the server did) is answered close-ok, and the
		// channel stays until the client's close-ok, which follows: the
		// client answers the server's close too. That is what RabbitMQ
		// does; forgetting the channel at the crossing close made that
		// close-ok a frame on an unknown channel (504, the connection
		// lost).
		switch m.(type) {
		case *wire.ChannelCloseOk:
			ch.c.removeChannel(ch.id)
		case *wire.ChannelClose:
			ch.c.sendMethod(ch.id, &wire.ChannelCloseOk{})
		}
		return nil
	}
	if ch.content != nil {
		return errorf(wire.UnexpectedFrame, "expected content header for class 60, got non content header frame instead")
	}
	switch m := m.(type) {
	case *wire.ChannelClose:
		ch.release()
		ch.c.removeChannel(ch.id)
		ch.c.sendMethod(ch.id, &wire.ChannelCloseOk{})
		return nil
	case *wire.ChannelCloseOk:
		return nil
	case *wire.ChannelFlow:
		// As RabbitMQ: a client may not pause deliveries with
		// channel.flow (prefetch is the way); active=false is a 540,
		// which closes the connection. Client test suites expect it.
		if !m.Active {
			return errorf(wire.NotImplemented, "active=false")
		}
		ch.c.sendMethod(ch.id, &wire.ChannelFlowOk{Active: true})
		return nil
	case *wire.ChannelFlowOk:
		return nil
	case *wire.AccessRequest:
		ch.c.sendMethod(ch.id, &wire.AccessRequestOk{Ticket: 1})
		return nil

	case *wire.ExchangeDeclare:
		return ch.exchangeDeclare(m)
	case *wire.ExchangeDelete:
		return ch.exchangeDelete(m)
	case *wire.ExchangeBind:
		return ch.exchangeBind(m.Destination, m.Source, m.RoutingKey, m.Arguments, m.NoWait, true)
	case *wire.ExchangeUnbind:
		return ch.exchangeBind(m.Destination, m.Source, m.RoutingKey, m.Arguments, m.NoWait, false)

	case *wire.QueueDeclare:
		return ch.queueDeclare(m)
	case *wire.QueueBind:
		return ch.queueBind(m.Queue, m.Exchange, m.RoutingKey, m.Arguments, m.NoWait, true)
	case *wire.QueueUnbind:
		return ch.queueBind(m.Queue, m.Exchange, m.RoutingKey, m.Arguments, false, false)
	case *wire.QueuePurge:
		return ch.queuePurge(m)
	case *wire.QueueDelete:
		return ch.queueDelete(m)

	case *wire.BasicQos:
		return ch.basicQos(m)
	case *wire.BasicConsume:
		return ch.basicConsume(m)
	case *wire.BasicCancel:
		return ch.basicCancel(m)
	case *wire.BasicPublish:
		return ch.basicPublish(m)
	case *wire.BasicGet:
		return ch.basicGet(m)
	case *wire.BasicAck:
		return ch.settle(m.DeliveryTag, m.Multiple, settleAck, false)
	case *wire.BasicReject:
		return ch.settle(m.DeliveryTag, false, settleReject, m.Requeue)
	case *wire.BasicNack:
		return ch.settle(m.DeliveryTag, m.Multiple, settleReject, m.Requeue)
	case *wire.BasicRecover:
		return ch.basicRecover(true, false)
	case *wire.BasicRecoverAsync:
		return ch.basicRecover(m.Requeue, true)

	case *wire.ConfirmSelect:
		return ch.confirmSelect(m)
	case *wire.TxSelect:
		return ch.txSelect()
	case *wire.TxCommit:
		return ch.txCommit()
	case *wire.TxRollback:
		return ch.txRollback()
	}
	return &amqpError{code: wire.CommandInvalid, text: fmt.Sprintf("COMMAND_INVALID - %s is not valid from a client", m.Name())}
}

// closeWith sends channel.close for a soft error and releases the
// channel's consumers and deliveries at once.
func (ch *channel) closeWith(e *amqpError) {
	ch.c.log.Debug("closing channel", "channel", ch.id, "code", e.code, "text", e.text)
	ch.release()
	ch.closing = true
	ch.content = nil
	ch.c.sendMethod(ch.id, &wire.ChannelClose{ReplyCode: e.code, ReplyText: truncate(e.text), ClassId: e.classID, MethodId: e.methodID})
}

// release cancels the channel's consumers and requeues its unacked
// deliveries (as a closing channel does in AMQP).
func (ch *channel) release() {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closed = true
	ch.releaseReply()
	consumers := ch.consumers
	ch.consumers = map[string]*consumer{}
	unacked := ch.unacked
	ch.unacked = map[uint64]unackedEntry{}
	ch.mu.Unlock()
	for _, cs := range consumers {
		cs.q.RemoveConsumer(cs.id)
		ch.c.s.router.ConsumerGone(ch.c.vhost, cs.qname)
	}
	requeueAll(unacked)
	if ch.confirms != nil {
		ch.confirms.stop()
	}
}

// requeueAll returns deliveries to their queues, in tag order per queue.
func requeueAll(unacked map[uint64]unackedEntry) {
	byQueue := map[queue.Settler][]int64{}
	for _, e := range unacked {
		if e.q == nil {
			continue // a stream delivery: nothing to give back
		}
		byQueue[e.q] = append(byQueue[e.q], e.offset)
	}
	for q, offs := range byQueue {
		q.Requeue(offs...)
	}
}

// kickQueues wakes the queues this channel consumes from (credit is back).
func (ch *channel) kickQueues() {
	var room [4]queue.Handle // most channels have a consumer or two: no allocation
	ch.mu.Lock()
	qs := room[:0]
	for _, cs := range ch.consumers {
		qs = append(qs, cs.q)
	}
	ch.mu.Unlock()
	for _, q := range qs {
		q.Kick() // outside ch.mu: a stream's Kick takes its own lock
	}
}

// queueName resolves an empty queue name to the channel's last declared
// queue, as AMQP allows.
func (ch *channel) queueName(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if ch.lastQueue == "" {
		return "", errorf(wire.NotFound, "no previously declared queue")
	}
	return ch.lastQueue, nil
}

// allowed checks the user's permission on a resource.
func (ch *channel) allowed(a accessKind, kind, name string) error {
	c := ch.c
	var pattern string
	switch a {
	case accessConfigure:
		pattern = c.perm.Configure
	case accessWrite:
		pattern = c.perm.Write
	case accessRead:
		pattern = c.perm.Read
	}
	res := name
	if kind == "exchange" && name == "" {
		res = "amq.default"
	}
	if !c.s.checker.Allowed(pattern, res) || ch.kafkaDenied(a, kind, name) {
		return errorf(wire.AccessRefused, "access to %s '%s' in vhost '%s' refused for user '%s'", kind, name, c.vhost, c.user)
	}
	return nil
}

// kafkaDenied reports whether a Kafka DENY ACL on a topic refuses this
// access to one of the topic's AMQP views in the Kafka vhost: read from
// a partition (or topic) stream queue is Kafka's READ on the topic,
// write to its super stream exchange or stream queue is WRITE. The one
// permission model (docs/security.md, "Authorization"): what a DENY
// takes away over Kafka is not given back over AMQP.
func (ch *channel) kafkaDenied(a accessKind, kind, name string) bool {
	c := ch.c
	az := c.s.opts.Authorizer
	if az == nil || c.vhost != az.KafkaVhost() || (a != accessRead && a != accessWrite) {
		return false
	}
	topic, ok := c.s.router.TopicOf(c.vhost, kind, name)
	if !ok {
		return false
	}
	op := auth.OpRead
	if a == accessWrite {
		op = auth.OpWrite
	}
	host := c.nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return az.Denied(c.user, host, auth.ResourceTopic, topic, op)
}

type accessKind int

const (
	accessConfigure accessKind = iota
	accessWrite
	accessRead
)
