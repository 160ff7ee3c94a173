package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluice-mq/sluice/internal/amqp/benchclient"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// The two clients sluice bench amqp can load a broker with: the lean
// benchclient (pipelined, one write per batch) and amqp091-go (one write
// per publish and per ack). Both sit behind amqpPubConn and amqpConsConn;
// counting, pacing, the confirm window, draining and the summary are
// shared.
const (
	clientLean     = "lean"
	clientAMQP091  = "amqp091-go"
	benchFlushSize = 64 << 10 // the lean publisher writes once this much is buffered
)

// amqpPubConn is one publishing connection and channel.
type amqpPubConn interface {
	// publish sends one message; the lean client only appends it to its
	// write buffer. body may be reused once it returns.
	publish(body []byte) error
	// flush writes what publish buffered (a no-op for amqp091-go).
	flush() error
	// buffered is the number of bytes publish buffered and flush has not
	// written.
	buffered() int
	// abort gives up on the channel when confirms never came.
	abort() error
	close()
}

// amqpConsConn is one consuming connection and channel.
type amqpConsConn interface {
	// start subscribes to the queue with manual acknowledgements.
	start(queue, tag string) error
	// run hands each delivery to recv, which returns whether it was
	// counted (false once ctx ended); acknowledges as pol says; and
	// acknowledges what pol holds pending when ctx ends. It returns
	// the error that ended it early, or nil when ctx did.
	run(ctx context.Context, pol *ackPolicy, recv func(redelivered bool, body []byte)) error
	close()
}

// ackPolicy decides a consumer's acks as --multi-ack-every says: each
// delivery singly (every 1), or every Nth with multiple=true.
type ackPolicy struct {
	every, n uint64
	pending  uint64 // last delivery tag not yet acknowledged
}

// next returns the ack to send after delivery tag, if any (ack 0: none).
func (a *ackPolicy) next(tag uint64) (ack uint64, multiple bool) {
	a.n++
	switch {
	case a.every == 1:
		return tag, false
	case a.n%a.every == 0:
		a.pending = 0
		return tag, true
	}
	a.pending = tag
	return 0, false
}

// rest returns the pending tag to acknowledge with multiple=true at the
// end (0: none) and forgets it.
func (a *ackPolicy) rest() uint64 {
	t := a.pending
	a.pending = 0
	return t
}

// confirmSlot holds the publish time of an unconfirmed message and its
// delivery tag (0 once settled), so that a confirm for a tag no longer or
// not yet outstanding is told apart.
type confirmSlot struct {
	tag atomic.Uint64
	at  atomic.Int64 // unix nanoseconds
}

// confirmTag settles one delivery tag: records its latency, counts it and
// frees its window slot. A tag not outstanding is ignored.
func (b *amqpBench) confirmTag(p *amqpPublisher, tag uint64, ack bool) {
	s := &p.slots[tag%uint64(len(p.slots))]
	if !s.tag.CompareAndSwap(tag, 0) {
		return
	}
	now := time.Now().UnixNano()
	if ack {
		p.lat.record(time.Duration(now - s.at.Load()))
		b.confirmed.Add(1)
	} else {
		b.nacked.Add(1)
	}
	b.lastConfirm.Store(now)
	p.settled.Add(1)
	<-p.window
}

// confirmRange settles what one basic.ack or basic.nack covers. Only the
// last window's worth of tags up to tag can be outstanding: tag was
// published, so every tag a window or more before it had been settled.
// It runs in the one goroutine reading the publisher's confirms.
func (b *amqpBench) confirmRange(p *amqpPublisher, tag uint64, multiple, ack bool) {
	if !multiple {
		b.confirmTag(p, tag, ack)
		return
	}
	from, w := p.low, uint64(len(p.slots))
	if tag >= w {
		from = max(from, tag-w+1)
	}
	for t := from; t <= tag; t++ {
		b.confirmTag(p, t, ack)
	}
	p.low = max(p.low, tag+1)
}

// --- lean ---

func (b *amqpBench) dialLean(name string) (*benchclient.Conn, error) {
	c, err := benchclient.DialConfig(b.opts.url, benchclient.Config{Name: name})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", b.endpoint, err)
	}
	return c, nil
}

// blockedNotice reports connection.blocked, which stalls publishing.
func blockedNotice(stderr io.Writer, name string) func(bool, string) {
	return func(blocked bool, reason string) {
		if blocked {
			fmt.Fprintf(stderr, "bench: %s blocked by the broker: %s\n", name, reason)
		} else {
			fmt.Fprintf(stderr, "bench: %s unblocked\n", name)
		}
	}
}

