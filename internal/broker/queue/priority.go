package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Handle is what the broker and the front ends use of a queue: a plain
// Queue, or a Priority queue made of one Queue per priority level.
type Handle interface {
	Name() string
	Config() Config
	Publish(m *message.Message) (*storage.Appended, error)
	AddConsumer(c Consumer, opts ConsumerOptions) (uint64, error)
	RemoveConsumer(id uint64)
	Kick()
	Get(noAck bool) (Delivery, bool)
	Counts() (ready, unacked int64, consumers int)
	Purge() int64
	LastUsed() (time.Time, bool)
	Touch()
	Close() error
	// Shutdown closes the queue, keeping its data, and tells its
	// consumers it is gone (basic.cancel), as Delete does: for a queue
	// about to be reopened after a storage failure.
	Shutdown() error
	Delete() error
	// Failed returns why the queue's storage refuses writes, nil while
	// it takes them (see storage.Log.Failed).
	Failed() error
}

var (
	_ Handle = (*Queue)(nil)
	_ Handle = (*Priority)(nil)
)

// Priority is an x-max-priority queue: one Queue (a "lane", its own log)
// per priority level in use, opened when a message of that level first
// arrives. A consumer is registered with every lane through an adapter
// whose Reserve refuses while a higher lane has ready messages, so
// deliveries take from the highest non-empty level; a lane that runs dry
// wakes the lanes below it. Acks go straight to the lane a delivery came
// from (Delivery.Queue). Length limits count the whole queue
// (priority_limits.go); message TTL applies at each lane's head.
type Priority struct {
	opts Options
	max  int
	// cfg is the Config in force: opts.Config until SetConfig.
	cfg atomic.Pointer[Config]

	mu    sync.Mutex
	lanes []*Queue // by level; nil until used
	// view is a copy of lanes for the dispatch path, which runs under a
	// lane's lock and so must not take mu (laneLocked holds mu while it
	// takes a lane's lock).
	view      atomic.Pointer[[]*Queue]
	consumers map[uint64]*prioConsumer
	nextID    uint64
	exclusive bool
	closed    bool

	limitMu sync.Mutex // serializes the limit check and the publish (priority_limits.go)
	trimMu  sync.Mutex // one drop-head trim at a time
}

type prioConsumer struct {
	c    Consumer
	opts ConsumerOptions
	ids  map[int]uint64 // lane level -> consumer id in that lane
	once sync.Once
}

type laneConsumer struct {
	p     *Priority
	level int
	pc    *prioConsumer
}

// OpenPriority opens (creating if needed) a priority queue with levels
// 0..max in opts.Dir; lanes found on disk are opened at once.
func OpenPriority(opts Options, max int) (*Priority, error) {
	if opts.Tail != nil {
		return nil, errors.New("queue: a priority queue cannot tail a log")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	p := &Priority{opts: opts, max: max, lanes: make([]*Queue, max+1), consumers: map[uint64]*prioConsumer{}}
	p.cfg.Store(&opts.Config)
	view := make([]*Queue, max+1)
	p.view.Store(&view)
	ents, err := os.ReadDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		lvl, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "p"))
		if !strings.HasPrefix(e.Name(), "p") || err != nil || lvl < 0 || lvl > max {
			continue
		}
		if _, err := p.laneLocked(lvl); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// laneLocked returns the lane for level, opening it (and registering the
// existing consumers with it) on first use.
func (p *Priority) laneLocked(level int) (*Queue, error) {
	if q := p.lanes[level]; q != nil {
		return q, nil
	}
	o := p.opts
	o.Dir = filepath.Join(p.opts.Dir, fmt.Sprintf("p%d", level))
	o.Config = laneConfig(p.Config())
	q, err := Open(o)
	if err != nil {
		return nil, err
	}
	p.lanes[level] = q
	view := append([]*Queue(nil), p.lanes...)
	p.view.Store(&view)
	for _, pc := range p.consumers {
		id, err := q.AddConsumer(&laneConsumer{p: p, level: level, pc: pc}, pc.opts)
		if err == nil {
			pc.ids[level] = id
		}
	}
	return q, nil
}

func (p *Priority) Name() string   { return p.opts.Name }
func (p *Priority) Config() Config { return *p.cfg.Load() }

// SetConfig changes the queue's configuration while it runs, as
// Queue.SetConfig does: each lane takes the new TTL, dead-lettering and
// delivery limit, and a lower length limit trims the queue at once (in
// the background). It does no I/O and calls nothing outside the queue.
func (p *Priority) SetConfig(cfg Config) {
	p.mu.Lock()
	p.cfg.Store(&cfg)
	lanes := slices.Clone(p.lanes)
	p.mu.Unlock()
	for _, q := range lanes {
		if q != nil {
			q.SetConfig(laneConfig(cfg))
		}
	}
	if cfg.Overflow == DropHead && p.limited() {
		// In the background, as after a publish: trimming dead-letters,
		// and the caller may hold the broker's locks.
		go p.trim()
	}
}

// Publish appends m to the lane of its priority (capped at the maximum;
// no priority is level 0).
func (p *Priority) Publish(m *message.Message) (*storage.Appended, error) {
	level := 0
	if m.Properties.Present&message.PropPriority != 0 {
		level = min(int(m.Properties.Priority), p.max)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrDeleted
	}
	q, err := p.laneLocked(level)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if p.limited() {
		return p.publishLimited(q, m)
	}
	return q.Publish(m)
}

