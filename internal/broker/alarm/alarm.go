package alarm

import (
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Resource names what an alarm is about.
type Resource string

const (
	// Memory: the process uses more than its high watermark.
	Memory Resource = "memory"
	// Disk: the data directory's file system has less free space than
	// the limit.
	Disk Resource = "disk"
)

// Alarm is one raised alarm.
type Alarm struct {
	Resource Resource
	// Value is the sample that raised or last kept the alarm: bytes in
	// use for Memory, bytes free for Disk.
	Value int64
	// Limit is the configured threshold in bytes.
	Limit int64
	// Since is when the alarm was raised.
	Since time.Time
}

// Sampler measures one resource in bytes.
type Sampler func() (int64, error)

// Options configure a Monitor. A resource whose Sampler is nil is not
// watched.
type Options struct {
	// MemoryLimit is the high watermark in bytes: the memory alarm is
	// raised while the memory sample is above it. 0 raises it at once
	// and keeps it raised (RabbitMQ's watermark 0: block all publishing).
	MemoryLimit int64
	Memory      Sampler
	// DiskFreeLimit in bytes: the disk alarm is raised while free space
	// is below it. 0 never raises it.
	DiskFreeLimit int64
	DiskFree      Sampler
	// Interval between checks in Run. Default 1s. The disk is also
	// sampled at once, between ticks, when Wrote estimates that it has
	// fallen below its limit.
	Interval time.Duration
	Logger   *slog.Logger
	// Now is the clock used to stamp alarms. Default time.Now.
	Now func() time.Time
}

// Status is a snapshot for management and metrics. A value is -1 when
// the resource is not watched or could not be sampled yet. With a disk
// limit above 0, DiskFree is the estimate Wrote keeps: the last sample
// less the bytes reported written since, not below 0.
type Status struct {
	MemoryUsed, MemoryLimit int64
	DiskFree, DiskFreeLimit int64
	Alarms                  []Alarm
}

// Monitor holds the alarm state. Its methods are safe for concurrent use.
type Monitor struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	active  map[Resource]Alarm
	last    map[Resource]int64
	failing map[Resource]bool // sampler error logged, not yet recovered
	// flow is what Blocked returns, swapped whole on every raise or
	// clear so that publishers read it without taking mu.
	flow atomic.Pointer[flowState]

	// The free-space estimate, kept only while the disk alarm is on
	// (wake != nil). written counts every byte Wrote was told of and is
	// never reset; disk pairs the last successful sample with the value
	// written had just before it was taken, so that Wrote reads both in
	// one load. Bytes since the sample are written - disk.base.
	written atomic.Int64
	disk    atomic.Pointer[diskSample]
	// wake asks Run for a disk sample now; 1-buffered, sent to without
	// blocking, so that a pending request absorbs the next ones.
	wake chan struct{}
}

// diskSample is one successful free-space sample and the byte count
// Wrote had reached before it was taken.
type diskSample struct {
	free, base int64
}

type flowState struct {
	reason  string        // "" when no alarm is raised
	changed chan struct{} // closed when the next state replaces this one
}

// New returns a monitor with no alarm raised; call Check or Run.
func New(o Options) *Monitor {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Monitor{
		opts: o, log: o.Logger,
		active:  map[Resource]Alarm{},
		last:    map[Resource]int64{},
		failing: map[Resource]bool{},
	}
	m.flow.Store(&flowState{changed: make(chan struct{})})
	if o.DiskFree != nil && o.DiskFreeLimit > 0 {
		m.wake = make(chan struct{}, 1)
	}
	return m
}

// Check samples every watched resource once and raises or clears alarms.
func (m *Monitor) Check() {
	if m.opts.Memory != nil {
		v, err := m.opts.Memory()
		m.observe(Memory, v, err, v > m.opts.MemoryLimit, m.opts.MemoryLimit)
	}
	if m.opts.DiskFree != nil {
		m.checkDisk()
	}
}

// checkDisk samples free space once and restarts the estimate from it.
func (m *Monitor) checkDisk() {
	limit := m.opts.DiskFreeLimit
	// Taken before the sample: bytes written while it is taken may or
	// may not be in it, and they stay counted against it, which errs
	// towards raising the alarm.
	base := m.written.Load()
	v, err := m.opts.DiskFree()
	if err == nil && m.wake != nil {
		m.disk.Store(&diskSample{free: v, base: base})
	}
	m.observe(Disk, v, err, v < limit, limit)
	// The Wrote call that crossed the limit while the sample was taken
	// compared against the previous sample and may have seen no
	// crossing; every later one starts below the limit and sees none
	// either. Ask for another sample rather than wait for the tick.
	if err == nil && m.wake != nil && v >= limit && v-(m.written.Load()-base) < limit {
		m.wakeDisk()
	}
}

