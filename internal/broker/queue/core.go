package queue

import (
	"slices"
	"strconv"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
)

// core is a queue's decisions: which message goes next and to whom, what
// expires, what a length limit drops, what is dead-lettered, what a
// delivery limit stops, which consumer is the single active one. It does
// no I/O, starts no goroutine and reads no clock: every command that
// needs the time takes it as now, and the log's readable end comes in
// with the commands that look at the head. Commands are its methods
// (enqueued, dispatch, get, ack, requeue, discard, purge, ...); what they
// decide that needs the outside world is collected in out and handed over
// by ready, for the runtime (Queue, queue.go) to perform without the
// queue's lock. See doc.go for the split.
//
// The core needs a message's body and properties to decide about it
// (its size for limits, its expiration), and it does not read the log:
// when the head is not loaded it asks for a read (ready.reads) and the
// runtime hands the messages back with readDone, or says unreadable.
//
// Credit (prefetch) is the consumer's, not the core's: an AMQP channel's
// global prefetch spans queues, so the core asks Consumer.Reserve, which
// must be quick and deterministic in tests (fakeConsumer counts credit).
type core struct {
	cfg Config
	// dlx: dead-lettered messages go somewhere (the queue has a
	// dead-letter exchange and the broker a way to publish to it);
	// otherwise they are dropped.
	dlx bool

	settled   intervals
	leo       int64   // next offset the log will assign
	readable  int64   // the log's readable end, as last told
	next      int64   // delivery cursor: the next never-delivered offset
	requeued  []int64 // returned offsets, ascending; delivered before next
	redelivs  map[int64]int32
	unacked   map[int64]inflight
	live      int64 // unsettled messages
	liveBytes int64 // their body bytes
	consumers []*consumerEntry
	nextCID   uint64
	rr        int
	exclusive bool
	lastUsed  time.Time
	// redeliverBelow is the delivered mark recovered from the ack record:
	// unsettled messages below it may have been delivered before the
	// restart, so they go out flagged redelivered.
	redeliverBelow int64
	// markSeen is the delivered mark the ack record holds (or has
	// buffered); a cursor past it asks for a flush.
	markSeen int64
	// markAhead, when set (a tail queue, whose marks are Raft entries
	// that commit a moment after they are proposed), writes marks that
	// far past the cursor, and the next one once the cursor is half way
	// there: every delivery stays below a mark already committed unless
	// more than markAhead/2 go out within one commit. After a leader
	// change up to markAhead never-delivered messages may come flagged
	// redelivered.
	markAhead int64
	// ahead holds messages read at and after the cursor, ascending (one
	// read's worth); loaded holds requeued heads read back, by offset.
	ahead  []loadedMsg
	loaded map[int64]loadedMsg
	// deadRetry: a dead-letter publish failed; until then expired and
	// over-limit heads stay where they are (neither delivered nor sent
	// to the dead-letter exchange again), so a failing dead-letter
	// exchange is retried once a second, not in a loop.
	deadRetry time.Time

	out ready
}

// deadLetterRetry is how long the core waits after a failed dead-letter
// publish before it dead-letters heads again.
const deadLetterRetry = time.Second

// deadLetterBlocked reports whether heads must wait for a failed
// dead-letter publish to be retried; it asks to be woken then.
func (c *core) deadLetterBlocked(now time.Time) bool {
	if !c.dlx || !now.Before(c.deadRetry) {
		return false
	}
	if c.out.wake.IsZero() || c.deadRetry.Before(c.out.wake) {
		c.out.wake = c.deadRetry
	}
	return true
}

type loadedMsg struct {
	off int64
	m   message.Message
	ts  int64 // stored timestamp, ms
}

type inflight struct {
	size     int64 // body bytes
	redelivs int32
	dying    bool // being dead-lettered
}

type consumerEntry struct {
	id   uint64
	c    Consumer
	opts ConsumerOptions
}

