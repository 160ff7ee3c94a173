package amqp

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// The basic class: publish (with its content frames), consume, cancel,
// get, ack / nack / reject, qos and recover.

type pendingContent struct {
	pub    *wire.BasicPublish
	props  wire.Properties
	size   uint64
	body   []byte
	header bool
	start  time.Time // when basic.publish arrived
}

func (ch *channel) basicPublish(m *wire.BasicPublish) error {
	if err := ch.allowed(accessWrite, "exchange", m.Exchange); err != nil {
		return err
	}
	if err := ch.topicAllowed(accessWrite, m.Exchange, m.RoutingKey); err != nil {
		return err
	}
	if m.Immediate {
		return errorf(wire.NotImplemented, "immediate=true")
	}
	ch.content = &pendingContent{pub: m, start: time.Now()}
	return nil
}

// handleContent takes a content header or body frame of a publish.
func (ch *channel) handleContent(f wire.Frame) error {
	if ch.closing {
		return nil // discarded until close-ok
	}
	pc := ch.content
	if pc == nil {
		return errorf(wire.UnexpectedFrame, "content frame on channel %d without a publish", ch.id)
	}
	if f.Type == wire.FrameHeader {
		if pc.header {
			return errorf(wire.UnexpectedFrame, "second content header on channel %d", ch.id)
		}
		classID, size, props, err := wire.DecodeContentHeader(f.Payload)
		if err != nil {
			return errorf(wire.FrameError, "malformed content header: %v", err)
		}
		if classID != wire.ClassBasic {
			return errorf(wire.FrameError, "content header for class %d", classID)
		}
		if size > uint64(ch.c.s.opts.MaxMessageBytes) {
			// Close the channel; the body frames that follow are dropped.
			ch.content = nil
			e := errorf(wire.PreconditionFailed, "message size %d is larger than configured max size %d", size, ch.c.s.opts.MaxMessageBytes)
			e.classID, e.methodID = 60, 40
			ch.closeWith(e)
			return nil
		}
		pc.header, pc.size, pc.props = true, size, props
		pc.body = make([]byte, 0, min(size, 1<<20))
	} else {
		if !pc.header {
			return errorf(wire.UnexpectedFrame, "content body on channel %d before its header", ch.id)
		}
		if uint64(len(pc.body))+uint64(len(f.Payload)) > pc.size {
			return errorf(wire.FrameError, "content body larger than the %d bytes announced", pc.size)
		}
		pc.body = append(pc.body, f.Payload...)
	}
	if uint64(len(pc.body)) < pc.size {
		return nil
	}
	ch.content = nil
	err := ch.publish(pc)
	ch.c.s.opts.Hooks.MethodDone("basic.publish", time.Since(pc.start))
	if err == nil {
		return nil
	}
	ae := fromBroker(err)
	if ae.classID == 0 {
		ae.classID, ae.methodID = 60, 40
	}
	if ae.hard() {
		return ae
	}
	ch.closeWith(ae)
	return nil
}

func toMessage(exchange, key string, p *wire.Properties, body []byte) *message.Message {
	return &message.Message{
		Exchange: exchange, RoutingKey: key, Body: body,
		Properties: message.Properties{
			Present: p.Flags, ContentType: p.ContentType, ContentEncoding: p.ContentEncoding,
			Headers: p.Headers, DeliveryMode: p.DeliveryMode, Priority: p.Priority,
			CorrelationID: p.CorrelationID, ReplyTo: p.ReplyTo, Expiration: p.Expiration,
			MessageID: p.MessageID, Timestamp: p.Timestamp.Unix(), Type: p.Type,
			UserID: p.UserID, AppID: p.AppID, ClusterID: p.ClusterID,
		},
	}
}

func fromMessage(m *message.Message) wire.Properties {
	p := &m.Properties
	wp := wire.Properties{
		Flags: p.Present, ContentType: p.ContentType, ContentEncoding: p.ContentEncoding,
		Headers: p.Headers, DeliveryMode: p.DeliveryMode, Priority: p.Priority,
		CorrelationID: p.CorrelationID, ReplyTo: p.ReplyTo, Expiration: p.Expiration,
		MessageID: p.MessageID, Type: p.Type, UserID: p.UserID, AppID: p.AppID, ClusterID: p.ClusterID,
	}
	if p.Present&message.PropTimestamp != 0 {
		wp.Timestamp = time.Unix(p.Timestamp, 0).UTC()
	}
	return wp
}

