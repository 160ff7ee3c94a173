package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// Routed is the outcome of a publish: how many destinations (queues,
// topics) took the message and how to wait until it is durable in all of
// them.
type Routed struct {
	Queues   int
	first    Pending   // the append to the first destination: most messages go to one
	more     []Pending // the appends to the others
	rejected bool
	flow     <-chan struct{} // see Flow
}

// Flow returns nil, or a channel closed when the publisher may go on: a
// queue the message went to is in credit flow, its consumers behind its
// publishers (package queue, flow.go). A front end holds the publisher,
// not the message, meanwhile: the message itself is stored and goes on to
// its confirm.
func (rt Routed) Flow() <-chan struct{} { return rt.flow }

// each calls f for every append of the message.
func (rt *Routed) each(f func(Pending) bool) {
	if rt.first == nil || !f(rt.first) {
		return
	}
	for _, a := range rt.more {
		if !f(a) {
			return
		}
	}
}

// Wait blocks until the message is durable in every queue it was routed
// to. It returns queue.ErrRejected when a full queue refused it (the
// publisher gets a nack) or the storage error of a failed write or fsync.
func (rt Routed) Wait() error {
	var errs []error
	rt.each(func(a Pending) bool {
		if err := a.Wait(); err != nil {
			errs = append(errs, err)
		}
		return true
	})
	if rt.rejected {
		errs = append(errs, queue.ErrRejected)
	}
	return errors.Join(errs...)
}

// Ready reports whether Wait would return at once.
func (rt Routed) Ready() bool {
	ready := true
	rt.each(func(a Pending) bool {
		select {
		case <-a.Done():
		default:
			ready = false
		}
		return ready
	})
	return ready
}

// Publish routes m through exchange m.Exchange of vhost vh and appends it
// to every destination (queue, topic) it matches. An unknown exchange is NOT_FOUND; an internal
// one ACCESS_REFUSED. Queues == 0 means unroutable (the front end returns
// a mandatory message).
func (r *Router) Publish(vh string, m *message.Message) (Routed, error) {
	r.mu.RLock()
	v, err := r.vhostLocked(vh)
	if err != nil {
		r.mu.RUnlock()
		return Routed{}, err
	}
	x, ok := v.exchanges[m.Exchange]
	if !ok {
		r.mu.RUnlock()
		return Routed{}, fmt.Errorf("%w: no exchange '%s' in vhost '%s'", ErrNotFound, m.Exchange, vh)
	}
	if x.def.Internal {
		r.mu.RUnlock()
		return Routed{}, fmt.Errorf("%w: cannot publish to internal exchange '%s' in vhost '%s'", ErrAccessRefused, m.Exchange, vh)
	}
	if x.delayed != nil {
		if delay, ok := IntArg(m.Properties.Headers["x-delay"]); ok && delay > 0 {
			r.mu.RUnlock()
			a, err := x.delayed.Publish(m, r.opts.Now().Add(time.Duration(delay)*time.Millisecond))
			if err != nil {
				return Routed{}, err
			}
			// Routability is only known when it comes due, as with
			// RabbitMQ's plugin: count it as routed.
			return Routed{Queues: 1, first: a}, nil
		}
	}
	qs := r.routeLocked(v, x, m)
	r.mu.RUnlock()
	return r.appendTo(qs, m)
}

// releaseDelayed routes a message that came due through its delayed
// exchange and waits until it is durable; a deleted exchange drops it.
// A vhost not loaded is an error, retried: at start a store opens (and
// finds messages that came due while the broker was down) before its
// vhost, with its queues, is installed; a deleted vhost deletes the
// store right after it leaves the router.
func (r *Router) releaseDelayed(vh, exchange string, m *message.Message) error {
	r.mu.RLock()
	v, err := r.vhostLocked(vh)
	if err != nil {
		r.mu.RUnlock()
		return err
	}
	x, ok := v.exchanges[exchange]
	if !ok {
		r.mu.RUnlock()
		return nil
	}
	qs := r.routeLocked(v, x, m)
	r.mu.RUnlock()
	rt, err := r.appendTo(qs, m)
	if err != nil {
		return err
	}
	if err := rt.Wait(); err != nil && !errors.Is(err, queue.ErrRejected) {
		return err
	}
	return nil
}