// ready is what the core decided that the runtime must do, collected
// since the last call of core.ready: the queue's Ready in etcd raft's
// sense. The runtime takes it under the lock and performs it after
// releasing the lock.
type ready struct {
	// reads are messages to read from the log and hand back with
	// core.readDone (or core.unreadable); the core decides nothing about
	// the head until then.
	reads []readReq
	// deliveries go to consumers (Consumer.Deliver), in order.
	deliveries []outgoing
	// dead are to be published to the dead-letter exchange; each is
	// settled (core.deadLettered) only once its copy is durable. Those
	// without loaded set need their message read first.
	dead []deadAt
	// settled are ranges to append to the ack record.
	settled []span
	// flush asks for the ack record to be written soon (settles, or a
	// delivered mark past what it holds).
	flush bool
	// mark, when not zero, is a delivered mark (the delivery cursor) that
	// the ack record must hold before these deliveries reach a consumer:
	// written ahead, so that after a crash every message that may have
	// been delivered comes back flagged redelivered.
	mark int64
	// wake is when to dispatch again for an expiring head, zero if never.
	wake time.Time
	// Totals for the queue's Stats: deliveries of every kind, of them
	// those to no-ack consumers, those to basic.get and of these the
	// no-ack ones.
	delivered, redelivered, dropped int64
	deliveredNoAck, got, gotNoAck   int64
}

type readReq struct {
	off   int64
	ahead bool // the cursor: read ahead from off (a whole read's worth)
}

type outgoing struct {
	to *consumerEntry
	d  Delivery
}

type deadAt struct {
	off    int64
	d      Dead
	loaded bool // d.Message is set; otherwise read it at off
}

func newCore(cfg Config, dlx bool, now time.Time) *core {
	return &core{
		cfg: cfg, dlx: dlx, lastUsed: now,
		redelivs: map[int64]int32{}, unacked: map[int64]inflight{}, loaded: map[int64]loadedMsg{},
	}
}

// setConfig replaces the configuration the core decides with. The next
// dispatch applies it to what the queue holds: limits, expiry, and a
// delivery limit for deliveries that come back from now on.
func (c *core) setConfig(cfg Config, dlx bool) {
	c.cfg, c.dlx = cfg, dlx
	c.out.wake = time.Time{} // recomputed by the next dispatch
}

// ready hands over the effects decided since the last call and forgets
// them. It is etcd raft's Ready; the runtime performs each one completely
// before it asks for the next, so there is no Advance to call, though the
// runtime may hand slices back for reuse (out.settled once recorded,
// out.deliveries once delivered).
func (c *core) ready() ready {
	r := c.out
	c.out = ready{}
	return r
}

// restore sets the state recovered from disk: the log's range and the
// delivered mark of the ack record (whose settled ranges are already in
// c.settled). The caller then settles compaction gaps and adds the body
// bytes of what is live (recover in queue.go).
func (c *core) restore(start, hw, mark int64) {
	c.settled.trimBelow(start)
	c.settled.trimAtOrAbove(hw)
	// The delivered mark may be ahead of what survived (deliveries are
	// made before the fsync); offsets past the log end are new messages.
	c.redeliverBelow = min(mark, hw)
	c.markSeen = mark
	c.leo, c.readable = hw, hw
	c.next = c.settled.nextAbsent(start)
	c.live = hw - start - c.settled.count(start, hw)
}

// admission is what the core says to a publish before it is appended.
type admission int

const (
	admit     admission = iota
	reject              // refuse it (reject-publish)
	rejectDLX           // refuse it and dead-letter it (reject-publish-dlx)
)

// admitPublish decides whether a message of size bytes may be appended.
func (c *core) admitPublish(size int64) admission {
	if c.cfg.Overflow == DropHead || !c.full(1, size) {
		return admit
	}
	if c.cfg.Overflow == RejectPublishDLX && c.dlx {
		return rejectDLX
	}
	return reject
}

// enqueued records a message of size bytes appended at off. over is true
// when a drop-head queue is now past a limit (dispatch trims it).
func (c *core) enqueued(off, size int64, now time.Time) (over bool) {
	c.leo = off + 1
	c.live++
	c.liveBytes += size
	c.lastUsed = now
	return c.cfg.Overflow == DropHead && c.full(0, 0)
}

// skipped settles [from, to), offsets of the log that hold no message to
// deliver (a tail log's unreadable batch), and moves the log end past
// them, as recover settles a compaction gap.
func (c *core) skipped(from, to int64) {
	if c.settled.add(from, to) > 0 {
		c.out.settled = append(c.out.settled, span{from, to})
		c.out.flush = true
	}
	c.leo = max(c.leo, to)
}