// publish routes a complete message.
func (ch *channel) publish(pc *pendingContent) error {
	if pc.props.Flags&wire.FlagUserID != 0 && pc.props.UserID != ch.c.user {
		return errorf(wire.PreconditionFailed, "user_id property set to '%s' but authenticated user was '%s'", pc.props.UserID, ch.c.user)
	}
	m := toMessage(pc.pub.Exchange, pc.pub.RoutingKey, &pc.props, pc.body)
	ch.mu.Lock()
	err := ch.rewriteReplyTo(&m.Properties)
	ch.mu.Unlock()
	if err != nil {
		return err
	}
	ch.stats.Add(broker.StatPublish, 1)
	if m.Exchange == "" && strings.HasPrefix(m.RoutingKey, replyToQueue+".") {
		delivered := ch.c.s.deliverReply(m)
		if !delivered {
			ch.unroutable(pc.pub.Mandatory)
		}
		if !delivered && pc.pub.Mandatory {
			ch.sendReturn(wire.NoRoute, "NO_ROUTE", m)
		}
		if ch.confirm {
			ch.confirms.add(confirmItem{seq: ch.confirms.next()})
		}
		return nil
	}
	if ch.tx {
		ch.txBytes += len(pc.body)
		if ch.txBytes > txMaxBytes {
			return errorf(wire.PreconditionFailed, "transaction holds more than %d bytes of messages", txMaxBytes)
		}
		ch.txWork = append(ch.txWork, txItem{msg: m, mandatory: pc.pub.Mandatory})
		return nil
	}
	var seq uint64
	if ch.confirm {
		seq = ch.confirms.next()
	}
	rt, err := ch.c.s.router.Publish(ch.c.vhost, m)
	if err != nil {
		if ch.confirm {
			ch.confirms.add(confirmItem{seq: seq, nack: true})
		}
		return err
	}
	if f := rt.Flow(); f != nil {
		ch.c.flow.credit = f // the read loop waits before the next publish
	}
	if rt.Queues == 0 {
		ch.unroutable(pc.pub.Mandatory)
	}
	if rt.Queues == 0 && pc.pub.Mandatory {
		ch.sendReturn(wire.NoRoute, "NO_ROUTE", m)
	}
	if ch.confirm {
		ch.confirms.add(confirmItem{seq: seq, rt: rt, start: pc.start})
	}
	return nil
}

// unroutable counts a message no queue took: returned if it was
// mandatory, else dropped.
func (ch *channel) unroutable(mandatory bool) {
	if mandatory {
		ch.stats.Add(broker.StatReturnUnroutable, 1)
	} else {
		ch.stats.Add(broker.StatDropUnroutable, 1)
	}
}

// delivered counts a delivery to a consumer (get false) or basic.get.
func (ch *channel) delivered(get, noAck, redelivered bool) {
	k := broker.StatDeliver
	switch {
	case get && noAck:
		k = broker.StatGetNoAck
	case get:
		k = broker.StatGet
	case noAck:
		k = broker.StatDeliverNoAck
	}
	ch.stats.Add(k, 1)
	if redelivered {
		ch.stats.Add(broker.StatRedeliver, 1)
	}
}

func (ch *channel) sendReturn(code uint16, text string, m *message.Message) {
	props := fromMessage(m)
	b := wire.AppendMethodFrame(nil, ch.id, &wire.BasicReturn{ReplyCode: code, ReplyText: text, Exchange: m.Exchange, RoutingKey: m.RoutingKey})
	b = wire.AppendHeaderFrame(b, ch.id, wire.ClassBasic, uint64(len(m.Body)), &props)
	b = wire.AppendBodyFrames(b, ch.id, m.Body, ch.c.frameMax)
	ch.c.send(b)
}

// consumer is a basic.consume subscription; it implements queue.Consumer.
type consumer struct {
	ch       *channel
	tag      string
	qname    string
	q        queue.Handle
	id       uint64
	noAck    bool
	prefetch uint16
	stream   bool // reads a stream queue (stream.go)

	// guarded by ch.mu
	unacked   int
	ready     bool
	cancelled bool
}

