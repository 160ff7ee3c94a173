package queue

import (
	"errors"
	"log/slog"
	"os"
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
	Dir     string // the log and the ack file; unused (may be empty) with Tail
	Storage storage.Options
	Config  Config
	Now     func() time.Time
	// DeadLetter publishes dead-lettered copies (through the dead-letter
	// exchange, x-death updated) and returns once they are durable; the
	// originals are settled afterwards. Called without queue locks, from
	// queue goroutines. Nil: dead messages are dropped.
	DeadLetter func(q *Queue, dead []Dead) error
	Logger     *slog.Logger
	// FlowBacklog is the ready messages past which the queue, while its
	// consumers take messages, asks its publishers to wait (Flow, see
	// flow.go). Default (0) DefaultFlowBacklog; negative: never.
	FlowBacklog int64
	// FlowBacklogBytes is the ready body bytes past which the queue, while
	// its consumers take messages, asks its publishers to wait. Default
	// (0) DefaultFlowBacklogBytes; negative: never.
	FlowBacklogBytes int64
	// Tail, when set, makes the queue a reader of a log another owner
	// appends to, its ack record replicated through Tail.Record rather
	// than written to a file (tail.go). Nil: the queue owns a log and an
	// ack file under Dir.
	Tail *Tail
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
	// Queue settles the delivery: the queue (a priority queue's lane) it
	// came from, or the node it was forwarded from (a queue on another
	// node of a cluster); nil for a stream's, which need no settling.
	Queue         Settler
	Offset        int64
	Message       message.Message
	Redelivered   bool
	DeliveryCount int32 // earlier deliveries of this message that came back
}

// Settler takes a delivery's ack, requeue or reject, by its Offset.
type Settler interface {
	Ack(offsets ...int64)
	Requeue(offsets ...int64)
	Reject(offsets ...int64)
}

var _ Settler = (*Queue)(nil)

// Queue is a log plus a delivery cursor and an ack record: the runtime
// around the queue's core (core.go). See doc.go.
type Queue struct {
	opts Options
	// cfg is the Config in force: opts.Config until SetConfig changes it
	// (its copy in the core changes with it, under mu).
	cfg  atomic.Pointer[Config]
	log  *storage.Log // in tail mode, Tail.Log
	tail *Tail        // opts.Tail: nil unless in tail mode
	now  func() time.Time
	lg   *slog.Logger

	mu   sync.Mutex
	c    *core
	acks *ackLog // its buffer under mu, its file under ackMu (acklog.go)
	// ackMu guards the ack record's file; taken before mu, never under it.
	ackMu    sync.Mutex
	lastApp  *storage.Appended // the last append, for basic.get to wait on while it is not yet durable
	flushing bool
	closed   bool
	deleting bool // Delete: Close need not make the ack record or log durable
	// compaction is compact.go's state.
	compaction compaction
	flow       flowState // credit flow, see flow.go
	ackErr     error     // the ack record's last write failed with this (noteAckWrite)
	// askedStart is the highest log start asked of Tail.DeleteBefore;
	// under ackMu.
	askedStart int64
	// spare is the dispatcher's deliveries slice, handed back after it
	// performed them (etcd raft's Advance); only run touches it.
	spare []outgoing

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	Stats Stats
}

// Stats are running totals, read with atomic loads.
type Stats struct {
	Published, Delivered, Acked, Redelivered, DeadLettered, Dropped atomic.Int64
	DeliveredNoAck, Got, GotNoAck                                   atomic.Int64
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
	// Of Delivered: deliveries to consumers that do not ack, deliveries
	// to basic.get, and of these those with no-ack.
	DeliveredNoAck, Got, GotNoAck int64
}

// Add returns the sum of two snapshots.
func (t Totals) Add(o Totals) Totals {
	return Totals{
		Published: t.Published + o.Published, Delivered: t.Delivered + o.Delivered,
		Acked: t.Acked + o.Acked, Redelivered: t.Redelivered + o.Redelivered,
		DeadLettered: t.DeadLettered + o.DeadLettered, Dropped: t.Dropped + o.Dropped,
		DeliveredNoAck: t.DeliveredNoAck + o.DeliveredNoAck, Got: t.Got + o.Got, GotNoAck: t.GotNoAck + o.GotNoAck,
	}
}

