package queue

import (
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Errors a queue returns.
var (
	// ErrDeleted: the queue was deleted or closed.
	ErrDeleted = errors.New("queue: deleted")
	// ErrRejected: the queue is full and its overflow policy rejects
	// publishes (reject-publish, reject-publish-dlx).
	ErrRejected = errors.New("queue: full, publish rejected")
	// ErrExclusiveConsumer: the queue has an exclusive consumer, or an
	// exclusive consumer was asked for on a queue with consumers.
	ErrExclusiveConsumer = errors.New("queue: exclusive consumer")
)

// Overflow is what a full queue does with a new message.
type Overflow int

const (
	DropHead         Overflow = iota // drop (or dead-letter) the oldest ready messages
	RejectPublish                    // refuse the publish (nack to the publisher)
	RejectPublishDLX                 // refuse it and dead-letter the refused message
)

// Config is what a queue's x-arguments ask for. Negative limits mean none.
type Config struct {
	MessageTTL     time.Duration // x-message-ttl; < 0: none
	MaxLength      int64         // x-max-length, counted over ready messages; < 0: none
	MaxLengthBytes int64         // x-max-length-bytes, body bytes of ready messages; < 0: none
	Overflow       Overflow
	// DeadLetter is set when x-dead-letter-exchange is.
	DeadLetter           bool
	DeadLetterExchange   string
	DeadLetterRoutingKey *string
	DeliveryLimit        int64 // x-delivery-limit; < 0: none
	SingleActiveConsumer bool
}

// NoLimits is a Config without TTL, length limits or delivery limit.
func NoLimits() Config {
	return Config{MessageTTL: -1, MaxLength: -1, MaxLengthBytes: -1, DeliveryLimit: -1}
}

// Reason says why a message was dead-lettered, in RabbitMQ's words.
type Reason string

const (
	Rejected      Reason = "rejected"
	Expired       Reason = "expired"
	MaxLen        Reason = "maxlen"
	DeliveryLimit Reason = "delivery_limit"
)

// Dead is a message leaving the queue through dead-lettering.
type Dead struct {
	Message message.Message
	Reason  Reason
}

// Options configure a Queue.
type Options struct {
	Name    string // for logs and x-death
	Dir     string
	Storage storage.Options
	Config  Config
	Now     func() time.Time
	// DeadLetter publishes dead-lettered copies (through the dead-letter
	// exchange, x-death updated) and returns once they are durable; the
	// originals are settled afterwards. Called without queue locks, from
	// queue goroutines. Nil: dead messages are dropped.
	DeadLetter func(q *Queue, dead []Dead) error
	Logger     *slog.Logger
}

// Consumer receives deliveries. The queue calls Reserve under its lock, so
// Reserve must be quick and must not call back into the queue; Deliver is
// called without queue locks and may block on the network.
type Consumer interface {
	// Reserve takes one unit of the consumer's credit (prefetch) if it can
	// take a delivery now.
	Reserve() bool
	// Deliver hands over a delivery Reserve made room for.
	Deliver(d Delivery)
	// Cancelled tells the consumer the queue went away (AMQP's
	// server-sent basic.cancel).
	Cancelled()
}

// ConsumerOptions describe a consumer at registration.
type ConsumerOptions struct {
	NoAck     bool  // deliveries are settled when handed over
	Exclusive bool  // no other consumer may attach
	Priority  int32 // x-priority: higher priorities are served first
}

// Delivery is one message handed to a consumer or to a basic.get.
type Delivery struct {
	Queue         *Queue
	Offset        int64
	Message       message.Message
	Redelivered   bool
	DeliveryCount int32 // earlier deliveries of this message that came back
}

type consumerEntry struct {
	id   uint64
	c    Consumer
	opts ConsumerOptions
}

type inflight struct {
	size     int64 // body bytes
	redelivs int32
	dying    bool // being dead-lettered
}

// Queue is a log plus a delivery cursor and an ack record. See doc.go.
type Queue struct {
	opts Options
	log  *storage.Log
	now  func() time.Time
	lg   *slog.Logger

	mu        sync.Mutex
	settled   intervals
	acks      *ackLog
	leo       int64             // next offset the log will assign
	lastApp   *storage.Appended // the last append, for basic.get to wait on while it is not yet durable
	next      int64             // delivery cursor: the next never-delivered offset
	requeued  []int64           // returned offsets, ascending; delivered before next
	redelivs  map[int64]int32
	unacked   map[int64]inflight
	live      int64 // unsettled messages
	liveBytes int64 // their body bytes
	consumers []*consumerEntry
	nextCID   uint64
	rr        int
	exclusive bool
	rd        []byte // read-ahead from the cursor: whole batches
	flushing  bool
	closed    bool
	lastUsed  time.Time
	// redeliverBelow is the delivered mark recovered from the ack record:
	// unsettled messages below it may have been delivered before the
	// restart, so they go out flagged redelivered.
	redeliverBelow int64
	compaction     compaction // compact.go
	ackErr         error      // the ack record's last write failed with this (noteAckWrite)

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	Stats Stats
}

// Stats are running totals, read with atomic loads.
type Stats struct {
	Published, Delivered, Acked, Redelivered, DeadLettered, Dropped atomic.Int64
}

// Totals is a snapshot of a queue's running totals since it was opened
// (they are not persisted, so they restart from zero with the broker).
// Metrics and rates are computed from successive snapshots.
type Totals struct {
	Published    int64 // messages accepted by Publish
	Delivered    int64 // deliveries to consumers and basic.get, redeliveries included
	Acked        int64 // deliveries settled by Ack (auto-ack deliveries are not counted)
	Redelivered  int64 // deliveries of requeued messages
	DeadLettered int64 // messages published to the dead-letter exchange
	Dropped      int64 // messages expired, over a limit or rejected with no dead-letter exchange to go to
}

// Add returns the sum of two snapshots.
func (t Totals) Add(o Totals) Totals {
	return Totals{
		Published: t.Published + o.Published, Delivered: t.Delivered + o.Delivered,
		Acked: t.Acked + o.Acked, Redelivered: t.Redelivered + o.Redelivered,
		DeadLettered: t.DeadLettered + o.DeadLettered, Dropped: t.Dropped + o.Dropped,
	}
}

// Totals returns the queue's running totals.
func (q *Queue) Totals() Totals {
	return Totals{
		Published: q.Stats.Published.Load(), Delivered: q.Stats.Delivered.Load(),
		Acked: q.Stats.Acked.Load(), Redelivered: q.Stats.Redelivered.Load(),
		DeadLettered: q.Stats.DeadLettered.Load(), Dropped: q.Stats.Dropped.Load(),
	}
}

// Open opens (creating if needed) the queue stored in opts.Dir and starts
// its dispatcher.
func Open(opts Options) (*Queue, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	so := opts.Storage
	so.Now = opts.Now
	// Deliver a message as soon as it is written, while its fsync is under
	// way, as RabbitMQ does: its publisher's confirm still waits for the
	// disk. If the broker dies first, the message is lost with its confirm
	// never sent (the publisher sends it again), and acks recorded for it
	// are dropped at recovery (recover: settled at or above the high
	// watermark).
	so.ReadBeforeSync = true
	lg, err := storage.Open(opts.Dir+"/log", so)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		opts: opts, log: lg, now: opts.Now, lg: opts.Logger.With("queue", opts.Name),
		redelivs: map[int64]int32{}, unacked: map[int64]inflight{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		lastUsed: opts.Now(),
	}
	if q.acks, err = openAckLog(opts.Dir, &q.settled); err != nil {
		lg.Close()
		return nil, err
	}
	q.redeliverBelow = q.acks.mark
	if err := q.recover(); err != nil {
		q.acks.close()
		lg.Close()
		return nil, err
	}
	go q.run()
	return q, nil
}

// recover derives the cursor and counters from the log and the ack record.
func (q *Queue) recover() error {
	start, hw := q.log.StartOffset(), q.log.HighWatermark()
	q.settled.trimBelow(start)
	q.settled.trimAtOrAbove(hw)
	// The delivered mark may be ahead of what survived (deliveries are
	// made before the fsync); offsets past the log end are new messages.
	q.redeliverBelow = min(q.redeliverBelow, hw)
	q.leo = hw
	q.next = q.settled.nextAbsent(start)
	q.live = hw - start - q.settled.count(start, hw)
	// Body bytes of the live messages: read them when a byte limit needs
	// the exact figure, estimate from batch sizes otherwise.
	exact := q.opts.Config.MaxLengthBytes >= 0
	for off := q.next; off < hw; {
		b, err := q.log.Read(off, 1<<20)
		if err != nil || len(b) == 0 {
			return err
		}
		for len(b) > 0 {
			h, err := storage.ParseBatchHeader(b)
			if err != nil || h.Size() > len(b) {
				break
			}
			if h.BaseOffset > off {
				// A gap left by compaction: settled already, unless the
				// ack record lost its tail; settle it either way.
				if n := q.settled.add(off, h.BaseOffset); n > 0 {
					q.acks.record(off, h.BaseOffset)
					q.live -= n
				}
			}
			if !q.settled.contains(h.BaseOffset) {
				if exact {
					storage.ReadRecords(b, func(_, _ int64, r storage.Record) bool {
						q.liveBytes += int64(len(r.Value))
						return false
					})
				} else {
					q.liveBytes += int64(max(h.Size()-recordOverhead, 0))
				}
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return nil
}

// recordOverhead estimates the stored bytes of a message that are not its
// body (batch header, record framing, exchange and property headers).
const recordOverhead = 100

// Name is the queue's name.
func (q *Queue) Name() string { return q.opts.Name }

// Config is the queue's configuration.
func (q *Queue) Config() Config { return q.opts.Config }

// Publish appends m. The returned Appended says when it is durable (Wait);
// the message is deliverable once written, which may be sooner.
func (q *Queue) Publish(m *message.Message) (*storage.Appended, error) {
	rec, err := m.Record()
	if err != nil {
		return nil, err
	}
	cfg := &q.opts.Config
	size := m.Size()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, ErrDeleted
	}
	if cfg.Overflow != DropHead && q.fullLocked(1, size) {
		q.mu.Unlock()
		if cfg.Overflow == RejectPublishDLX && cfg.DeadLetter && q.opts.DeadLetter != nil {
			if err := q.opts.DeadLetter(q, []Dead{{Message: *m, Reason: MaxLen}}); err != nil {
				q.lg.Warn("dead-lettering a rejected publish failed", "err", err)
			}
		}
		return nil, ErrRejected
	}
	now := q.now()
	app, err := q.log.Append(storage.BuildRecordBatch(0, now.UnixMilli(), []storage.Record{rec}))
	if err != nil {
		q.mu.Unlock()
		return nil, err
	}
	q.leo = app.LastOffset + 1
	q.lastApp = app
	q.live++
	q.liveBytes += size
	q.lastUsed = now
	over := cfg.Overflow == DropHead && q.fullLocked(0, 0)
	q.mu.Unlock()
	q.Stats.Published.Add(1)
	if over {
		q.poke()
	}
	return app, nil
}

// fullLocked reports whether adding n messages of size bytes would take the
// ready messages past a limit.
func (q *Queue) fullLocked(n, size int64) bool {
	cfg := &q.opts.Config
	ready := q.live - int64(len(q.unacked))
	if cfg.MaxLength >= 0 && ready+n > cfg.MaxLength {
		return true
	}
	if cfg.MaxLengthBytes >= 0 && q.readyBytesLocked()+size > cfg.MaxLengthBytes {
		return true
	}
	return false
}

func (q *Queue) readyBytesLocked() int64 {
	b := q.liveBytes
	for _, f := range q.unacked {
		b -= f.size
	}
	return b
}

// Counts returns the ready and unacked message counts and the consumer
// count.
func (q *Queue) Counts() (ready, unacked int64, consumers int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.live - int64(len(q.unacked)), int64(len(q.unacked)), len(q.consumers)
}

// LastUsed is when the queue last saw a publish, a get, a consumer come
// or go (for x-expires). A queue with consumers is in use now.
func (q *Queue) LastUsed() (t time.Time, inUse bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lastUsed, len(q.consumers) > 0
}

// Touch marks the queue used (a redeclare, for x-expires).
func (q *Queue) Touch() {
	q.mu.Lock()
	q.lastUsed = q.now()
	q.mu.Unlock()
}

// poke wakes the dispatcher.
func (q *Queue) poke() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Kick tells the queue a consumer may have credit again.
func (q *Queue) Kick() { q.poke() }

// AddConsumer registers c and returns its id for RemoveConsumer.
func (q *Queue) AddConsumer(c Consumer, opts ConsumerOptions) (uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, ErrDeleted
	}
	if q.exclusive || (opts.Exclusive && len(q.consumers) > 0) {
		return 0, ErrExclusiveConsumer
	}
	q.nextCID++
	e := &consumerEntry{id: q.nextCID, c: c, opts: opts}
	// Keep consumers sorted by priority, highest first, stable otherwise.
	i := len(q.consumers)
	for i > 0 && q.consumers[i-1].opts.Priority < opts.Priority {
		i--
	}
	q.consumers = slices.Insert(q.consumers, i, e)
	q.exclusive = opts.Exclusive
	q.lastUsed = q.now()
	q.poke()
	return e.id, nil
}

// RemoveConsumer unregisters a consumer. Its unacked deliveries stay
// unacked: in AMQP they belong to the channel.
func (q *Queue) RemoveConsumer(id uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, e := range q.consumers {
		if e.id == id {
			q.consumers = slices.Delete(q.consumers, i, i+1)
			if e.opts.Exclusive {
				q.exclusive = false
			}
			break
		}
	}
	q.lastUsed = q.now()
	q.poke()
}

// ActiveConsumer reports whether consumer id is the single active one of a
// single-active-consumer queue (or the queue is not one).
func (q *Queue) ActiveConsumer(id uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.opts.Config.SingleActiveConsumer || (len(q.consumers) > 0 && q.firstRegisteredLocked().id == id)
}

func (q *Queue) firstRegisteredLocked() *consumerEntry {
	first := q.consumers[0]
	for _, e := range q.consumers[1:] {
		if e.id < first.id {
			first = e
		}
	}
	return first
}

// pickLocked returns a consumer that reserved credit for one delivery, or
// nil: the highest-priority consumers first, round robin among equals; on
// a single-active-consumer queue only the earliest registered one.
func (q *Queue) pickLocked() *consumerEntry {
	if len(q.consumers) == 0 {
		return nil
	}
	if q.opts.Config.SingleActiveConsumer {
		if e := q.firstRegisteredLocked(); e.c.Reserve() {
			return e
		}
		return nil
	}
	for lo := 0; lo < len(q.consumers); {
		hi := lo
		for hi < len(q.consumers) && q.consumers[hi].opts.Priority == q.consumers[lo].opts.Priority {
			hi++
		}
		n := hi - lo
		for k := 0; k < n; k++ {
			e := q.consumers[lo+(q.rr+k)%n]
			if e.c.Reserve() {
				q.rr = (q.rr + k + 1) % n
				return e
			}
		}
		lo = hi
	}
	return nil
}

// head returns the next offset to deliver: the oldest requeued one, else
// the cursor (skipping settled offsets). ok is false when nothing is ready
// and visible.
func (q *Queue) headLocked() (off int64, requeued, ok bool) {
	if len(q.requeued) > 0 {
		return q.requeued[0], true, true
	}
	q.next = q.settled.nextAbsent(q.next)
	if q.next >= q.log.ReadableEnd() {
		return 0, false, false
	}
	return q.next, false, true
}

func (q *Queue) popHeadLocked(requeued bool, off int64) {
	if requeued {
		q.requeued = q.requeued[1:]
		return
	}
	q.next = off + 1
	q.rd = dropBatchesBelow(q.rd, q.next)
	if q.next > q.acks.mark {
		q.scheduleFlushLocked() // records the delivered mark
	}
}

// readLocked returns the message at off and its timestamp (ms).
func (q *Queue) readLocked(off int64, requeued bool) (message.Message, int64, error) {
	var b []byte
	if !requeued {
		q.rd = dropBatchesBelow(q.rd, off)
		if h, err := storage.ParseBatchHeader(q.rd); err != nil || h.BaseOffset > off || h.Size() > len(q.rd) {
			q.rd, err = q.log.Read(off, 256<<10)
			if err != nil {
				return message.Message{}, 0, err
			}
		}
		b = q.rd
	} else {
		var err error
		if b, err = q.log.Read(off, 1); err != nil {
			return message.Message{}, 0, err
		}
	}
	var (
		rec   storage.Record
		ts    int64
		found bool
	)
	_, err := storage.ReadRecords(b, func(o, t int64, r storage.Record) bool {
		if o == off {
			rec, ts, found = r, t, true
			return false
		}
		return true
	})
	if err == nil && !found {
		err = storage.ErrCorruptBatch
	}
	if err != nil {
		return message.Message{}, 0, err
	}
	m, err := message.FromRecord(rec)
	return m, ts, err
}

// dropBatchesBelow drops whole batches that end below off from b.
func dropBatchesBelow(b []byte, off int64) []byte {
	for len(b) > 0 {
		h, err := storage.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			return nil
		}
		if h.LastOffset() >= off {
			return b
		}
		b = b[h.Size():]
	}
	return nil
}

// expiresAt returns when a message stored at ts (ms) expires, by the
// queue's TTL and its own expiration property; ok false if never.
func (q *Queue) expiresAt(m *message.Message, ts int64) (at int64, ok bool) {
	ttl := int64(-1)
	if q.opts.Config.MessageTTL >= 0 {
		ttl = q.opts.Config.MessageTTL.Milliseconds()
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

// take removes the head and hands it out: to a consumer that reserved
// credit (consumer != nil), or to basic.get. Expired heads are dead-lettered
// on the way. It returns ok false when nothing is ready or no consumer has
// credit; wake is when the head expires, if it does.
func (q *Queue) take(forGet, getNoAck bool) (d Delivery, to *consumerEntry, ok bool, wake time.Time) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return Delivery{}, nil, false, time.Time{}
		}
		if dead := q.dropOverLimitLocked(); len(dead) > 0 {
			q.mu.Unlock()
			q.deadLetter(dead)
			continue
		}
		off, requeued, has := q.headLocked()
		if !has {
			q.mu.Unlock()
			return Delivery{}, nil, false, time.Time{}
		}
		m, ts, err := q.readLocked(off, requeued)
		if err != nil {
			// An unreadable message cannot be delivered; settle it rather
			// than wedge the queue.
			q.lg.Error("unreadable message settled", "offset", off, "err", err)
			q.popHeadLocked(requeued, off)
			q.settleLocked(off, 0)
			q.mu.Unlock()
			continue
		}
		if at, exp := q.expiresAt(&m, ts); exp {
			if now := q.now().UnixMilli(); now >= at {
				q.popHeadLocked(requeued, off)
				q.unacked[off] = inflight{size: m.Size(), dying: true}
				q.mu.Unlock()
				q.deadLetter([]deadAt{{off: off, d: Dead{Message: m, Reason: Expired}}})
				continue
			} else {
				wake = time.UnixMilli(at)
			}
		}
		var c *consumerEntry
		if !forGet {
			if c = q.pickLocked(); c == nil {
				q.mu.Unlock()
				return Delivery{}, nil, false, wake
			}
		}
		q.popHeadLocked(requeued, off)
		rc := q.redelivs[off]
		delete(q.redelivs, off)
		redelivered := requeued || off < q.redeliverBelow
		d = Delivery{Queue: q, Offset: off, Message: m, Redelivered: redelivered, DeliveryCount: rc}
		if (c != nil && c.opts.NoAck) || (forGet && getNoAck) {
			q.settleLocked(off, m.Size())
		} else {
			q.unacked[off] = inflight{size: m.Size(), redelivs: rc}
		}
		if forGet {
			q.lastUsed = q.now()
		}
		q.mu.Unlock()
		q.Stats.Delivered.Add(1)
		if redelivered {
			q.Stats.Redelivered.Add(1)
		}
		return d, c, true, time.Time{}
	}
}