// full reports whether adding n messages of size bytes would take the
// ready messages past a limit.
func (c *core) full(n, size int64) bool {
	ready := c.live - int64(len(c.unacked))
	if c.cfg.MaxLength >= 0 && ready+n > c.cfg.MaxLength {
		return true
	}
	if c.cfg.MaxLengthBytes >= 0 && c.readyBytes()+size > c.cfg.MaxLengthBytes {
		return true
	}
	return false
}

func (c *core) readyBytes() int64 {
	b := c.liveBytes
	for _, f := range c.unacked {
		b -= f.size
	}
	return b
}

func (c *core) touch(now time.Time) { c.lastUsed = now }

func (c *core) counts() (ready, unacked int64, consumers int) {
	return c.live - int64(len(c.unacked)), int64(len(c.unacked)), len(c.consumers)
}

// addConsumer registers a consumer; consumers are kept sorted by
// priority, highest first, in registration order otherwise.
func (c *core) addConsumer(cons Consumer, opts ConsumerOptions, now time.Time) (uint64, error) {
	if c.exclusive || (opts.Exclusive && len(c.consumers) > 0) {
		return 0, ErrExclusiveConsumer
	}
	c.nextCID++
	e := &consumerEntry{id: c.nextCID, c: cons, opts: opts}
	i := len(c.consumers)
	for i > 0 && c.consumers[i-1].opts.Priority < opts.Priority {
		i--
	}
	c.consumers = slices.Insert(c.consumers, i, e)
	c.exclusive = opts.Exclusive
	c.lastUsed = now
	return e.id, nil
}

func (c *core) removeConsumer(id uint64, now time.Time) {
	for i, e := range c.consumers {
		if e.id == id {
			c.consumers = slices.Delete(c.consumers, i, i+1)
			if e.opts.Exclusive {
				c.exclusive = false
			}
			break
		}
	}
	c.lastUsed = now
}

// activeConsumer reports whether id is the single active consumer (or
// the queue is not a single-active-consumer queue).
func (c *core) activeConsumer(id uint64) bool {
	return !c.cfg.SingleActiveConsumer || (len(c.consumers) > 0 && c.firstRegistered().id == id)
}

// firstRegistered is the single active consumer: the earliest registered
// of those attached, so that when it goes the next earliest takes over.
func (c *core) firstRegistered() *consumerEntry {
	first := c.consumers[0]
	for _, e := range c.consumers[1:] {
		if e.id < first.id {
			first = e
		}
	}
	return first
}

// pick returns a consumer that reserved credit for one delivery, or nil:
// the highest-priority consumers first, round robin among equals; on a
// single-active-consumer queue only the earliest registered one.
func (c *core) pick() *consumerEntry {
	if len(c.consumers) == 0 {
		return nil
	}
	if c.cfg.SingleActiveConsumer {
		if e := c.firstRegistered(); e.c.Reserve() {
			return e
		}
		return nil
	}
	for lo := 0; lo < len(c.consumers); {
		hi := lo
		for hi < len(c.consumers) && c.consumers[hi].opts.Priority == c.consumers[lo].opts.Priority {
			hi++
		}
		n := hi - lo
		for k := 0; k < n; k++ {
			e := c.consumers[lo+(c.rr+k)%n]
			if e.c.Reserve() {
				c.rr = (c.rr + k + 1) % n
				return e
			}
		}
		lo = hi
	}
	return nil
}

// head returns the next offset to deliver: the oldest requeued one, else
// the cursor (skipping settled offsets). ok is false when nothing is
// ready and readable.
func (c *core) head() (off int64, requeued, ok bool) {
	if len(c.requeued) > 0 {
		return c.requeued[0], true, true
	}
	c.next = c.settled.nextAbsent(c.next)
	if c.next >= c.readable {
		return 0, false, false
	}
	return c.next, false, true
}