// Totals returns the queue's running totals.
func (q *Queue) Totals() Totals {
	return Totals{
		Published: q.Stats.Published.Load(), Delivered: q.Stats.Delivered.Load(),
		Acked: q.Stats.Acked.Load(), Redelivered: q.Stats.Redelivered.Load(),
		DeadLettered: q.Stats.DeadLettered.Load(), Dropped: q.Stats.Dropped.Load(),
		DeliveredNoAck: q.Stats.DeliveredNoAck.Load(), Got: q.Stats.Got.Load(), GotNoAck: q.Stats.GotNoAck.Load(),
	}
}

// Open opens (creating if needed) the queue stored in opts.Dir, or with
// opts.Tail the queue over Tail.Log, and starts its dispatcher.
func Open(opts Options) (*Queue, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var lg *storage.Log
	if opts.Tail != nil {
		if err := opts.Tail.check(); err != nil {
			return nil, err
		}
		lg = opts.Tail.Log
	} else {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, err
		}
		so := opts.Storage
		so.Now = opts.Now
		// Deliver a message as soon as it is written, while its fsync is
		// under way, as RabbitMQ does: its publisher's confirm still
		// waits for the disk. If the broker dies first, the message is
		// lost with its confirm never sent (the publisher sends it
		// again), and acks recorded for it are dropped at recovery
		// (recover: settled at or above the high watermark).
		so.ReadBeforeSync = true
		var err error
		if lg, err = storage.Open(opts.Dir+"/log", so); err != nil {
			return nil, err
		}
	}
	q := &Queue{
		opts: opts, log: lg, tail: opts.Tail, now: opts.Now, lg: opts.Logger.With("queue", opts.Name),
		c:    newCore(opts.Config, opts.Config.DeadLetter && opts.DeadLetter != nil, opts.Now()),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	q.cfg.Store(&opts.Config)
	if opts.Tail != nil {
		q.c.markAhead = tailMarkAhead
	}
	switch {
	case opts.FlowBacklog == 0:
		q.flow.bound = DefaultFlowBacklog
	case opts.FlowBacklog > 0:
		q.flow.bound = opts.FlowBacklog
	}
	switch {
	case opts.FlowBacklogBytes == 0:
		q.flow.boundBytes = DefaultFlowBacklogBytes
	case opts.FlowBacklogBytes > 0:
		q.flow.boundBytes = opts.FlowBacklogBytes
	}
	q.flow.msgs.init(q.flow.bound)
	q.flow.bytes.init(q.flow.boundBytes)
	if q.tail != nil {
		// The settled set and the mark replicated so far. Nothing to
		// forget: the log holds only committed messages.
		acks := q.tail.Acks[:validAckEntries(q.tail.Acks)]
		q.acks = &ackLog{mark: replayAckEntries(acks, &q.c.settled)}
	} else {
		var err error
		if q.acks, err = openAckLog(opts.Dir, &q.c.settled); err != nil {
			lg.Close()
			return nil, err
		}
		if err := q.acks.forgetFrom(&q.c.settled, lg.HighWatermark()); err != nil {
			q.acks.close()
			lg.Close()
			return nil, err
		}
	}
	if err := q.recover(); err != nil {
		if q.tail == nil {
			q.acks.close()
			lg.Close()
		}
		return nil, err
	}
	go q.run()
	return q, nil
}