func (b *amqpBench) declareLean() (messages, purged int, err error) {
	o := b.opts
	c, err := b.dialLean("sluice-bench-setup")
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	n, err := c.QueueDeclare(o.queue, true, fieldtable.Table{"x-queue-type": o.queueType})
	if err != nil {
		return 0, 0, fmt.Errorf("declare queue %s: %w", o.queue, err)
	}
	if o.purgeFirst {
		p, err := c.QueuePurge(o.queue)
		if err != nil {
			return 0, 0, fmt.Errorf("purge queue %s: %w", o.queue, err)
		}
		return int(n), int(p), nil
	}
	return int(n), 0, c.Close()
}

type leanPub struct {
	c          *benchclient.Conn
	key        string
	persistent bool
	closing    atomic.Bool
}

func (p *leanPub) publish(body []byte) error { return p.c.Publish("", p.key, p.persistent, body) }
func (p *leanPub) flush() error              { return p.c.Flush() }
func (p *leanPub) buffered() int             { return p.c.Buffered() }
func (p *leanPub) abort() error              { p.closing.Store(true); return p.c.Close() }
func (p *leanPub) close()                    { p.closing.Store(true); p.c.Close() }

// newLeanPublisher connects a publisher and starts the goroutine that
// reads its confirms (and any error from the broker).
func (b *amqpBench) newLeanPublisher(p *amqpPublisher, name string, stderr io.Writer) error {
	c, err := b.dialLean(name)
	if err != nil {
		return err
	}
	if b.opts.confirm {
		if err := c.ConfirmSelect(); err != nil {
			c.Close()
			return fmt.Errorf("confirm.select: %w", err)
		}
	}
	lp := &leanPub{c: c, key: b.opts.queue, persistent: b.opts.persistent}
	p.pub = lp
	h := benchclient.Handler{Blocked: blockedNotice(stderr, name)}
	if b.opts.confirm {
		h.Confirm = func(tag uint64, multiple, ack bool) { b.confirmRange(p, tag, multiple, ack) }
	}
	go func() {
		err := c.ReadLoop(h)
		if !lp.closing.Load() {
			b.setErr(&b.publishErr, err)
		}
		if b.opts.confirm {
			close(p.confirmed)
		}
	}()
	return nil
}

type leanCons struct {
	c    *benchclient.Conn
	name string
	b    *amqpBench
	out  io.Writer
}

func (b *amqpBench) newLeanConsumer(name string, stderr io.Writer) (amqpConsConn, error) {
	c, err := b.dialLean(name)
	if err != nil {
		return nil, err
	}
	if err := c.Qos(uint16(b.opts.prefetch)); err != nil {
		c.Close()
		return nil, fmt.Errorf("consume from %s: %w", b.opts.queue, err)
	}
	return &leanCons{c: c, name: name, b: b, out: stderr}, nil
}

func (lc *leanCons) start(queue, tag string) error {
	if err := lc.c.Consume(queue, tag); err != nil {
		return fmt.Errorf("consume from %s: %w", queue, err)
	}
	return nil
}

func (lc *leanCons) close() { lc.c.Close() }

// run reads in this goroutine: deliveries are counted and acked from the
// read loop itself, and the acks flushed whenever it is about to wait for
// more input. mu orders the read loop's acks against the final one sent
// when ctx ends, so that a multiple ack never goes out after a later one.
func (lc *leanCons) run(ctx context.Context, pol *ackPolicy, recv func(bool, []byte)) error {
	var mu sync.Mutex
	stopped := false
	loopDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-loopDone:
			return
		}
		mu.Lock()
		stopped = true
		if t := pol.rest(); t > 0 {
			lc.c.Ack(t, true)
		}
		mu.Unlock()
		lc.c.Flush()
		lc.c.Close()
	}()
	err := lc.c.ReadLoop(benchclient.Handler{
		FlushBeforeRead: true,
		Blocked:         blockedNotice(lc.out, lc.name),
		Deliver: func(tag uint64, redelivered bool, body []byte) {
			mu.Lock()
			defer mu.Unlock()
			if stopped {
				return
			}
			recv(redelivered, body)
			if ack, multiple := pol.next(tag); ack > 0 {
				lc.c.Ack(ack, multiple)
			}
		},
	})
	close(loopDone)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("consuming ended: %w", err)
}

// --- amqp091-go ---