func (c *core) popHead(requeued bool, off int64) {
	delete(c.loaded, off)
	if requeued {
		c.requeued = c.requeued[1:]
		return
	}
	c.next = off + 1
	if c.next+c.markAhead/2 > c.markSeen {
		// Written ahead of the delivery (Queue.perform), so that no crash
		// can lose a delivery's mark.
		c.markSeen = c.next + c.markAhead
		c.out.mark = c.markSeen
		c.out.flush = true
	}
}

// loadedHead returns the head's message, or asks for it to be read.
func (c *core) loadedHead() (off int64, requeued bool, lm loadedMsg, st status) {
	off, requeued, ok := c.head()
	if !ok {
		return 0, false, loadedMsg{}, empty
	}
	if requeued {
		lm, ok = c.loaded[off]
	} else {
		lm, ok = c.aheadAt(off)
	}
	if !ok {
		c.want(readReq{off: off, ahead: !requeued})
		return off, requeued, lm, needRead
	}
	return off, requeued, lm, took
}

// aheadAt returns the read-ahead message at the cursor off, forgetting
// those before it.
func (c *core) aheadAt(off int64) (loadedMsg, bool) {
	i := 0
	for i < len(c.ahead) && c.ahead[i].off < off {
		i++
	}
	c.ahead = c.ahead[i:]
	if len(c.ahead) == 0 {
		c.ahead = nil
		return loadedMsg{}, false
	}
	return c.ahead[0], c.ahead[0].off == off
}

func (c *core) want(r readReq) {
	if !slices.Contains(c.out.reads, r) {
		c.out.reads = append(c.out.reads, r)
	}
}

// readDone takes messages the runtime read (for c.out.reads), in offset
// order. Those no longer waiting to be delivered are left out.
func (c *core) readDone(msgs []loadedMsg) {
	last := int64(-1)
	if len(c.ahead) > 0 {
		last = c.ahead[len(c.ahead)-1].off
	}
	keep := msgs[:0]
	for _, lm := range msgs {
		if c.settled.contains(lm.off) {
			continue
		}
		if _, ok := c.unacked[lm.off]; ok {
			continue
		}
		if _, found := slices.BinarySearch(c.requeued, lm.off); found {
			c.loaded[lm.off] = lm
		} else if lm.off >= c.next && lm.off > last {
			keep = append(keep, lm)
			last = lm.off
		}
	}
	if len(c.ahead) == 0 {
		c.ahead = keep
	} else {
		c.ahead = append(c.ahead, keep...)
	}
}

// unreadable settles a message that cannot be read: it cannot be
// delivered or dead-lettered, and must not wedge the queue.
func (c *core) unreadable(off int64) {
	var size int64
	if f, ok := c.unacked[off]; ok {
		delete(c.unacked, off)
		size = f.size
	} else if i, found := slices.BinarySearch(c.requeued, off); found {
		c.requeued = slices.Delete(c.requeued, i, i+1)
	}
	c.settle(off, size)
}

// expiresAt returns when a message stored at ts (ms) expires, by the
// queue's TTL and its own expiration property; ok false if never.
func (c *core) expiresAt(m *message.Message, ts int64) (at int64, ok bool) {
	ttl := int64(-1)
	if c.cfg.MessageTTL >= 0 {
		ttl = c.cfg.MessageTTL.Milliseconds()
	}
	if m.Properties.Present&message.PropExpiration != 0 {
		if v, err := strconv.ParseInt(m.Properties.Expiration, 10, 64); err == nil && v >= 0 && (ttl < 0 || v < ttl) {
			ttl = v
		}
	}
	if ttl < 0 {
		return 0, false
	}
	return ts + ttl, true
}

// status is how far a look at the head got.
type status int

const (
	empty    status = iota // nothing ready and readable, or nobody to take it
	took                   // a delivery was made
	needRead               // the head must be read first (see ready.reads)
	more                   // a batch of effects is full: perform them, then ask again
)

// maxBatch bounds the deliveries and dead letters of one Ready, so that
// the runtime hands them out while the core goes on.
const maxBatch = 256