// recover restores the core from the log and the ack record: the cursor
// and counters, compaction gaps settled, the body bytes of what is live.
func (q *Queue) recover() error {
	c := q.c
	start, hw := q.log.StartOffset(), q.log.HighWatermark()
	c.restore(start, hw, q.acks.mark)
	// Body bytes of the live messages: read them when a byte limit needs
	// the exact figure, estimate from batch sizes otherwise.
	exact := q.opts.Config.MaxLengthBytes >= 0
	for off := c.next; off < hw; {
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
				if n := c.settled.add(off, h.BaseOffset); n > 0 {
					q.acks.record(off, h.BaseOffset)
					c.live -= n
				}
			}
			if !c.settled.contains(h.BaseOffset) {
				if exact {
					storage.ReadRecords(b, func(_, _ int64, r storage.Record) bool {
						c.liveBytes += messageSize(r)
						return false
					})
				} else {
					c.liveBytes += int64(max(h.Size()-recordOverhead, 0))
				}
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return nil
}

// messageSize is the size a queue counts for the message stored in r:
// the Size of the message it decodes to (message.FromRecord takes r.Value
// as the body), as Publish counts it, without decoding the rest.
func messageSize(r storage.Record) int64 { return int64(len(r.Value)) }

// recordOverhead estimates the stored bytes of a message that are not its
// body (batch header, record framing, exchange and property headers).
const recordOverhead = 100

// Name is the queue's name.
func (q *Queue) Name() string { return q.opts.Name }

// Config is the queue's configuration.
func (q *Queue) Config() Config { return *q.cfg.Load() }

// SetConfig changes the queue's configuration while it runs (a policy
// changed): the core decides with cfg from now on, and the dispatcher
// looks at the head again at once, so a lower length limit drops (or
// dead-letters) the excess heads and a shorter TTL expires old heads
// without waiting for a publish. A byte limit set on a queue opened
// without one counts the ready bytes as estimated when it was opened
// (from batch sizes), exact for what arrives after. It does no I/O and
// calls nothing outside the queue, so it may be called under the broker's
// locks.
func (q *Queue) SetConfig(cfg Config) {
	q.mu.Lock()
	q.cfg.Store(&cfg)
	q.c.setConfig(cfg, cfg.DeadLetter && q.opts.DeadLetter != nil)
	q.mu.Unlock()
	q.poke()
}

// Publish appends m. The returned Appended says when it is durable (Wait);
// the message is deliverable once written, which may be sooner. A tail
// queue refuses with ErrTail: its log's owner appends.
func (q *Queue) Publish(m *message.Message) (*storage.Appended, error) {
	if q.tail != nil {
		return nil, ErrTail
	}
	rec, err := m.Record()
	if err != nil {
		return nil, err
	}
	size := m.Size()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, ErrDeleted
	}
	if a := q.c.admitPublish(size); a != admit {
		q.mu.Unlock()
		return nil, q.refused(m, a)
	}
	now := q.now()
	bp := batchBufs.Get().(*[]byte)
	*bp = storage.AppendRecordBatch(*bp, 0, now.UnixMilli(), []storage.Record{rec})
	app, err := q.log.Append(*bp) // copies it
	if cap(*bp) <= maxPooledBatch {
		batchBufs.Put(bp)
	}
	if err != nil {
		q.mu.Unlock()
		return nil, err
	}
	q.lastApp = app
	over := q.c.enqueued(app.LastOffset, size, now)
	q.enterFlowLocked(now)
	q.mu.Unlock()
	q.Stats.Published.Add(1)
	if over {
		q.poke()
	}
	return app, nil
}

// Admit says whether the queue would take m now, as Publish decides before
// it appends: nil to admit, ErrRejected when full under reject-publish,
// and under reject-publish-dlx ErrRejected with m dead-lettered (reason
// maxlen); ErrDeleted once closed. A quorum queue's leader asks before it
// proposes a publish. It changes nothing else.
func (q *Queue) Admit(m *message.Message) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrDeleted
	}
	a := q.c.admitPublish(m.Size())
	q.mu.Unlock()
	if a == admit {
		return nil
	}
	return q.refused(m, a)
}

// refused turns away a publish the core did not admit, without the lock:
// under reject-publish-dlx m is dead-lettered first.
func (q *Queue) refused(m *message.Message, a admission) error {
	if a == rejectDLX {
		if err := q.opts.DeadLetter(q, []Dead{{Message: *m, Reason: MaxLen}}); err != nil {
			q.lg.Warn("dead-lettering a rejected publish failed", "err", err)
		}
	}
	return ErrRejected
}

// batchBufs recycles the buffers Publish encodes a message's record
// batch into before the log copies it: shared by every queue, so that a
// queue holds none while idle. Buffers past maxPooledBatch (a big
// message's) are left to the collector.
var batchBufs = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBatch = 64 << 10

// Counts returns the ready and unacked message counts and the consumer
// count.
func (q *Queue) Counts() (ready, unacked int64, consumers int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.c.counts()
}

// LastUsed is when the queue last saw a publish, a get, a consumer come
// or go (for x-expires). A queue with consumers is in use now.
func (q *Queue) LastUsed() (t time.Time, inUse bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.c.lastUsed, len(q.c.consumers) > 0
}

// Touch marks the queue used (a redeclare, for x-expires).
func (q *Queue) Touch() {
	q.mu.Lock()
	q.c.touch(q.now())
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
	id, err := q.c.addConsumer(c, opts, q.now())
	if err == nil {
		q.poke()
	}
	return id, err
}