// Reserve is called with the queue's lock held.
func (cs *consumer) Reserve() bool {
	ch := cs.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed || cs.cancelled || !cs.ready {
		return false
	}
	if cs.noAck {
		return true
	}
	if cs.prefetch > 0 && cs.unacked >= int(cs.prefetch) {
		return false
	}
	if ch.globalPrefetch > 0 && ch.globalUnacked >= int(ch.globalPrefetch) {
		return false
	}
	cs.unacked++
	ch.globalUnacked++
	return true
}

// Deliver sends basic.deliver with the message.
func (cs *consumer) Deliver(d queue.Delivery) {
	ch := cs.ch
	ch.sendMu.Lock()
	defer ch.sendMu.Unlock()
	ch.mu.Lock()
	if ch.closed || cs.cancelled {
		if !cs.noAck {
			cs.unacked--
			ch.globalUnacked--
		}
		ch.mu.Unlock()
		if !cs.noAck && d.Queue != nil {
			d.Queue.Requeue(d.Offset)
		}
		return
	}
	if cs.stream {
		withStreamOffset(&d)
	}
	ch.deliveryTag++
	tag := ch.deliveryTag
	if !cs.noAck {
		ch.unacked[tag] = unackedEntry{q: d.Queue, offset: d.Offset, cons: cs}
	}
	ch.mu.Unlock()
	ch.sendDelivery(&wire.BasicDeliver{
		ConsumerTag: cs.tag, DeliveryTag: tag, Redelivered: d.Redelivered,
		Exchange: d.Message.Exchange, RoutingKey: d.Message.RoutingKey,
	}, &d)
	ch.delivered(false, cs.noAck, d.Redelivered)
}

// sendDelivery encodes a delivery (basic.deliver or basic.get-ok, its
// header and body) straight into the connection's output.
func (ch *channel) sendDelivery(m wire.Method, d *queue.Delivery) bool {
	b, ok := ch.c.beginOut()
	if !ok {
		return false
	}
	ch.c.endOut(ch.appendDelivery(b, m, d))
	return true
}

func (ch *channel) appendDelivery(b []byte, m wire.Method, d *queue.Delivery) []byte {
	props := fromMessage(&d.Message)
	if d.DeliveryCount > 0 {
		h := make(map[string]any, len(props.Headers)+1)
		for k, v := range props.Headers {
			h[k] = v
		}
		h["x-delivery-count"] = int64(d.DeliveryCount)
		props.Headers = h
		props.Flags |= wire.FlagHeaders
	}
	b = wire.AppendMethodFrame(b, ch.id, m)
	b = wire.AppendHeaderFrame(b, ch.id, wire.ClassBasic, uint64(len(d.Message.Body)), &props)
	return wire.AppendBodyFrames(b, ch.id, d.Message.Body, ch.c.frameMax)
}

// Cancelled: the queue was deleted; tell the client (consumer_cancel_notify).
func (cs *consumer) Cancelled() {
	ch := cs.ch
	ch.mu.Lock()
	if ch.closed || cs.cancelled {
		ch.mu.Unlock()
		return
	}
	cs.cancelled = true
	delete(ch.consumers, cs.tag)
	ch.mu.Unlock()
	ch.c.sendMethod(ch.id, &wire.BasicCancel{ConsumerTag: cs.tag, NoWait: true})
}