type deadAt struct {
	off int64
	d   Dead
}

// dropOverLimitLocked takes ready messages off the head while a drop-head
// queue is over a limit, marking them dying; the caller dead-letters them.
func (q *Queue) dropOverLimitLocked() []deadAt {
	cfg := &q.opts.Config
	if cfg.Overflow != DropHead || (cfg.MaxLength < 0 && cfg.MaxLengthBytes < 0) {
		return nil
	}
	var out []deadAt
	for q.fullLocked(0, 0) && len(out) < 256 {
		off, requeued, has := q.headLocked()
		if !has {
			break
		}
		m, _, err := q.readLocked(off, requeued)
		q.popHeadLocked(requeued, off)
		if err != nil {
			q.settleLocked(off, 0)
			continue
		}
		q.unacked[off] = inflight{size: m.Size(), dying: true}
		out = append(out, deadAt{off: off, d: Dead{Message: m, Reason: MaxLen}})
	}
	return out
}

// deadLetter publishes dead copies (when the queue has a dead-letter
// exchange) and then settles the originals, which the caller marked dying
// in unacked.
func (q *Queue) deadLetter(dead []deadAt) {
	if len(dead) == 0 {
		return
	}
	if q.opts.Config.DeadLetter && q.opts.DeadLetter != nil {
		ds := make([]Dead, len(dead))
		for i, d := range dead {
			ds[i] = d.d
		}
		if err := q.opts.DeadLetter(q, ds); err != nil {
			// The copies are not safe: keep the originals, back in line.
			q.lg.Warn("dead-lettering failed; messages kept", "err", err)
			q.mu.Lock()
			for _, d := range dead {
				delete(q.unacked, d.off)
				q.insertRequeuedLocked(d.off)
			}
			q.mu.Unlock()
			return
		}
		q.Stats.DeadLettered.Add(int64(len(dead)))
	} else {
		q.Stats.Dropped.Add(int64(len(dead)))
	}
	q.mu.Lock()
	for _, d := range dead {
		if f, ok := q.unacked[d.off]; ok {
			delete(q.unacked, d.off)
			q.settleLocked(d.off, f.size)
		}
	}
	q.mu.Unlock()
}