func (r *Router) appendTo(ds []Destination, m *message.Message) (Routed, error) {
	rt := Routed{Queues: len(ds)}
	if len(ds) == 0 {
		return rt, nil
	}
	now := r.opts.Now()
	for _, d := range ds {
		a, err := d.Publish(m, now)
		switch {
		case errors.Is(err, queue.ErrRejected):
			rt.rejected = true
		case errors.Is(err, queue.ErrDeleted):
			// deleted between routing and appending: as if unbound
			rt.Queues--
		case err != nil:
			return rt, err
		default:
			if rt.first == nil {
				rt.first = a
			} else {
				rt.more = append(rt.more, a)
			}
			if rt.flow == nil {
				if f, ok := d.(flowing); ok {
					rt.flow = f.Flow()
				}
			}
		}
	}
	return rt, nil
}

// routeLocked returns the destinations m goes to from exchange x,
// following exchange-to-exchange bindings and alternate exchanges, each
// destination once.
func (r *Router) routeLocked(v *vhost, x *exchange, m *message.Message) []Destination {
	w := &routeWalk{v: v, m: m, topics: r.opts.Topics}
	w.out, w.seen = w.outBuf[:0], w.seenBuf[:0]
	w.visit = w.add // one closure for the whole walk
	w.walk(x)
	return w.out
}

// routeWalk is the state of one routing walk. A message usually goes to a
// few queues through one or two exchanges, so queues and exchanges already
// seen are found by scanning slices; a map takes over for queues past
// routeScanMax, so that a fanout to thousands of queues stays linear.
type routeWalk struct {
	v      *vhost
	m      *message.Message
	topics *Broker
	out    []Destination
	inOut  map[Destination]bool // nil until out passes routeScanMax
	seen   []*exchange
	visit  func(dest)

	// room for the usual case, in the same allocation as the walk
	outBuf  [2]Destination
	seenBuf [4]*exchange
}

const routeScanMax = 16

func (w *routeWalk) walk(x *exchange) {
	for _, s := range w.seen {
		if s == x {
			return
		}
	}
	w.seen = append(w.seen, x)
	before := len(w.out)
	if x.superStream != "" {
		w.add(dest{toTopic, x.superStream})
	}
	if x.def.Name == "" {
		w.add(dest{name: w.m.RoutingKey})
	} else {
		x.matcher.Match(w.m.RoutingKey, map[string]any(w.m.Properties.Headers), w.visit)
	}
	if len(w.out) == before && x.hasAlt {
		if ax, ok := w.v.exchanges[x.alternate]; ok {
			w.walk(ax)
		}
	}
	// Every exchange a message passes counts it in, and out if it led
	// somewhere (a delayed message counts when it comes due).
	x.stats.count(len(w.out) > before)
}

func (w *routeWalk) add(d dest) {
	var to Destination
	switch d.kind {
	case toExchange:
		if nx, ok := w.v.exchanges[d.name]; ok {
			w.walk(nx)
		}
		return
	case toTopic:
		if w.topics == nil {
			return
		}
		t, ok := w.topics.Topic(d.name) // a binding outlives its topic
		if !ok {
			return
		}
		to = t
	default:
		qe, ok := w.v.queues[d.name]
		switch {
		case ok:
			to = qe.dest
		default:
			rq, ok := w.v.remote[d.name]
			if !ok {
				return
			}
			to = rq // on another node: forwarded (router_forward.go)
		}
	}
	if w.routed(to) {
		return
	}
	w.out = append(w.out, to)
	if w.inOut != nil {
		w.inOut[to] = true
	} else if len(w.out) > routeScanMax {
		w.inOut = make(map[Destination]bool, 2*len(w.out))
		for _, o := range w.out {
			w.inOut[o] = true
		}
	}
}

func (w *routeWalk) routed(q Destination) bool {
	if w.inOut != nil {
		return w.inOut[q]
	}
	for _, o := range w.out {
		if o == q {
			return true
		}
	}
	return false
}