func randomTag(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func (ch *channel) basicConsume(m *wire.BasicConsume) error {
	if m.Queue == replyToQueue {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		return ch.replyConsume(m)
	}
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	if err := ch.allowed(accessRead, "queue", name); err != nil {
		return err
	}
	q, err := ch.c.s.router.Queue(ch.c.vhost, name, ch.c.id)
	if err != nil {
		return err
	}
	if s, ok := q.(*queue.Stream); ok {
		return ch.streamConsume(m, name, s)
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = randomTag("amq.ctag-")
	}
	var prio int32
	if v, ok := m.Arguments["x-priority"]; ok {
		n, ok := broker.IntArg(v)
		if !ok {
			return errorf(wire.PreconditionFailed, "invalid arg 'x-priority' for consumer: %v", v)
		}
		prio = int32(n)
	}
	ch.mu.Lock()
	if _, dup := ch.consumers[tag]; dup {
		ch.mu.Unlock()
		return errorf(wire.NotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	cs := &consumer{ch: ch, tag: tag, qname: name, q: q, noAck: m.NoAck, prefetch: ch.prefetch}
	ch.consumers[tag] = cs
	ch.mu.Unlock()
	id, err := q.AddConsumer(cs, queue.ConsumerOptions{NoAck: m.NoAck, Exclusive: m.Exclusive, Priority: prio})
	if err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		if errors.Is(err, queue.ErrExclusiveConsumer) {
			return errorf(wire.AccessRefused, "queue '%s' in vhost '%s' in exclusive use", name, ch.c.vhost)
		}
		if errors.Is(err, queue.ErrDeleted) {
			return errorf(wire.NotFound, "no queue '%s' in vhost '%s'", name, ch.c.vhost)
		}
		return err
	}
	cs.id = id
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.BasicConsumeOk{ConsumerTag: tag})
	}
	ch.mu.Lock()
	cs.ready = true
	ch.mu.Unlock()
	q.Kick()
	return nil
}

func (ch *channel) basicCancel(m *wire.BasicCancel) error {
	ch.mu.Lock()
	if ch.reply != nil && ch.reply.tag == m.ConsumerTag {
		ch.releaseReply()
	}
	cs, ok := ch.consumers[m.ConsumerTag]
	if ok {
		cs.cancelled = true
		delete(ch.consumers, m.ConsumerTag)
	}
	ch.mu.Unlock()
	if ok {
		cs.q.RemoveConsumer(cs.id)
		ch.c.s.router.ConsumerGone(ch.c.vhost, cs.qname)
	}
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.BasicCancelOk{ConsumerTag: m.ConsumerTag})
	}
	return nil
}

func (ch *channel) basicGet(m *wire.BasicGet) error {
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	if err := ch.allowed(accessRead, "queue", name); err != nil {
		return err
	}
	q, err := ch.c.s.router.Queue(ch.c.vhost, name, ch.c.id)
	if err != nil {
		return err
	}
	if _, ok := q.(*queue.Stream); ok {
		return errorf(wire.NotImplemented, "basic.get not supported by stream queues queue '%s' in vhost '%s'", name, ch.c.vhost)
	}
	ch.sendMu.Lock()
	defer ch.sendMu.Unlock()
	d, ok := q.Get(m.NoAck)
	if !ok {
		ch.stats.Add(broker.StatGetEmpty, 1)
		ch.c.sendMethod(ch.id, &wire.BasicGetEmpty{})
		return nil
	}
	ch.mu.Lock()
	ch.deliveryTag++
	tag := ch.deliveryTag
	if !m.NoAck {
		ch.unacked[tag] = unackedEntry{q: d.Queue, offset: d.Offset}
	}
	ch.mu.Unlock()
	ready, _, _ := q.Counts()
	ch.sendDelivery(&wire.BasicGetOk{
		DeliveryTag: tag, Redelivered: d.Redelivered, Exchange: d.Message.Exchange,
		RoutingKey: d.Message.RoutingKey, MessageCount: uint32(ready),
	}, &d)
	ch.delivered(true, m.NoAck, d.Redelivered)
	return nil
}

type settleKind int

const (
	settleAck settleKind = iota
	settleReject
)

// settle acks, rejects or requeues deliveries by tag.
func (ch *channel) settle(tag uint64, multiple bool, kind settleKind, requeue bool) error {
	if ch.tx {
		ch.txWork = append(ch.txWork, txItem{ack: true, tag: tag, multiple: multiple, kind: kind, requeue: requeue})
		return nil
	}
	return ch.settleNow(tag, multiple, kind, requeue)
}