// Wrote tells the monitor that n more bytes were written to the data
// directory's file system. Between two samples the free space is taken
// to be the last sample less the bytes written since; the call that
// brings this estimate below DiskFreeLimit makes Run sample the disk at
// once instead of at its next tick, so that the alarm holds the limit
// whatever the write rate. Samples alone raise and clear the alarm, so
// that writes which took no new space (overwrites, preallocated files)
// or space freed meanwhile do not block publishers. Run must be running for the
// sample to be taken; a Check or tick taken meanwhile serves as well.
//
// Wrote is meant for every durable write, once per group commit: it is
// one atomic add, one atomic load and a compare, with no lock and no
// allocation; the crossing call adds one non-blocking channel send. Safe
// for concurrent use. It does nothing when n <= 0 or when the disk alarm
// is off (no DiskFree sampler, or DiskFreeLimit 0), nor before the first
// successful disk sample, which it would have nothing to subtract from.
func (m *Monitor) Wrote(n int) {
	if m.wake == nil || n <= 0 {
		return
	}
	w := m.written.Add(int64(n))
	s := m.disk.Load()
	if s == nil {
		return
	}
	// Exactly one call per sample sees the estimate go from at or above
	// the limit to below it, so a fast writer below the limit does not
	// keep Run sampling.
	est, limit := s.free-(w-s.base), m.opts.DiskFreeLimit
	if est < limit && est+int64(n) >= limit {
		m.wakeDisk()
	}
}

func (m *Monitor) wakeDisk() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// observe applies one sample. A failed sample leaves the alarm as it was:
// a flapping sampler must neither block nor release publishers.
func (m *Monitor) observe(r Resource, v int64, err error, over bool, limit int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if !m.failing[r] {
			m.failing[r] = true
			m.log.Warn("resource sample failed; alarm state kept", "resource", string(r), "err", err)
		}
		return
	}
	if m.failing[r] {
		delete(m.failing, r)
		m.log.Info("resource sample recovered", "resource", string(r))
	}
	m.last[r] = v
	a, raised := m.active[r]
	switch {
	case over && !raised:
		m.active[r] = Alarm{Resource: r, Value: v, Limit: limit, Since: m.opts.Now()}
		m.log.Warn("resource alarm raised: publishers blocked", "resource", string(r), "value", v, "limit", limit)
		m.changedLocked()
	case over:
		a.Value = v
		m.active[r] = a
	case raised:
		delete(m.active, r)
		m.log.Info("resource alarm cleared", "resource", string(r), "value", v, "limit", limit,
			"duration", m.opts.Now().Sub(a.Since).String())
		m.changedLocked()
	}
}

func (m *Monitor) changedLocked() {
	var names []string
	for _, r := range []Resource{Memory, Disk} {
		if _, ok := m.active[r]; ok {
			names = append(names, string(r))
		}
	}
	next := &flowState{changed: make(chan struct{})}
	if len(names) > 0 {
		next.reason = "low on " + strings.Join(names, " and ")
	}
	close(m.flow.Swap(next).changed)
}

// Run checks every Interval, and samples the disk whenever Wrote asks,
// until stop is closed.
func (m *Monitor) Run(stop <-chan struct{}) {
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.Check()
		case <-m.wake: // nil, never ready, when the disk alarm is off
			m.checkDisk()
		case <-stop:
			return
		}
	}
}

// Blocked returns why publishers must wait ("low on memory", "low on
// disk", "low on memory and disk"), or "" when no alarm is raised, and a
// channel closed at the next raise or clear. A caller waits for publishers
// to be released by calling Blocked again each time the channel closes.
// It takes no lock: publishers call it for every message.
func (m *Monitor) Blocked() (reason string, changed <-chan struct{}) {
	f := m.flow.Load()
	return f.reason, f.changed
}

// Active lists the raised alarms, memory first.
func (m *Monitor) Active() []Alarm {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.activeLocked()
}

func (m *Monitor) activeLocked() []Alarm {
	out := make([]Alarm, 0, len(m.active))
	for _, a := range m.active {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Resource > out[j].Resource })
	return out
}

// Status returns the last samples (for the disk, the estimate when Wrote
// is in use), the limits and the raised alarms.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{MemoryUsed: -1, MemoryLimit: -1, DiskFree: -1, DiskFreeLimit: -1, Alarms: m.activeLocked()}
	if m.opts.Memory != nil {
		s.MemoryLimit = m.opts.MemoryLimit
		if v, ok := m.last[Memory]; ok {
			s.MemoryUsed = v
		}
	}
	if m.opts.DiskFree != nil {
		s.DiskFreeLimit = m.opts.DiskFreeLimit
		if v, ok := m.last[Disk]; ok {
			s.DiskFree = v
		}
		if d := m.disk.Load(); d != nil {
			s.DiskFree = max(0, d.free-(m.written.Load()-d.base))
		}
	}
	return s
}