// RemoveConsumer unregisters a consumer. Its unacked deliveries stay
// unacked: in AMQP they belong to the channel.
func (q *Queue) RemoveConsumer(id uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.c.removeConsumer(id, q.now())
	q.poke()
}

// ActiveConsumer reports whether consumer id is the single active one of a
// single-active-consumer queue (or the queue is not one).
func (q *Queue) ActiveConsumer(id uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.c.activeConsumer(id)
}

// takeReadyLocked takes the core's effects and does, under the lock, the
// part that is only memory: settled ranges go into the ack record's
// buffer and its write is scheduled. The caller performs the rest
// (perform) after unlocking.
func (q *Queue) takeReadyLocked() ready {
	r := q.c.ready()
	for _, s := range r.settled {
		q.acks.record(s.from, s.to)
	}
	// Recorded: hand the slice back for the next settles (Advance).
	q.c.out.settled, r.settled = r.settled[:0], nil
	if r.mark > 0 {
		q.acks.recordMark(r.mark)
	}
	if r.flush {
		q.scheduleFlushLocked()
	}
	return r
}

// writeMark writes the ack record's buffered entries, a new delivered mark
// among them, before the deliveries that moved the cursor go out: a crash
// (the process killed, say) after a delivery then always finds the mark,
// and the message comes back flagged redelivered. It is a write to the
// page cache, without fsync, once per dispatch round that moves the
// cursor; a failed write is retried as flush retries.
func (q *Queue) writeMark() {
	q.ackMu.Lock()
	q.mu.Lock()
	if q.closed {
		// Close writes what is buffered.
		q.mu.Unlock()
		q.ackMu.Unlock()
		return
	}
	buf := q.acks.takeBuffered()
	q.mu.Unlock()
	err := q.writeAcks(buf)
	q.ackMu.Unlock()
	if err != nil {
		q.mu.Lock()
		if !q.closed {
			q.noteAckWrite(err)
		}
		q.mu.Unlock()
	}
}

// perform carries out the effects that need the network or the disk,
// without the queue's lock: deliveries, reads of the head (fed back to the
// core), dead-letter publishes.
func (q *Queue) perform(r ready) {
	if r.mark > 0 {
		q.writeMark()
	}
	if r.delivered > 0 {
		q.Stats.Delivered.Add(r.delivered)
	}
	if r.redelivered > 0 {
		q.Stats.Redelivered.Add(r.redelivered)
	}
	if r.dropped > 0 {
		q.Stats.Dropped.Add(r.dropped)
	}
	if r.deliveredNoAck > 0 {
		q.Stats.DeliveredNoAck.Add(r.deliveredNoAck)
	}
	if r.got > 0 {
		q.Stats.Got.Add(r.got)
		q.Stats.GotNoAck.Add(r.gotNoAck)
	}
	if len(r.deliveries) > 0 {
		var size int64
		for _, o := range r.deliveries {
			size += int64(len(o.d.Message.Body))
		}
		q.flow.countDeliveries(int64(len(r.deliveries)), size, q.now())
	}
	for _, o := range r.deliveries {
		o.d.Queue = q
		o.to.c.Deliver(o.d)
	}
	for _, rq := range r.reads {
		q.load(rq)
	}
	if len(r.dead) > 0 {
		q.deadLetter(r.dead)
	}
}

// readAhead is how much the cursor reads at once.
const readAhead = 256 << 10

// read reads the message at r.off (and with r.ahead those after it in the
// same read). It takes no lock: the log serves concurrent reads.
func (q *Queue) read(r readReq) ([]loadedMsg, error) {
	n := 1
	if r.ahead {
		n = readAhead
	}
	b, err := q.log.Read(r.off, n)
	if err != nil {
		return nil, err
	}
	// Size out to the records read, so it is allocated once.
	count := 0
	for p := b; len(p) > 0; {
		h, err := storage.ParseBatchHeader(p)
		if err != nil || h.Size() > len(p) {
			break
		}
		count += int(h.NumRecords)
		p = p[h.Size():]
	}
	var (
		out  = make([]loadedMsg, 0, count)
		ferr error
		stop bool
	)
	each := func(o, t int64, rec storage.Record) bool {
		if o < r.off {
			return true
		}
		if o > r.off && (!r.ahead || len(out) == 0) {
			stop = true
			return false
		}
		m, err := message.FromRecord(rec)
		if err != nil {
			if o == r.off {
				ferr, stop = err, true
				return false
			}
			return true // left out: read again, and found unreadable, at the head
		}
		out = append(out, loadedMsg{off: o, m: m, ts: t})
		stop = !r.ahead
		return r.ahead
	}
	for len(b) > 0 && !stop {
		var n int
		if n, err = storage.ReadRecords(b, each); err != nil {
			if len(out) > 0 {
				err = nil // a bad batch past the head: met again as the head
			}
			break
		}
		b = b[n:]
	}
	if err == nil {
		err = ferr
	}
	if err == nil && len(out) == 0 {
		err = storage.ErrCorruptBatch
	}
	return out, err
}

