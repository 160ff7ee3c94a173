package broker

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/meta"
)

// LogFailure is one log that refuses writes after a failed write or
// fsync: a topic partition, a queue, or the metadata log.
type LogFailure struct {
	Kind  string // "partition", "queue" or "metadata"
	Vhost string // for a queue
	Name  string // topic-partition, queue name, or "meta"
	Err   string // the failure, or the last recovery attempt's error
	Since time.Time
}

// RecoveryOptions configure a Recovery.
type RecoveryOptions struct {
	Broker *Broker     // partitions; nil: none
	Router *Router     // queues; nil: none
	Meta   *meta.Store // the metadata log; nil: none
	// Writable reports whether the disk takes writes again (free space
	// above the disk alarm's limit). Nil: always try.
	Writable func() bool
	// Interval is how often failed logs are looked for. Default 1s.
	Interval time.Duration
	// MaxBackoff bounds the wait between recovery attempts of one log,
	// which doubles from Interval after each failed attempt. Default 30s.
	MaxBackoff time.Duration
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger
}

// Recovery brings failed logs back without a restart. Each Check looks
// for logs that refuse writes and, while the disk takes writes again,
// reopens them from what is durable on disk (Partition.Recover,
// Router.RecoverQueue, meta's Store.Recover, the consumer offsets store's
// Recover). The first attempt comes one Interval after the failure is
// seen; a log that fails again (or fails again soon after it was reopened:
// a disk that is still full) waits twice
// as long each time, up to MaxBackoff. One such episode is logged once
// when it starts and once per reopen, never per write. Run calls Check
// every Interval; Failures reports the logs failed now, for health
// checks, status and metrics.
type Recovery struct {
	opts RecoveryOptions

	mu      sync.Mutex
	failing map[string]*failingLog
}

type failingLog struct {
	LogFailure
	failed  bool      // refusing writes now; else reopened, on probation
	until   time.Time // end of the probation: a failure before it continues the episode
	next    time.Time // next recovery attempt
	backoff time.Duration
	recover func() error
}

// NewRecovery returns a Recovery over the given subsystems.
func NewRecovery(opts RecoveryOptions) *Recovery {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Recovery{opts: opts, failing: map[string]*failingLog{}}
}

// Run calls Check every Interval until stop closes.
func (r *Recovery) Run(stop <-chan struct{}) { every(r.opts.Interval, stop, r.Check) }

// every calls f every interval until stop closes.
func every(interval time.Duration, stop <-chan struct{}, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f()
		}
	}
}

// Failures lists the logs that refuse writes now, metadata first, then by
// kind and name.
func (r *Recovery) Failures() []LogFailure {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]LogFailure, 0, len(r.failing))
	for _, f := range r.failing {
		if f.failed {
			out = append(out, f.LogFailure)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind == "metadata" || b.Kind != "metadata" && a.Kind < b.Kind
		}
		if a.Vhost != b.Vhost {
			return a.Vhost < b.Vhost
		}
		return a.Name < b.Name
	})
	return out
}

type failedLog struct {
	kind, vhost, name string
	err               error
	recover           func() error
}

func (f failedLog) key() string { return f.kind + "\x00" + f.vhost + "\x00" + f.name }

// scan finds the logs that refuse writes now.
func (r *Recovery) scan() []failedLog {
	var out []failedLog
	if m := r.opts.Meta; m != nil {
		if err := m.Failed(); err != nil {
			out = append(out, failedLog{kind: "metadata", name: "meta", err: err, recover: m.Recover})
		}
	}
	if b := r.opts.Broker; b != nil {
		if err := b.offsets.Failed(); err != nil {
			out = append(out, failedLog{kind: "offsets", name: "offsets", err: err, recover: b.offsets.Recover})
		}
		for _, t := range b.Topics() {
			for _, p := range t.Partitions {
				if err := p.Failed(); err != nil {
					out = append(out, failedLog{kind: "partition", name: fmt.Sprintf("%s-%d", t.Name, p.Index), err: err, recover: p.Recover})
				}
			}
		}
	}
	if rt := r.opts.Router; rt != nil {
		for _, q := range rt.FailedQueues() {
			out = append(out, failedLog{kind: "queue", vhost: q.Vhost, name: q.Name, err: q.Err,
				recover: func() error { return rt.RecoverQueue(q.Vhost, q.Name) }})
		}
	}
	return out
}

// Check looks for failed logs once and tries to recover those whose
// backoff has run out, if the disk takes writes.
func (r *Recovery) Check() {
	now := r.opts.Now()
	found := r.scan()
	lg := r.opts.Logger

	r.mu.Lock()
	seen := make(map[string]bool, len(found))
	for _, f := range found {
		k := f.key()
		seen[k] = true
		fl := r.failing[k]
		switch {
		case fl == nil:
			fl = &failingLog{LogFailure: LogFailure{Kind: f.kind, Vhost: f.vhost, Name: f.name, Since: now},
				failed: true, backoff: r.opts.Interval, next: now.Add(r.opts.Interval)}
			r.failing[k] = fl
			fl.Err = f.err.Error()
			lg.Error("log failed: refusing writes until it is recovered", r.attrs(fl, "err", fl.Err)...)
		case !fl.failed: // failed again while on probation: the same episode
			fl.failed = true
			fl.backoff = min(2*fl.backoff, r.opts.MaxBackoff)
			fl.next = now.Add(fl.backoff)
			fl.Err = f.err.Error()
		}
		fl.recover = f.recover
	}
	for k, fl := range r.failing {
		switch {
		case seen[k]:
		case fl.failed: // recovered elsewhere, or deleted
			delete(r.failing, k)
			lg.Info("log no longer failed", r.attrs(fl)...)
		case !now.Before(fl.until): // stayed healthy: the episode is over
			delete(r.failing, k)
		}
	}
	var due []*failingLog
	if r.opts.Writable == nil || r.opts.Writable() {
		for _, fl := range r.failing {
			if fl.failed && !now.Before(fl.next) {
				due = append(due, fl)
			}
		}
	}
	r.mu.Unlock()

	for _, fl := range due {
		err := fl.recover()
		r.mu.Lock()
		if err == nil {
			fl.failed = false
			fl.until = now.Add(max(r.opts.MaxBackoff, 10*r.opts.Interval))
			lg.Info("log recovered: accepting writes again", r.attrs(fl, "failed_for", now.Sub(fl.Since).String())...)
		} else {
			fl.backoff = min(max(2*fl.backoff, r.opts.Interval), r.opts.MaxBackoff)
			fl.next = now.Add(fl.backoff)
			fl.Err = err.Error()
			lg.Debug("log recovery failed; will retry", r.attrs(fl, "err", fl.Err, "retry_in", fl.backoff.String())...)
		}
		r.mu.Unlock()
	}
}

func (fl *failingLog) key() string {
	return failedLog{kind: fl.Kind, vhost: fl.Vhost, name: fl.Name}.key()
}

func (r *Recovery) attrs(fl *failingLog, extra ...any) []any {
	a := []any{"kind", fl.Kind, "log", fl.Name}
	if fl.Vhost != "" {
		a = append(a, "vhost", fl.Vhost)
	}
	return append(a, extra...)
}
