package broker

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Durable queues open lazily at start. A start knows every queue from the
// metadata; opening one's storage (its log's tail checked, its ack record
// replayed, its dispatcher started) is what costs, about a millisecond of
// CPU and a few files a queue, seconds for ten thousand. So a start
// installs a lazyQueue for each classic and priority queue and serves at
// once: the first use of a queue opens it (a publish routed to it, a
// consumer, basic.get, purge, delete, a count asked by queue.declare, the
// management API or /metrics), and a warm-up in the background opens the
// rest, a few at a time, so that what an open does by itself (expiring
// messages whose TTL ran out while the broker was down and dead-lettering
// them, its TTL timer) happens soon after the start whether or not anyone
// uses the queue, as it did when every queue opened before the listeners.
//
// Counts are never guessed: asking an unopened queue its counts opens it,
// and the router opens the queues a listing needs before it takes its read
// lock (openLazyQueues), so that no open runs under Router.mu.
//
// Streams, and queues with x-expires (whose idle time counts from their
// open), open before the start completes, as before.

// queueWarmers is how many queues the background warm-up opens at once:
// fewer than a start's openers, to leave the cores to clients meanwhile.
const queueWarmers = 4

// lazyQueue is a queue.Handle whose queue opens on first use.
type lazyQueue struct {
	name  string
	dir   string
	since time.Time // when loaded: its last use until it opens
	open  func(cfg queue.Config) (queue.Handle, error)

	h atomic.Pointer[queue.Handle] // the open queue, once opened

	// openMu is held across the open, so that one open runs and Close
	// and Delete wait for it; it is never taken under Router.mu.
	openMu sync.Mutex

	// mu guards what follows; it is held for moments only (SetConfig
	// takes it under Router.mu).
	mu     sync.Mutex
	cfg    queue.Config // what to open with: the latest SetConfig
	cfgGen uint64       // SetConfig calls so far
	err    error        // why the open failed
	closed bool         // closed or deleted: it never opens
}

var _ queue.Handle = (*lazyQueue)(nil)

func newLazyQueue(name, dir string, cfg queue.Config, since time.Time, open func(queue.Config) (queue.Handle, error)) *lazyQueue {
	return &lazyQueue{name: name, dir: dir, cfg: cfg, since: since, open: open}
}

// opened returns the open queue, nil if it has not opened.
func (l *lazyQueue) opened() queue.Handle {
	if p := l.h.Load(); p != nil {
		return *p
	}
	return nil
}

// settled reports whether the queue is open, or will never open (closed,
// or its open failed).
func (l *lazyQueue) settled() bool {
	if l.opened() != nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed || l.err != nil
}

// get returns the queue, opening it if it has not opened; nil if it
// cannot (closed, or its open failed: Failed says why).
func (l *lazyQueue) get() queue.Handle {
	if h := l.opened(); h != nil {
		return h
	}
	l.openMu.Lock()
	defer l.openMu.Unlock()
	if h := l.opened(); h != nil {
		return h
	}
	l.mu.Lock()
	cfg, gen, stop := l.cfg, l.cfgGen, l.closed || l.err != nil
	l.mu.Unlock()
	if stop {
		return nil
	}
	h, err := l.open(cfg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.err = fmt.Errorf("%w: opening queue '%s': %w", ErrStorage, l.name, err)
		return nil
	}
	if l.cfgGen != gen { // a policy changed during the open
		if s, ok := h.(interface{ SetConfig(queue.Config) }); ok {
			s.SetConfig(l.cfg)
		}
	}
	l.h.Store(&h)
	return h
}

// unavailable is the error for a queue that cannot open.
func (l *lazyQueue) unavailable() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	return queue.ErrDeleted
}

func (l *lazyQueue) Name() string { return l.name }