// settleLocked records off as settled for good.
func (q *Queue) settleLocked(off, size int64) {
	if q.settled.add(off, off+1) == 0 {
		return
	}
	q.acks.record(off, off+1)
	q.live--
	q.liveBytes -= size
	q.scheduleFlushLocked()
}

func (q *Queue) insertRequeuedLocked(off int64) {
	i, found := slices.BinarySearch(q.requeued, off)
	if !found {
		q.requeued = slices.Insert(q.requeued, i, off)
	}
}

// Get takes one message for basic.get. ok is false when none is ready.
func (q *Queue) Get(noAck bool) (d Delivery, ok bool) {
	if d, _, ok, _ = q.take(true, noAck); ok {
		return d, true
	}
	// A message is readable only once written. One published a moment ago
	// (say by a client that has already disconnected) may still be on its
	// way to the file; basic.get should find it, as in RabbitMQ, so wait
	// for the last write and look once more. (It may also have become
	// readable since the first look: look again in any case.)
	q.mu.Lock()
	app := q.lastApp
	q.mu.Unlock()
	if app == nil || app.LastOffset >= q.log.ReadableEnd() && app.Wait() != nil {
		return d, false
	}
	d, _, ok, _ = q.take(true, noAck)
	return d, ok
}

// Ack settles delivered offsets.
func (q *Queue) Ack(offsets ...int64) {
	q.mu.Lock()
	n := 0
	for _, off := range offsets {
		if f, ok := q.unacked[off]; ok && !f.dying {
			delete(q.unacked, off)
			q.settleLocked(off, f.size)
			n++
		}
	}
	q.mu.Unlock()
	q.Stats.Acked.Add(int64(n))
	q.poke()
}