// dial091 opens a named connection; a connection the broker blocks (a
// RabbitMQ memory or disk alarm) is reported, as it stalls publishing.
func (b *amqpBench) dial091(name string, stderr io.Writer) (*amqp.Connection, error) {
	cfg := amqp.Config{
		Dial:       amqp.DefaultDial(5 * time.Second),
		Locale:     "en_US",
		Properties: amqp.Table{"connection_name": name},
	}
	if b.opts.tlsCA != "" {
		tc, err := tlsClientConfig(b.opts.tlsCA)
		if err != nil {
			return nil, err
		}
		cfg.TLSClientConfig = tc
	}
	conn, err := amqp.DialConfig(b.opts.url, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", b.endpoint, err)
	}
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	notice := blockedNotice(stderr, name)
	go func() {
		for bl := range blocked {
			notice(bl.Active, bl.Reason)
		}
	}()
	return conn, nil
}

func (b *amqpBench) declare091(stderr io.Writer) (messages, purged int, err error) {
	o := b.opts
	conn, err := b.dial091("sluice-bench-setup", stderr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, 0, err
	}
	q, err := ch.QueueDeclare(o.queue, true, false, false, false, amqp.Table{"x-queue-type": o.queueType})
	if err != nil {
		return 0, 0, fmt.Errorf("declare queue %s: %w", o.queue, err)
	}
	if o.purgeFirst {
		if purged, err = ch.QueuePurge(o.queue, false); err != nil {
			return 0, 0, fmt.Errorf("purge queue %s: %w", o.queue, err)
		}
	}
	return q.Messages, purged, ch.Close()
}

type pub091 struct {
	conn *amqp.Connection
	ch   *amqp.Channel
	key  string
	msg  amqp.Publishing
}

// publish writes the frames before it returns, so body can be reused.
func (p *pub091) publish(body []byte) error {
	p.msg.Body = body
	return p.ch.Publish("", p.key, false, false, p.msg)
}
func (p *pub091) flush() error  { return nil }
func (p *pub091) buffered() int { return 0 }
func (p *pub091) close()        { p.conn.Close() }
func (p *pub091) abort() error {
	if err := p.ch.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return err
	}
	return nil
}

func (b *amqpBench) new091Publisher(p *amqpPublisher, name string, stderr io.Writer) error {
	conn, err := b.dial091(name, stderr)
	if err != nil {
		return err
	}
	ap := &pub091{conn: conn, key: b.opts.queue, msg: amqp.Publishing{DeliveryMode: amqp.Transient}}
	if b.opts.persistent {
		ap.msg.DeliveryMode = amqp.Persistent
	}
	if ap.ch, err = conn.Channel(); err != nil {
		conn.Close()
		return err
	}
	p.pub = ap
	if !b.opts.confirm {
		return nil
	}
	if err := ap.ch.Confirm(false); err != nil {
		conn.Close()
		return fmt.Errorf("confirm.select: %w", err)
	}
	// Room for every confirm that can be outstanding, so that the
	// client's reader never waits on this listener.
	confirms := ap.ch.NotifyPublish(make(chan amqp.Confirmation, b.opts.confirmWindow))
	// The client delivers confirms one per message, in tag order, and
	// closes the channel when the amqp channel closes.
	go func() {
		defer close(p.confirmed)
		for c := range confirms {
			b.confirmTag(p, c.DeliveryTag, c.Ack)
		}
	}()
	return nil
}

type cons091 struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
}

func (b *amqpBench) new091Consumer(name string, stderr io.Writer) (amqpConsConn, error) {
	conn, err := b.dial091(name, stderr)
	if err != nil {
		return nil, err
	}
	c := &cons091{conn: conn}
	if c.ch, err = conn.Channel(); err == nil {
		err = c.ch.Qos(b.opts.prefetch, 0, false)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("consume from %s: %w", b.opts.queue, err)
	}
	return c, nil
}

func (c *cons091) start(queue, tag string) error {
	var err error
	if c.deliveries, err = c.ch.Consume(queue, tag, false, false, false, false, nil); err != nil {
		return fmt.Errorf("consume from %s: %w", queue, err)
	}
	return nil
}

func (c *cons091) close() { c.conn.Close() }

func (c *cons091) run(ctx context.Context, pol *ackPolicy, recv func(bool, []byte)) error {
	for {
		select {
		case <-ctx.Done():
			if t := pol.rest(); t > 0 {
				return c.ch.Ack(t, true)
			}
			return nil
		case d, ok := <-c.deliveries:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("deliveries ended: %w", c.conn.Close())
			}
			recv(d.Redelivered, d.Body)
			if ack, multiple := pol.next(d.DeliveryTag); ack > 0 {
				if err := c.ch.Ack(ack, multiple); err != nil {
					return err
				}
			}
		}
	}
}