// load reads what the core asked for and hands it back. ok is false when
// the message was unreadable (and so settled).
func (q *Queue) load(r readReq) (ok bool) {
	msgs, err := q.read(r)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true
	}
	if err != nil {
		// An unreadable message cannot be delivered; settle it rather
		// than wedge the queue.
		q.lg.Error("unreadable message settled", "offset", r.off, "err", err)
		q.c.unreadable(r.off)
	}
	q.c.readDone(msgs)
	rd := q.takeReadyLocked()
	q.mu.Unlock()
	q.perform(rd)
	return err == nil
}

// deadLetter publishes dead copies and then settles the originals, which
// the core keeps in unacked, dying, meanwhile. Messages the core did not
// have loaded (rejected deliveries) are read first, without the lock.
func (q *Queue) deadLetter(dead []deadAt) {
	var bad []int64
	ds := make([]Dead, 0, len(dead))
	offs := make([]int64, 0, len(dead))
	for _, d := range dead {
		if !d.loaded {
			msgs, err := q.read(readReq{off: d.off})
			if err != nil {
				bad = append(bad, d.off)
				continue
			}
			d.d.Message = msgs[0].m
		}
		ds = append(ds, d.d)
		offs = append(offs, d.off)
	}
	if len(bad) > 0 {
		q.mu.Lock()
		for _, off := range bad {
			q.c.unreadable(off)
		}
		q.takeReadyLocked()
		q.mu.Unlock()
	}
	if len(ds) == 0 {
		return
	}
	err := q.opts.DeadLetter(q, ds)
	if err != nil {
		// The copies are not safe: keep the originals, back in line.
		q.lg.Warn("dead-lettering failed; messages kept", "err", err)
	} else {
		q.Stats.DeadLettered.Add(int64(len(ds)))
	}
	q.mu.Lock()
	q.c.deadLettered(offs, err == nil, q.now())
	q.takeReadyLocked()
	q.mu.Unlock()
}

// Get takes one message for basic.get. ok is false when none is ready.
func (q *Queue) Get(noAck bool) (d Delivery, ok bool) {
	if q.tail != nil {
		// Everything in the log is committed: take what it holds.
		q.catchUp()
		return q.get(noAck)
	}
	if d, ok = q.get(noAck); ok {
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
	return q.get(noAck)
}

func (q *Queue) get(noAck bool) (Delivery, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return Delivery{}, false
		}
		d, st := q.c.get(q.now(), q.readableLocked(), noAck)
		r := q.takeReadyLocked()
		q.mu.Unlock()
		q.perform(r)
		switch st {
		case took:
			d.Queue = q
			return d, true
		case empty:
			return Delivery{}, false
		}
	}
}

// Ack settles delivered offsets.
func (q *Queue) Ack(offsets ...int64) {
	q.mu.Lock()
	n := q.c.ack(offsets)
	r := q.takeReadyLocked()
	q.mu.Unlock()
	q.perform(r)
	q.Stats.Acked.Add(n)
	q.poke()
}

// Requeue returns delivered offsets to the head of the queue, to be
// redelivered (flagged redelivered) before newer messages. A message past
// the queue's delivery limit is dead-lettered instead.
func (q *Queue) Requeue(offsets ...int64) {
	q.mu.Lock()
	q.c.requeue(offsets)
	r := q.takeReadyLocked()
	q.mu.Unlock()
	q.perform(r)
	q.poke()
}

// Reject settles delivered offsets without requeueing them: dead-lettered
// (reason rejected) when the queue has a dead-letter exchange, dropped
// otherwise.
func (q *Queue) Reject(offsets ...int64) {
	q.mu.Lock()
	q.c.discard(offsets, Rejected)
	r := q.takeReadyLocked()
	q.mu.Unlock()
	q.perform(r)
	q.poke()
}