// Requeue returns delivered offsets to the head of the queue, to be
// redelivered (flagged redelivered) before newer messages. A message past
// the queue's delivery limit is dead-lettered instead.
func (q *Queue) Requeue(offsets ...int64) {
	var over []int64
	q.mu.Lock()
	for _, off := range offsets {
		f, ok := q.unacked[off]
		if !ok || f.dying {
			continue
		}
		n := f.redelivs + 1
		if lim := q.opts.Config.DeliveryLimit; lim >= 0 && int64(n) > lim {
			over = append(over, off)
			continue
		}
		delete(q.unacked, off)
		q.redelivs[off] = n
		q.insertRequeuedLocked(off)
	}
	q.mu.Unlock()
	if len(over) > 0 {
		q.discard(over, DeliveryLimit)
	}
	q.poke()
}

// Reject settles delivered offsets without requeueing them: dead-lettered
// (reason rejected) when the queue has a dead-letter exchange, dropped
// otherwise.
func (q *Queue) Reject(offsets ...int64) { q.discard(offsets, Rejected) }

func (q *Queue) discard(offsets []int64, why Reason) {
	var dead []deadAt
	q.mu.Lock()
	for _, off := range offsets {
		f, ok := q.unacked[off]
		if !ok || f.dying {
			continue
		}
		if !q.opts.Config.DeadLetter || q.opts.DeadLetter == nil {
			delete(q.unacked, off)
			q.settleLocked(off, f.size)
			q.Stats.Dropped.Add(1)
			continue
		}
		m, _, err := q.readLocked(off, true)
		if err != nil {
			delete(q.unacked, off)
			q.settleLocked(off, f.size)
			continue
		}
		f.dying = true
		q.unacked[off] = f
		dead = append(dead, deadAt{off: off, d: Dead{Message: m, Reason: why}})
	}
	q.mu.Unlock()
	q.deadLetter(dead)
	q.poke()
}