func (l *lazyQueue) Config() queue.Config {
	if h := l.opened(); h != nil {
		return h.Config()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// SetConfig changes the configuration: the open queue's, or the one it
// opens with. It does no I/O (it may be called under Router.mu).
func (l *lazyQueue) SetConfig(cfg queue.Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	l.cfgGen++
	if h := l.opened(); h != nil {
		if s, ok := h.(interface{ SetConfig(queue.Config) }); ok {
			s.SetConfig(cfg)
		}
	}
}

func (l *lazyQueue) Publish(m *message.Message) (*storage.Appended, error) {
	h := l.get()
	if h == nil {
		return nil, l.unavailable()
	}
	return h.Publish(m)
}

func (l *lazyQueue) AddConsumer(c queue.Consumer, opts queue.ConsumerOptions) (uint64, error) {
	h := l.get()
	if h == nil {
		return 0, l.unavailable()
	}
	return h.AddConsumer(c, opts)
}

func (l *lazyQueue) RemoveConsumer(id uint64) {
	if h := l.opened(); h != nil {
		h.RemoveConsumer(id)
	}
}

func (l *lazyQueue) Kick() {
	if h := l.opened(); h != nil {
		h.Kick()
	}
}

func (l *lazyQueue) Get(noAck bool) (queue.Delivery, bool) {
	if h := l.get(); h != nil {
		return h.Get(noAck)
	}
	return queue.Delivery{}, false
}

// Counts opens the queue: its counts come from its storage.
func (l *lazyQueue) Counts() (ready, unacked int64, consumers int) {
	if h := l.get(); h != nil {
		return h.Counts()
	}
	return 0, 0, 0
}

func (l *lazyQueue) Purge() int64 {
	if h := l.get(); h != nil {
		return h.Purge()
	}
	return 0
}

// LastUsed is the open queue's; an unopened one was last used when it
// was loaded (queues with x-expires do not open lazily).
func (l *lazyQueue) LastUsed() (time.Time, bool) {
	if h := l.opened(); h != nil {
		return h.LastUsed()
	}
	return l.since, false
}

func (l *lazyQueue) Touch() {
	if h := l.opened(); h != nil {
		h.Touch()
	}
}

// Totals are the open queue's running totals; zero before it opens.
func (l *lazyQueue) Totals() queue.Totals {
	if t, ok := l.opened().(interface{ Totals() queue.Totals }); ok {
		return t.Totals()
	}
	return queue.Totals{}
}

// MemoryBytes is the open queue's; an unopened queue keeps only this.
func (l *lazyQueue) MemoryBytes() int64 {
	if m, ok := l.opened().(interface{ MemoryBytes() int64 }); ok {
		return m.MemoryBytes()
	}
	return lazyQueueBytes
}

// lazyQueueBytes estimates what an unopened queue keeps in RAM.
const lazyQueueBytes = 256

// Flow is the open queue's credit flow; an unopened queue has none.
func (l *lazyQueue) Flow() <-chan struct{} {
	if f, ok := l.opened().(flowing); ok {
		return f.Flow()
	}
	return nil
}

// stop marks the queue closed, waiting for an open under way, and returns
// the open queue, nil if it never opened.
func (l *lazyQueue) stop() queue.Handle {
	l.openMu.Lock()
	defer l.openMu.Unlock()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.opened()
}

func (l *lazyQueue) Close() error {
	if h := l.stop(); h != nil {
		return h.Close()
	}
	return nil
}

func (l *lazyQueue) Shutdown() error {
	if h := l.stop(); h != nil {
		return h.Shutdown()
	}
	return nil
}

func (l *lazyQueue) Delete() error {
	if h := l.stop(); h != nil {
		return h.Delete()
	}
	return os.RemoveAll(l.dir)
}

// Failed is the open queue's failure, or why it could not open.
func (l *lazyQueue) Failed() error {
	if h := l.opened(); h != nil {
		return h.Failed()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// openAll opens the unopened queues in qs, workers at a time, until done
// is closed.
func openAll(qs []*lazyQueue, workers int, done <-chan struct{}) {
	next := make(chan *lazyQueue)
	var wg sync.WaitGroup
	for range min(workers, len(qs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range next {
				l.get()
			}
		}()
	}
feed:
	for _, l := range qs {
		if l.opened() != nil {
			continue
		}
		select {
		case next <- l:
		case <-done:
			break feed
		}
	}
	close(next)
	wg.Wait()
}

// warmUp opens the queues loaded lazily at start, in the background.
func (r *Router) warmUp(qs []*lazyQueue) {
	defer r.wg.Done()
	t0 := time.Now()
	openAll(qs, queueWarmers, r.stop)
	select {
	case <-r.stop:
		return // closing: the rest stay unopened
	default:
	}
	var failed int
	for _, l := range qs {
		if l.Failed() != nil {
			failed++
		}
	}
	r.log.Info("durable queues opened", "queues", len(qs), "failed", failed, "took", time.Since(t0).Round(time.Millisecond))
}

// openLazyQueues opens the unopened queues of vhost vh (or only queue
// name, if not empty), without the router's lock, so that what reads
// their counts under it next finds them open.
func (r *Router) openLazyQueues(vh, name string) {
	var qs []*lazyQueue
	r.mu.RLock()
	if v, ok := r.vhosts[vh]; ok {
		add := func(qe *queueEntry) {
			if l, ok := qe.q.(*lazyQueue); ok && l.opened() == nil {
				qs = append(qs, l)
			}
		}
		if name != "" {
			if qe, ok := v.queues[name]; ok {
				add(qe)
			}
		} else {
			for _, qe := range v.queues {
				add(qe)
			}
		}
	}
	r.mu.RUnlock()
	openAll(qs, queueOpeners, nil)
}
