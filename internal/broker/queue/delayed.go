package queue

import (
	"container/heap"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Delayed holds messages until a due time, durably: the store behind an
// x-delayed-message exchange.
//
// Messages are appended, one per batch, to a log in arrival order with the
// batch timestamps set to the due time (ms). Only messages due within the
// next window are indexed in memory (a heap of due time and offset); the
// rest are found again by scanning batch headers — 61 bytes each, no
// message bodies — when the window moves past the earliest of them. So
// memory follows the rate of messages coming due, not how many wait, and
// millions of pending delays cost disk. Released messages are settled in
// the same ack record a queue uses, and the log start moves past the
// settled prefix, deleting whole segments.
//
// A message is released by Options.Release (the broker routes it through
// the exchange's underlying type and waits until it is durable in its
// queues) and settled only afterwards: a crash between the two delivers it
// twice, never loses it.
type Delayed struct {
	log     *storage.Log
	release func(m message.Message) error
	now     func() time.Time
	lg      *slog.Logger
	dir     string

	mu          sync.Mutex
	settled     intervals
	acks        *ackLog
	due         dueHeap
	loadedUntil int64 // every unsettled message due at or before this is in due
	farthest    int64 // earliest due time beyond loadedUntil seen by the last scan
	closed      bool

	// tail: the store runs over a log it does not own (OpenDelayedTail);
	// scannedTo is where the messages appended by that log's owner have
	// been looked at, askedStart the highest log start asked of it.
	tail       *DelayedTail
	scannedTo  int64
	askedStart int64

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// DelayedTail is what a delayed store runs over when its log is another's:
// a replicated log (a delayed exchange on a cluster) that the owner
// appends to, one message a batch with the batch timestamps set to the
// due time, as Publish writes. The store only reads it: it releases what
// comes due, hands its settles to Record (ack-record entries, as a tail
// queue does: Tail) instead of writing an ack file, and asks DeleteBefore
// to move the log start past settled messages.
type DelayedTail struct {
	Log *storage.Log
	// Acks are the ack-record entries settled so far (AckRecord.Entries).
	Acks []byte
	// Record takes ack-record entries to make them part of the log's
	// state; it must not block on the store.
	Record func(entries []byte)
	// DeleteBefore asks the owner to move the log start to offset; it
	// must not block on the store.
	DeleteBefore func(offset int64)
}

// DelayedMessageTime is the batch timestamp a message due at at is stored
// with: at in milliseconds, rounded up (a message is released once the
// clock's millisecond reaches its due one, so rounding down could release
// it up to a millisecond early).
func DelayedMessageTime(at time.Time) int64 {
	ms := at.UnixMilli()
	if at.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

// delayWindow is how far ahead due messages are indexed in memory.
const delayWindow = time.Minute

type dueEntry struct{ at, off int64 }

type dueHeap []dueEntry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].off < h[j].off
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// OpenDelayed opens (creating if needed) the store in dir; release is
// called for each message when it comes due.
func OpenDelayed(dir string, so storage.Options, now func() time.Time, lg *slog.Logger, release func(message.Message) error) (*Delayed, error) {
	if now == nil {
		now = time.Now
	}
	if lg == nil {
		lg = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	so.Now = now
	l, err := storage.Open(dir+"/log", so)
	if err != nil {
		return nil, err
	}
	d := &Delayed{log: l, release: release, now: now, lg: lg, dir: dir, loadedUntil: -1 << 62, farthest: -1 << 62,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if d.acks, err = openAckLog(dir, &d.settled); err != nil {
		l.Close()
		return nil, err
	}
	if err := d.acks.forgetFrom(&d.settled, l.HighWatermark()); err != nil {
		d.acks.close()
		l.Close()
		return nil, err
	}
	d.settled.trimBelow(l.StartOffset())
	go d.run()
	return d, nil
}

// OpenDelayedTail opens a store over t.Log, a log it does not own
// (DelayedTail); release is called for each message when it comes due.
// Closing it leaves the log open.
func OpenDelayedTail(t DelayedTail, now func() time.Time, lg *slog.Logger, release func(message.Message) error) (*Delayed, error) {
	if t.Log == nil || t.Record == nil || t.DeleteBefore == nil {
		return nil, errors.New("queue: DelayedTail needs Log, Record and DeleteBefore")
	}
	if len(t.Acks)%ackEntryLen != 0 || validAckEntries(t.Acks) != len(t.Acks) {
		return nil, ErrBadAckEntries
	}
	if now == nil {
		now = time.Now
	}
	if lg == nil {
		lg = slog.Default()
	}
	d := &Delayed{log: t.Log, release: release, now: now, lg: lg, loadedUntil: -1 << 62, farthest: -1 << 62,
		tail: &t, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	replayAckEntries(t.Acks, &d.settled)
	start := t.Log.StartOffset()
	d.settled.trimBelow(start)
	d.scannedTo, d.askedStart = start, start
	go d.run()
	return d, nil
}

// Publish stores m until at. The message is released no earlier than at,
// once Appended.Wait reports it durable.
func (d *Delayed) Publish(m *message.Message, at time.Time) (*storage.Appended, error) {
	rec, err := m.Record()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrDeleted
	}
	if d.tail != nil {
		return nil, errors.New("queue: a delayed store over another's log takes no publishes")
	}
	ms := DelayedMessageTime(at)
	app, err := d.log.Append(storage.BuildRecordBatch(0, ms, []storage.Record{rec}))
	if err != nil {
		return nil, err
	}
	if ms <= d.loadedUntil {
		heap.Push(&d.due, dueEntry{at: ms, off: app.BaseOffset})
	} else if d.farthest < d.loadedUntil || ms < d.farthest {
		d.farthest = ms
	}
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return app, nil
}

// Pending is how many messages wait.
func (d *Delayed) Pending() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	start, hw := d.log.StartOffset(), d.log.HighWatermark()
	return hw - start - d.settled.count(start, hw)
}

// scanLocked indexes every unsettled, durable message due by until that is
// not indexed yet, and notes the earliest one due later.
func (d *Delayed) scanLocked(until int64) error {
	from := d.loadedUntil
	far := int64(1<<63 - 1)
	err := d.log.ScanHeaders(d.log.StartOffset(), func(h storage.BatchHeader) bool {
		at := h.MaxTimestamp
		switch {
		case d.settled.contains(h.BaseOffset):
		case at > from && at <= until:
			heap.Push(&d.due, dueEntry{at: at, off: h.BaseOffset})
		case at > until && at < far:
			far = at
		}
		d.scannedTo = max(d.scannedTo, h.LastOffset()+1)
		return true
	})
	if err != nil {
		return err
	}
	d.loadedUntil, d.farthest = until, far
	return nil
}

// scanNewLocked indexes, in tail mode, the messages the log's owner
// appended since the last scan, as Publish indexes its own.
func (d *Delayed) scanNewLocked(hw int64) error {
	if d.scannedTo >= hw {
		return nil
	}
	return d.log.ScanHeaders(d.scannedTo, func(h storage.BatchHeader) bool {
		if h.BaseOffset < d.scannedTo {
			return true // the batch holding scannedTo began before it
		}
		switch at := h.MaxTimestamp; {
		case d.settled.contains(h.BaseOffset):
		case at <= d.loadedUntil:
			heap.Push(&d.due, dueEntry{at: at, off: h.BaseOffset})
		case d.farthest < d.loadedUntil || at < d.farthest:
			d.farthest = at
		}
		d.scannedTo = h.LastOffset() + 1
		return true
	})
}

func (d *Delayed) run() {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		changed := d.log.Changed()
		wait := d.step()
		timer.Reset(wait)
		select {
		case <-d.stop:
			return
		case <-d.kick:
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// step releases what is due and says how long to sleep.
func (d *Delayed) step() time.Duration {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return time.Hour
		}
		now := d.now().UnixMilli()
		if d.tail != nil {
			d.settled.trimBelow(d.log.StartOffset())
			if err := d.scanNewLocked(d.log.HighWatermark()); err != nil {
				d.lg.Error("delayed store scan failed", "err", err)
				d.mu.Unlock()
				return time.Second
			}
		}
		if horizon := now + delayWindow.Milliseconds(); d.loadedUntil < now || (d.farthest > d.loadedUntil && d.farthest <= horizon) {
			if err := d.scanLocked(horizon); err != nil {
				d.lg.Error("delayed store scan failed", "err", err)
				d.mu.Unlock()
				return time.Second
			}
		}
		hw := d.log.HighWatermark()
		if len(d.due) == 0 || d.due[0].at > now {
			wait := time.Duration(d.loadedUntil-now) * time.Millisecond / 2
			if len(d.due) > 0 {
				wait = min(wait, time.Duration(d.due[0].at-now)*time.Millisecond)
			}
			d.mu.Unlock()
			return max(wait, time.Millisecond)
		}
		e := d.due[0]
		if e.off >= hw {
			d.mu.Unlock()
			return 5 * time.Millisecond // not durable yet
		}
		heap.Pop(&d.due)
		b, err := d.log.Read(e.off, 1)
		d.mu.Unlock()
		var m message.Message
		if err == nil {
			_, err = storage.ReadRecords(b, func(off, _ int64, r storage.Record) bool {
				if off == e.off {
					m, err = message.FromRecord(r)
					return false
				}
				return true
			})
		}
		if err == nil {
			err = d.release(m)
		}
		d.mu.Lock()
		if err != nil && !errors.Is(err, storage.ErrOffsetOutOfRange) {
			d.lg.Warn("releasing a delayed message failed; retrying", "offset", e.off, "err", err)
			heap.Push(&d.due, dueEntry{at: now + 1000, off: e.off})
			d.mu.Unlock()
			return 100 * time.Millisecond
		}
		if d.settled.add(e.off, e.off+1) > 0 {
			if d.tail != nil {
				d.tail.Record(appendAckEntry(nil, e.off, e.off+1))
			} else {
				d.acks.record(e.off, e.off+1)
				d.acks.flush()
			}
		}
		start := d.log.StartOffset()
		low := min(d.settled.nextAbsent(start), hw)
		if d.tail != nil {
			ask := low > max(start, d.askedStart) && (low > start+1000 || low == hw)
			if ask {
				d.askedStart = low
			}
			d.mu.Unlock()
			if ask {
				d.tail.DeleteBefore(low)
			}
			continue
		}
		d.mu.Unlock()
		if low > start+1000 || (low == hw && low > start) {
			d.log.DeleteRecordsBefore(low)
			d.mu.Lock()
			d.settled.trimBelow(d.log.StartOffset())
			if d.acks.needsCompaction(len(d.settled.r)) {
				d.acks.compact(&d.settled)
			}
			d.mu.Unlock()
		}
	}
}

// Close stops releasing and closes the store, keeping its data.
func (d *Delayed) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.stop)
	d.mu.Unlock()
	<-d.done
	if d.tail != nil {
		return nil // the log and the settles are the owner's
	}
	return errors.Join(d.acks.close(), d.log.Close())
}

// Delete closes the store and removes its data (in tail mode, the owner
// removes the log).
func (d *Delayed) Delete() error {
	err := d.Close()
	if d.tail != nil {
		return err
	}
	return errors.Join(err, os.RemoveAll(d.dir))
}