// Purge settles every ready message and returns how many.
func (q *Queue) Purge() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.live - int64(len(q.unacked))
	for _, off := range q.requeued {
		q.settled.add(off, off+1)
		q.acks.record(off, off+1)
	}
	q.requeued = q.requeued[:0]
	clear(q.redelivs)
	if q.next < q.leo {
		q.settled.add(q.next, q.leo)
		q.acks.record(q.next, q.leo)
		q.next = q.leo
	}
	q.rd = nil
	q.live = int64(len(q.unacked))
	q.liveBytes = 0
	for _, f := range q.unacked {
		q.liveBytes += f.size
	}
	q.scheduleFlushLocked()
	return n
}

// scheduleFlushLocked writes buffered ack entries soon (and moves the log
// start past fully settled segments), coalescing many settles into one
// write.
func (q *Queue) scheduleFlushLocked() {
	if q.flushing || q.closed {
		return
	}
	q.flushing = true
	time.AfterFunc(5*time.Millisecond, q.flush)
}

func (q *Queue) flush() {
	q.mu.Lock()
	q.flushing = false
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.acks.recordMark(q.next)
	q.noteAckWrite(q.acks.write(&q.settled))
	start := q.log.StartOffset()
	low := q.settled.nextAbsent(start)
	if hw := q.log.HighWatermark(); low > hw {
		low = hw
	}
	compact := q.acks.needsCompaction(len(q.settled.r))
	q.mu.Unlock()
	// Move the start (a durable checkpoint: two fsyncs) only when that
	// frees a whole segment, not on every flush.
	if segs := q.log.SegmentBaseOffsets(); len(segs) < 2 || low < segs[1] {
		low = start
	}
	if low > start {
		// Durably move the start: whole segments below it go away.
		if err := q.log.DeleteRecordsBefore(low); err != nil && !errors.Is(err, storage.ErrClosed) {
			q.lg.Error("moving the queue's log start failed", "err", err)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.settled.trimBelow(q.log.StartOffset())
	if compact {
		if err := q.acks.compact(&q.settled); err != nil {
			q.acks.stale = true // rewrite it whole next time, from the set
			q.noteAckWrite(err)
		}
	}
	q.maybeCompactLocked()
}

// noteAckWrite says once, loudly, that acks cannot be recorded, and once
// that they can again; while they cannot, it retries every second. The
// settles are kept in memory meanwhile (AMQP allows at-least-once: a crash
// before they are written delivers those messages again).
func (q *Queue) noteAckWrite(err error) {
	switch {
	case err != nil && q.ackErr == nil:
		q.ackErr = err
		q.lg.Error("acks cannot be written to the queue's ack record; they are kept in memory and written when the disk takes writes again (if the broker stops first, the acked messages are delivered again after the restart)", "err", err)
	case err == nil && q.ackErr != nil:
		q.ackErr = nil
		q.lg.Info("the queue's ack record is written again")
	}
	if err != nil && !q.flushing && !q.closed {
		q.flushing = true
		time.AfterFunc(time.Second, q.flush)
	}
}

// run is the dispatcher: it hands ready messages to consumers with credit
// whenever data arrives, credit returns or a head expires.
func (q *Queue) run() {
	defer close(q.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		changed := q.log.Changed()
		wake := q.dispatch()
		timer.Stop()
		if !wake.IsZero() {
			timer.Reset(max(time.Until(wake), time.Millisecond))
		}
		select {
		case <-q.stop:
			return
		case <-q.kick:
		case <-changed:
		case <-timer.C:
		}
	}
}

// dispatch delivers until nothing is ready or nobody has credit, and says
// when to look again for an expiring head.
func (q *Queue) dispatch() time.Time {
	for {
		select {
		case <-q.stop:
			return time.Time{}
		default:
		}
		d, c, ok, wake := q.take(false, false)
		if !ok {
			if wake.IsZero() && q.opts.Config.MessageTTL >= 0 {
				// Nothing visible or nobody to deliver to: look again
				// in a while so that expiry still drains the queue.
				wake = q.now().Add(min(q.opts.Config.MessageTTL+time.Millisecond, time.Second))
			}
			return wake
		}
		c.c.Deliver(d)
	}
}

// Close stops the dispatcher and closes the log and ack record, keeping
// the data.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.stop)
	q.mu.Unlock()
	<-q.done
	q.compaction.wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.acks.recordMark(q.next)
	return errors.Join(q.acks.close(), q.log.Close())
}

// Delete closes the queue, tells its consumers, and removes its data.
func (q *Queue) Delete() error {
	return errors.Join(q.Shutdown(), os.RemoveAll(q.opts.Dir))
}

// Shutdown tells the consumers the queue is gone and closes it, keeping
// its data: the queue is reopened from disk next (after a storage
// failure), and what its consumers had unacked comes back as redelivered.
func (q *Queue) Shutdown() error {
	q.mu.Lock()
	consumers := q.consumers
	q.consumers = nil
	q.mu.Unlock()
	for _, e := range consumers {
		e.c.Cancelled()
	}
	return q.Close()
}

// Failed returns why the queue's log refuses writes, nil if it does not.
// A failed queue is reopened from disk (Shutdown, then Open): its state
// (cursor, unacked, counts) described writes that may not have reached
// the disk.
func (q *Queue) Failed() error { return q.log.Failed() }