func (ch *channel) settleNow(tag uint64, multiple bool, kind settleKind, requeue bool) error {
	ch.mu.Lock()
	if !multiple {
		return ch.settleOne(tag, kind, requeue)
	}
	var tags []uint64
	for t := range ch.unacked {
		if tag == 0 || t <= tag {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 && tag != 0 && tag > ch.deliveryTag {
		ch.mu.Unlock()
		return errorf(wire.PreconditionFailed, "unknown delivery tag %d", tag)
	}
	slices.Sort(tags)
	if kind == settleReject {
		if e, ok := streamEntry(ch.unacked, tags); ok {
			ch.mu.Unlock()
			return ch.streamRejectError(e)
		}
	}
	if kind == settleAck {
		ch.stats.Add(broker.StatAck, int64(len(tags)))
	}
	byQueue := map[queue.Settler][]int64{}
	var order []queue.Settler
	for _, t := range tags {
		e := ch.unacked[t]
		ch.dropLocked(t, e)
		if e.q == nil {
			continue // a stream delivery: the ack only returned credit
		}
		if _, seen := byQueue[e.q]; !seen {
			order = append(order, e.q)
		}
		byQueue[e.q] = append(byQueue[e.q], e.offset)
	}
	ch.mu.Unlock()
	for _, q := range order {
		settleOffsets(q, kind, requeue, byQueue[q]...)
	}
	ch.kickQueues()
	return nil
}

// settleOne is settleNow for a single tag, the common case, without the
// grouping by queue. Called with ch.mu held; it unlocks it.
func (ch *channel) settleOne(tag uint64, kind settleKind, requeue bool) error {
	e, ok := ch.unacked[tag]
	if !ok {
		ch.mu.Unlock()
		return errorf(wire.PreconditionFailed, "unknown delivery tag %d", tag)
	}
	if kind == settleReject && e.isStream() {
		ch.mu.Unlock()
		return ch.streamRejectError(e)
	}
	ch.dropLocked(tag, e)
	ch.mu.Unlock()
	if kind == settleAck {
		ch.stats.Add(broker.StatAck, 1)
	}
	if e.q != nil { // nil for a stream delivery: the ack only returned credit
		settleOffsets(e.q, kind, requeue, e.offset)
	}
	ch.kickQueues()
	return nil
}

// dropLocked forgets delivery tag, whose entry is e, and gives back the
// prefetch credit it held.
func (ch *channel) dropLocked(tag uint64, e unackedEntry) {
	delete(ch.unacked, tag)
	ch.releaseCreditLocked(e)
}

// releaseCreditLocked gives back the prefetch credit delivery e held.
func (ch *channel) releaseCreditLocked(e unackedEntry) {
	if e.cons != nil {
		e.cons.unacked--
		ch.globalUnacked--
	}
}

func (ch *channel) streamRejectError(e unackedEntry) error {
	return errorf(wire.NotImplemented, "basic.nack and basic.reject not supported by stream queues queue '%s' in vhost '%s'", e.cons.qname, ch.c.vhost)
}

// settleOffsets acks, requeues or rejects offsets of q.
func settleOffsets(q queue.Settler, kind settleKind, requeue bool, offs ...int64) {
	switch {
	case kind == settleAck:
		q.Ack(offs...)
	case requeue:
		q.Requeue(offs...)
	default:
		q.Reject(offs...)
	}
}

func (ch *channel) basicQos(m *wire.BasicQos) error {
	if m.PrefetchSize != 0 {
		return errorf(wire.NotImplemented, "prefetch_size!=0 (%d)", m.PrefetchSize)
	}
	ch.mu.Lock()
	if m.Global {
		ch.globalPrefetch = m.PrefetchCount
	} else {
		ch.prefetch = m.PrefetchCount
	}
	ch.mu.Unlock()
	ch.c.sendMethod(ch.id, &wire.BasicQosOk{})
	ch.kickQueues()
	return nil
}

func (ch *channel) basicRecover(requeue, async bool) error {
	if !requeue {
		return errorf(wire.NotImplemented, "requeue=false")
	}
	ch.mu.Lock()
	unacked := ch.unacked
	ch.unacked = map[uint64]unackedEntry{}
	for _, e := range unacked {
		ch.releaseCreditLocked(e)
	}
	ch.mu.Unlock()
	requeueAll(unacked)
	if !async {
		ch.c.sendMethod(ch.id, &wire.BasicRecoverOk{})
	}
	ch.kickQueues()
	return nil
}