// dispatch delivers ready messages to consumers with credit until nothing
// is ready, nobody has credit, the head must be read, or a batch is full.
// It sets out.wake for an expiring head, and with a message TTL and
// nothing to do it asks to be woken within a second anyway, so that
// expiry drains a queue whose head is not yet readable.
func (c *core) dispatch(now time.Time, readable int64) status {
	c.readable = readable
	for len(c.out.deliveries) < maxBatch {
		st := c.take(now, nil)
		if st != took {
			if st == empty && c.out.wake.IsZero() && c.cfg.MessageTTL >= 0 {
				c.out.wake = now.Add(min(c.cfg.MessageTTL+time.Millisecond, time.Second))
			}
			return st
		}
	}
	return more
}

// get takes the head for basic.get. st is needRead when the head must be
// read first: the runtime reads it and calls get again.
func (c *core) get(now time.Time, readable int64, noAck bool) (d Delivery, st status) {
	c.readable = readable
	g := getReq{noAck: noAck}
	st = c.take(now, &g)
	if st == took {
		c.lastUsed = now
		return g.d, took
	}
	return Delivery{}, st
}

type getReq struct {
	noAck bool
	d     Delivery
}

// take removes the head and hands it out: to a consumer that reserves
// credit, or to basic.get (get != nil). On the way it trims a drop-head
// queue past its limits and dead-letters (or drops) expired heads.
func (c *core) take(now time.Time, get *getReq) status {
	for {
		if st := c.dropOverLimit(now); st == needRead {
			return needRead
		} else if len(c.out.dead) >= maxBatch {
			return more
		}
		off, requeued, lm, st := c.loadedHead()
		if st != took {
			return st
		}
		at, exp := c.expiresAt(&lm.m, lm.ts)
		if exp && now.UnixMilli() >= at {
			if c.deadLetterBlocked(now) {
				return empty
			}
			c.popHead(requeued, off)
			c.kill(off, lm.m.Size(), &lm.m, Expired)
			if len(c.out.dead) >= maxBatch {
				return more
			}
			continue
		}
		var to *consumerEntry
		if get == nil {
			if to = c.pick(); to == nil {
				if w := time.UnixMilli(at); exp && (c.out.wake.IsZero() || w.Before(c.out.wake)) {
					c.out.wake = w
				}
				return empty
			}
		}
		c.popHead(requeued, off)
		rc := c.redelivs[off]
		delete(c.redelivs, off)
		redelivered := requeued || off < c.redeliverBelow
		d := Delivery{Offset: off, Message: lm.m, Redelivered: redelivered, DeliveryCount: rc}
		size := lm.m.Size()
		if (to != nil && to.opts.NoAck) || (get != nil && get.noAck) {
			c.settle(off, size)
		} else {
			c.unacked[off] = inflight{size: size, redelivs: rc}
		}
		c.out.delivered++
		if redelivered {
			c.out.redelivered++
		}
		switch {
		case get != nil && get.noAck:
			c.out.got++
			c.out.gotNoAck++
		case get != nil:
			c.out.got++
		case to.opts.NoAck:
			c.out.deliveredNoAck++
		}
		if get != nil {
			get.d = d
		} else {
			c.out.deliveries = append(c.out.deliveries, outgoing{to: to, d: d})
		}
		return took
	}
}

// dropOverLimit takes ready messages off the head while a drop-head queue
// is over a limit, dead-lettering them (reason maxlen). It returns
// needRead when the head must be read first, took when it dropped some.
func (c *core) dropOverLimit(now time.Time) status {
	if c.cfg.Overflow != DropHead || (c.cfg.MaxLength < 0 && c.cfg.MaxLengthBytes < 0) {
		return empty
	}
	if c.full(0, 0) && c.deadLetterBlocked(now) {
		return empty
	}
	st := empty
	for c.full(0, 0) && len(c.out.dead) < maxBatch {
		if s := c.dropHead(); s != took {
			if s == needRead {
				return s
			}
			break
		}
		st = took
	}
	return st
}

// trimHead drops (or dead-letters, reason maxlen) the ready message at
// the head, whatever the consumers' credit: a priority queue trims its
// levels with it (priority_limits.go).
func (c *core) trimHead(now time.Time, readable int64) status {
	c.readable = readable
	if c.deadLetterBlocked(now) {
		return empty
	}
	return c.dropHead()
}

func (c *core) dropHead() status {
	off, requeued, lm, st := c.loadedHead()
	if st != took {
		return st
	}
	c.popHead(requeued, off)
	c.kill(off, lm.m.Size(), &lm.m, MaxLen)
	return took
}