// deadLetter republishes messages dead-lettered from queue qname through
// the queue's dead-letter exchange, with x-death recorded as RabbitMQ does,
// and waits until the copies are durable. A missing dead-letter exchange
// or an unroutable copy drops the message, as in RabbitMQ.
func (r *Router) deadLetter(vh, qname string, cfg queue.Config, dead []queue.Dead) error {
	if !cfg.DeadLetter {
		// A policy took the dead-letter exchange away after the queue
		// decided: the messages are dropped, as they now would be.
		return nil
	}
	var waits []Routed
	now := r.opts.Now()
	for _, d := range dead {
		m := d.Message
		rk := m.RoutingKey
		if cfg.DeadLetterRoutingKey != nil {
			rk = *cfg.DeadLetterRoutingKey
		}
		recordDeath(&m, qname, string(d.Reason), now)
		m.Exchange, m.RoutingKey = cfg.DeadLetterExchange, rk
		r.mu.RLock()
		v, err := r.vhostLocked(vh)
		if err != nil {
			closed := r.closed
			r.mu.RUnlock()
			if closed { // stopping: keep the originals for the next start
				return ErrClosed
			}
			return nil
		}
		x, ok := v.exchanges[cfg.DeadLetterExchange]
		var qs []Destination
		if ok {
			qs = r.routeLocked(v, x, &m)
		}
		r.mu.RUnlock()
		var cycles []string
		if qs, cycles = dropDeadLetterCycles(qs, &m, d.Reason); len(cycles) > 0 {
			r.log.Debug("dead-letter cycle: message dropped", "vhost", vh, "queue", qname, "reason", d.Reason, "cycling", cycles)
		}
		rt, err := r.appendTo(qs, &m)
		if err != nil {
			return err
		}
		waits = append(waits, rt)
	}
	for _, rt := range waits {
		if err := rt.Wait(); err != nil && !errors.Is(err, queue.ErrRejected) {
			return err
		}
	}
	// A router that closed meanwhile may have closed a target queue, which
	// then took no copy (as if unbound): keep the originals for the next
	// start rather than lose them. A copy that was stored is made again
	// then (at least once, as after a crash).
	r.mu.RLock()
	closed := r.closed
	r.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return nil
}

// recordDeath updates m's x-death header: the entry for (queue, reason)
// counts up and moves to the front, or a new entry is added in front; the
// x-first-death-* headers are set once and x-last-death-* every time. A
// per-message expiration is removed (kept as original-expiration) so the
// copy does not expire again for the same reason.
func recordDeath(m *message.Message, qname, reason string, now time.Time) {
	p := &m.Properties
	h := fieldtable.Table{}
	for k, v := range p.Headers {
		h[k] = v
	}
	var deaths []any
	if old, ok := h["x-death"].([]any); ok {
		deaths = old
	}
	keys := []any{m.RoutingKey}
	if cc, ok := h["CC"].([]any); ok {
		keys = append(keys, cc...)
	}
	var entry fieldtable.Table
	rest := make([]any, 0, len(deaths)+1)
	for _, e := range deaths {
		t, ok := asTable(e)
		if ok && entry == nil && t["queue"] == qname && t["reason"] == reason {
			entry = t
			continue
		}
		rest = append(rest, e)
	}
	if entry == nil {
		entry = fieldtable.Table{"count": int64(0), "reason": reason, "queue": qname, "exchange": m.Exchange, "routing-keys": keys}
		if p.Present&message.PropExpiration != 0 {
			entry["original-expiration"] = p.Expiration
		}
	}
	n, _ := IntArg(entry["count"])
	entry["count"] = n + 1
	entry["time"] = now.Truncate(time.Second).UTC()
	h["x-death"] = append([]any{entry}, rest...)
	if _, ok := h["x-first-death-reason"]; !ok {
		h["x-first-death-reason"] = reason
		h["x-first-death-queue"] = qname
		h["x-first-death-exchange"] = m.Exchange
	}
	h["x-last-death-reason"] = reason
	h["x-last-death-queue"] = qname
	h["x-last-death-exchange"] = m.Exchange
	p.Headers = h
	p.Present |= message.PropHeaders
	if p.Present&message.PropExpiration != 0 {
		p.Present &^= message.PropExpiration
		p.Expiration = ""
	}
}

func asTable(v any) (fieldtable.Table, bool) {
	switch t := v.(type) {
	case fieldtable.Table:
		c := fieldtable.Table{}
		for k, v := range t {
			c[k] = v
		}
		return c, true
	case map[string]any:
		return fieldtable.Table(t), true
	}
	return nil, false
}