func (p *Priority) lanesSnapshot() []*Queue {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Queue, 0, len(p.lanes))
	for _, q := range p.lanes {
		if q != nil {
			out = append(out, q)
		}
	}
	return out
}

// higherReady reports whether a lane above level has ready messages. It
// is called from a lane's dispatcher with that lane's lock held and takes
// only higher lanes' locks, so locks are always taken upwards.
func (p *Priority) higherReady(level int) bool {
	for _, q := range (*p.view.Load())[level+1:] {
		if q == nil {
			continue
		}
		if ready, _, _ := q.Counts(); ready > 0 {
			return true
		}
	}
	return false
}

// kickBelow wakes the lanes under level (a higher lane ran dry).
func (p *Priority) kickBelow(level int) {
	for _, q := range (*p.view.Load())[:level] {
		if q != nil {
			q.Kick()
		}
	}
}

func (lc *laneConsumer) Reserve() bool {
	return !lc.p.higherReady(lc.level) && lc.pc.c.Reserve()
}

func (lc *laneConsumer) Deliver(d Delivery) {
	lc.pc.c.Deliver(d)
	if lane, ok := d.Queue.(*Queue); ok && lane.noneReady() {
		lc.p.kickBelow(lc.level)
	}
}

// noneReady reports whether q has no ready message.
func (q *Queue) noneReady() bool {
	ready, _, _ := q.Counts()
	return ready == 0
}

func (lc *laneConsumer) Cancelled() { lc.pc.once.Do(lc.pc.c.Cancelled) }

func (p *Priority) AddConsumer(c Consumer, opts ConsumerOptions) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrDeleted
	}
	if p.exclusive || (opts.Exclusive && len(p.consumers) > 0) {
		return 0, ErrExclusiveConsumer
	}
	p.nextID++
	pc := &prioConsumer{c: c, opts: opts, ids: map[int]uint64{}}
	p.consumers[p.nextID] = pc
	p.exclusive = opts.Exclusive
	lane0, err := p.laneLocked(0) // a consumer always has a lane to wait on
	if err != nil {
		return 0, err
	}
	_ = lane0
	for level, q := range p.lanes {
		if q == nil {
			continue
		}
		if _, ok := pc.ids[level]; ok {
			continue
		}
		o := opts
		o.Exclusive = false // exclusivity is enforced here, not per lane
		id, err := q.AddConsumer(&laneConsumer{p: p, level: level, pc: pc}, o)
		if err != nil {
			return 0, err
		}
		pc.ids[level] = id
	}
	return p.nextID, nil
}

func (p *Priority) RemoveConsumer(id uint64) {
	p.mu.Lock()
	pc, ok := p.consumers[id]
	delete(p.consumers, id)
	if ok && pc.opts.Exclusive {
		p.exclusive = false
	}
	lanes := append([]*Queue(nil), p.lanes...)
	p.mu.Unlock()
	if !ok {
		return
	}
	for level, lid := range pc.ids {
		if q := lanes[level]; q != nil {
			q.RemoveConsumer(lid)
		}
	}
}

func (p *Priority) Kick() {
	for _, q := range p.lanesSnapshot() {
		q.Kick()
	}
}

// Get takes from the highest lane with a ready message.
func (p *Priority) Get(noAck bool) (Delivery, bool) {
	lanes := p.lanesSnapshot()
	for i := len(lanes) - 1; i >= 0; i-- {
		if d, ok := lanes[i].Get(noAck); ok {
			return d, true
		}
	}
	return Delivery{}, false
}

func (p *Priority) Counts() (ready, unacked int64, consumers int) {
	for _, q := range p.lanesSnapshot() {
		r, u, _ := q.Counts()
		ready += r
		unacked += u
	}
	p.mu.Lock()
	consumers = len(p.consumers)
	p.mu.Unlock()
	return ready, unacked, consumers
}

// Totals sums the running totals of every lane.
func (p *Priority) Totals() Totals {
	var t Totals
	for _, q := range p.lanesSnapshot() {
		t = t.Add(q.Totals())
	}
	return t
}

func (p *Priority) Purge() int64 {
	var n int64
	for _, q := range p.lanesSnapshot() {
		n += q.Purge()
	}
	return n
}

func (p *Priority) LastUsed() (time.Time, bool) {
	var last time.Time
	for _, q := range p.lanesSnapshot() {
		t, _ := q.LastUsed()
		if t.After(last) {
			last = t
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return last, len(p.consumers) > 0
}

func (p *Priority) Touch() {
	for _, q := range p.lanesSnapshot() {
		q.Touch()
	}
}

func (p *Priority) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	var errs []error
	for _, q := range p.lanesSnapshot() {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

func (p *Priority) Failed() error {
	for _, q := range p.lanesSnapshot() {
		if err := q.Failed(); err != nil {
			return err
		}
	}
	return nil
}

func (p *Priority) Delete() error {
	return errors.Join(p.Shutdown(), os.RemoveAll(p.opts.Dir))
}

func (p *Priority) Shutdown() error {
	p.mu.Lock()
	consumers := p.consumers
	p.consumers = map[uint64]*prioConsumer{}
	p.closed = true
	p.mu.Unlock()
	for _, pc := range consumers {
		pc.once.Do(pc.c.Cancelled)
	}
	var errs []error
	for _, q := range p.lanesSnapshot() {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}