// kill takes a message out of the queue for good: to the dead-letter
// exchange (it stays in unacked, dying, until its copy is durable) or,
// without one, dropped at once. m nil: the runtime reads it.
func (c *core) kill(off, size int64, m *message.Message, why Reason) {
	if !c.dlx {
		c.settle(off, size)
		c.out.dropped++
		return
	}
	c.unacked[off] = inflight{size: size, redelivs: c.redelivs[off], dying: true}
	d := deadAt{off: off, d: Dead{Reason: why}}
	if m != nil {
		d.d.Message, d.loaded = *m, true
	}
	c.out.dead = append(c.out.dead, d)
}

// deadLettered settles dead-lettered messages once their copies are
// durable (ok), or puts them back in line when the copies failed, and
// holds further dead-lettering from the head for deadLetterRetry.
func (c *core) deadLettered(offs []int64, ok bool, now time.Time) {
	if !ok {
		c.deadRetry = now.Add(deadLetterRetry)
	}
	for _, off := range offs {
		f, in := c.unacked[off]
		if !in || !f.dying {
			continue
		}
		delete(c.unacked, off)
		if ok {
			c.settle(off, f.size)
			continue
		}
		if f.redelivs > 0 {
			c.redelivs[off] = f.redelivs
		}
		c.insertRequeued(off)
	}
}

// settle records off as settled for good.
func (c *core) settle(off, size int64) {
	delete(c.loaded, off)
	delete(c.redelivs, off)
	if c.settled.add(off, off+1) == 0 {
		return
	}
	c.out.settled = append(c.out.settled, span{off, off + 1})
	c.live--
	c.liveBytes -= size
	c.out.flush = true
}

func (c *core) insertRequeued(off int64) {
	i, found := slices.BinarySearch(c.requeued, off)
	if !found {
		c.requeued = slices.Insert(c.requeued, i, off)
	}
}

// ack settles delivered offsets and returns how many it settled.
func (c *core) ack(offsets []int64) int64 {
	var n int64
	for _, off := range offsets {
		if f, ok := c.unacked[off]; ok && !f.dying {
			delete(c.unacked, off)
			c.settle(off, f.size)
			n++
		}
	}
	return n
}

// requeue returns delivered offsets to the head, to be redelivered
// (flagged redelivered) before newer messages, in offset order. A message
// past the delivery limit is dead-lettered (reason delivery_limit)
// instead.
func (c *core) requeue(offsets []int64) {
	var over []int64
	for _, off := range offsets {
		f, ok := c.unacked[off]
		if !ok || f.dying {
			continue
		}
		n := f.redelivs + 1
		if lim := c.cfg.DeliveryLimit; lim >= 0 && int64(n) > lim {
			over = append(over, off)
			continue
		}
		delete(c.unacked, off)
		c.redelivs[off] = n
		c.insertRequeued(off)
	}
	c.discard(over, DeliveryLimit)
}

// discard takes delivered offsets out of the queue without requeueing
// them: dead-lettered for why, or dropped without a dead-letter exchange.
func (c *core) discard(offsets []int64, why Reason) {
	for _, off := range offsets {
		f, ok := c.unacked[off]
		if !ok || f.dying {
			continue
		}
		delete(c.unacked, off)
		c.redelivs[off] = f.redelivs
		c.kill(off, f.size, nil, why)
	}
}

// purge settles every ready message and returns how many there were.
func (c *core) purge() int64 {
	n := c.live - int64(len(c.unacked))
	for _, off := range c.requeued {
		if c.settled.add(off, off+1) > 0 {
			c.out.settled = append(c.out.settled, span{off, off + 1})
		}
	}
	c.requeued = c.requeued[:0]
	clear(c.redelivs)
	clear(c.loaded)
	c.ahead = nil
	if c.next < c.leo {
		c.settled.add(c.next, c.leo)
		c.out.settled = append(c.out.settled, span{c.next, c.leo})
		c.next = c.leo
	}
	c.live = int64(len(c.unacked))
	c.liveBytes = 0
	for _, f := range c.unacked {
		c.liveBytes += f.size
	}
	c.out.flush = true
	return n
}