// Purge settles every ready message and returns how many.
func (q *Queue) Purge() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.c.purge()
	q.takeReadyLocked()
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
	q.ackMu.Lock()
	q.mu.Lock()
	q.flushing = false
	if q.closed {
		q.mu.Unlock()
		q.ackMu.Unlock()
		return
	}
	q.acks.recordMark(q.c.next)
	q.c.markSeen = max(q.c.markSeen, q.acks.mark)
	buf, mark := q.acks.takeBuffered(), q.acks.mark
	// Rewrite the file whole after a failed write, or when it has grown
	// well past what the set needs: from a copy of the set, taken with
	// the buffer so that the two agree.
	// A tail queue's ack record is replicated entries, never a file to
	// rewrite.
	var snap intervals
	rewrite := q.tail == nil && (q.acks.stale || q.acks.needsCompaction(len(q.c.settled.r)))
	if rewrite {
		snap = q.c.settled.clone()
	}
	start := q.log.StartOffset()
	low := q.c.settled.nextAbsent(start)
	if hw := q.log.HighWatermark(); low > hw {
		low = hw
	}
	q.mu.Unlock()
	var err error
	if rewrite {
		if err = q.acks.rewrite(&snap, mark); err == nil {
			q.acks.stale = false
		} else {
			q.acks.stale = true
		}
	} else {
		err = q.writeAcks(buf)
	}
	if q.tail != nil {
		q.askDeleteBefore(start, low)
		low = start
	}
	q.ackMu.Unlock()
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
	q.noteAckWrite(err)
	q.c.settled.trimBelow(q.log.StartOffset())
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

// dispatch steps the core until it has nothing more to hand out now,
// performing each step's effects without the lock, and says when to look
// again for an expiring head. A tail queue first enqueues what its log's
// owner appended.
func (q *Queue) dispatch() time.Time {
	if q.tail != nil {
		q.catchUp()
	}
	for {
		select {
		case <-q.stop:
			return time.Time{}
		default:
		}
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return time.Time{}
		}
		if q.c.out.deliveries == nil {
			q.c.out.deliveries = q.spare
		}
		st := q.c.dispatch(q.now(), q.readableLocked())
		r := q.takeReadyLocked()
		q.leaveFlowLocked(false)
		q.mu.Unlock()
		q.perform(r)
		// Reuse the deliveries' slice (only this goroutine makes them).
		clear(r.deliveries)
		q.spare = r.deliveries[:0]
		if st == empty {
			return r.wake
		}
	}
}

// Close stops the dispatcher and closes the log and ack record, keeping
// the data. A tail queue hands its last entries to Tail.Record and leaves
// the log to its owner.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	deleting := q.deleting
	close(q.stop)
	q.leaveFlowLocked(true)
	q.mu.Unlock()
	<-q.done
	q.compaction.wg.Wait()
	q.ackMu.Lock()
	defer q.ackMu.Unlock()
	if deleting && q.tail == nil {
		return errors.Join(q.acks.f.Close(), q.log.Discard())
	}
	q.mu.Lock()
	q.acks.recordMark(q.c.next)
	buf, mark := q.acks.takeBuffered(), q.acks.mark
	var snap intervals
	if q.acks.stale {
		snap = q.c.settled.clone()
	}
	q.mu.Unlock()
	if q.tail != nil {
		return q.writeAcks(buf)
	}
	var err error
	if q.acks.stale {
		err = q.acks.rewrite(&snap, mark)
	} else {
		err = q.acks.appendEntries(buf)
	}
	return errors.Join(err, q.acks.close(), q.log.Close())
}

// Delete closes the queue, tells its consumers, and removes its data,
// without making durable first what it removes. A tail queue removes
// nothing: its data is its log owner's.
func (q *Queue) Delete() error {
	q.mu.Lock()
	q.deleting = true
	q.mu.Unlock()
	if q.tail != nil {
		return q.Shutdown()
	}
	return errors.Join(q.Shutdown(), os.RemoveAll(q.opts.Dir))
}

// Shutdown tells the consumers the queue is gone and closes it, keeping
// its data: the queue is reopened from disk next (after a storage
// failure), and what its consumers had unacked comes back as redelivered.
func (q *Queue) Shutdown() error {
	q.mu.Lock()
	consumers := q.c.consumers
	q.c.consumers = nil
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
