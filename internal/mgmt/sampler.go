package mgmt

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// sampler turns running totals into RabbitMQ's rates. Every interval (5 s,
// RabbitMQ's default collect_statistics_interval) it records a sample of
// every object's totals, keyed by object: queues, exchanges, connections,
// channels and vhosts. An object's "rate" is the change between its last
// two samples divided by the time between them, so it covers the last
// interval, as in RabbitMQ. A request that asks for a window
// (msg_rates_age / msg_rates_incr, lengths_age / lengths_incr) also gets
// the samples over it, their average and the average rate.
//
// Samples are taken by Run's ticker and, should it lag (or not run, as
// in unit tests), by the first request that finds the last sample an
// interval old. Time comes from the injected clock. An object gone from
// a sample (deleted) loses its history.
//
// History is kept for historyLong on vhosts (so the overview, their sum,
// has it too) and for historyShort on every other object, so memory stays
// small with thousands of queues; a window reaching further back gets the
// samples there are.
type sampler struct {
	now      func() time.Time
	interval time.Duration
	// collect reports every object's current values to add: a key, how
	// many samples to keep of it and the values (the same columns on
	// every call).
	collect func(add func(key string, keep int, vals []int64))

	mu     sync.Mutex
	last   time.Time
	series map[string][]sample // oldest first
}

type sample struct {
	at   time.Time
	vals []int64
}

const (
	sampleInterval = 5 * time.Second
	historyLong    = 605 * time.Second // RabbitMQ's basic retention
	historyShort   = 60 * time.Second
	// maxWindowSamples bounds the samples a request may ask for.
	maxWindowSamples = 1000
)

// keepFor is how many samples cover d.
func keepFor(d, interval time.Duration) int { return int(d/interval) + 2 }

func newSampler(now func() time.Time, interval time.Duration, collect func(add func(key string, keep int, vals []int64))) *sampler {
	return &sampler{now: now, interval: interval, collect: collect, series: map[string][]sample{}}
}

// maybeSample takes a sample if none was taken for an interval.
func (sp *sampler) maybeSample() {
	now := sp.now()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.last.IsZero() && now.Sub(sp.last) < sp.interval {
		return
	}
	sp.sampleLocked(now)
}

// sampleLocked records one sample of everything. The collector reads
// the core (router, connections) under the sampler's lock; the core
// never calls into the sampler, so the order is fixed.
func (sp *sampler) sampleLocked(now time.Time) {
	seen := make(map[string]bool, len(sp.series))
	sp.collect(func(key string, keep int, vals []int64) {
		seen[key] = true
		s := sp.series[key]
		if len(s) >= keep {
			n := copy(s, s[len(s)-keep+1:])
			s = s[:n]
		}
		sp.series[key] = append(s, sample{at: now, vals: vals})
	})
	for k := range sp.series {
		if !seen[k] {
			delete(sp.series, k)
		}
	}
	sp.last = now
}

// Run samples every interval until stop is closed.
func (sp *sampler) Run(stop <-chan struct{}) {
	t := time.NewTicker(sp.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			sp.maybeSample()
		case <-stop:
			return
		}
	}
}

// window is a span of history a request asks for: RabbitMQ's *_age and
// *_incr query parameters. A zero age asks for no samples.
type window struct {
	age, incr time.Duration
}

// rateWindows are a request's windows for message rates and queue
// lengths.
type rateWindows struct {
	msg, lengths window
}

// parseWindows reads msg_rates_age/_incr and lengths_age/_incr (seconds).
func parseWindows(r *http.Request) (rateWindows, error) {
	var w rateWindows
	for _, p := range []struct {
		prefix string
		w      *window
	}{{"msg_rates", &w.msg}, {"lengths", &w.lengths}} {
		q := r.URL.Query()
		age, incr := q.Get(p.prefix+"_age"), q.Get(p.prefix+"_incr")
		if age == "" && incr == "" {
			continue
		}
		a, err1 := strconv.Atoi(age)
		i, err2 := strconv.Atoi(incr)
		if age == "" || incr == "" || err1 != nil || err2 != nil || a < 0 || i <= 0 {
			return w, badRequest("%s_age and %s_incr must be given together, as seconds (age >= 0, incr > 0)", p.prefix, p.prefix)
		}
		if a/i > maxWindowSamples {
			return w, badRequest("%s_age / %s_incr asks for more than %d samples", p.prefix, p.prefix, maxWindowSamples)
		}
		*p.w = window{age: time.Duration(a) * time.Second, incr: time.Duration(i) * time.Second}
	}
	return w, nil
}

// details is RabbitMQ's "<name>_details" of column col summed over the
// objects keys: {"rate": per second over the last interval} and, when w
// asks, "samples" (newest first, {"sample": value, "timestamp": ms}) at
// every incr over the last age, their "avg" and the "avg_rate" between
// the oldest and the newest.
func (sp *sampler) details(keys []string, col int, w window) map[string]any {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	rate := 0.0
	for _, k := range keys {
		s := sp.series[k]
		if len(s) < 2 {
			continue
		}
		a, b := s[len(s)-2], s[len(s)-1]
		if dt := b.at.Sub(a.at).Seconds(); dt > 0 {
			rate += float64(b.vals[col]-a.vals[col]) / dt
		}
	}
	out := map[string]any{"rate": rate}
	if w.age <= 0 {
		return out
	}
	type point struct {
		at time.Time
		v  int64
	}
	var pts []point
	end := sp.now().Truncate(w.incr)
	for at := end; !at.Before(end.Add(-w.age)); at = at.Add(-w.incr) {
		var v int64
		found := false
		for _, k := range keys {
			if x, ok := valueAt(sp.series[k], col, at); ok {
				v += x
				found = true
			}
		}
		if !found {
			break // no history this far back
		}
		pts = append(pts, point{at, v})
	}
	samples := make([]map[string]any, 0, len(pts))
	var sum int64
	for _, p := range pts {
		samples = append(samples, map[string]any{"sample": p.v, "timestamp": p.at.UnixMilli()})
		sum += p.v
	}
	out["samples"] = samples
	out["avg"], out["avg_rate"] = 0.0, 0.0
	if len(pts) > 0 {
		out["avg"] = float64(sum) / float64(len(pts))
	}
	if len(pts) > 1 {
		newest, oldest := pts[0], pts[len(pts)-1]
		out["avg_rate"] = float64(newest.v-oldest.v) / newest.at.Sub(oldest.at).Seconds()
	}
	return out
}

// valueAt is column col of the last sample taken at or before at.
func valueAt(s []sample, col int, at time.Time) (int64, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if !s[i].at.After(at) {
			return s[i].vals[col], true
		}
	}
	return 0, false
}

// memoryBytes estimates the samples' memory.
func (sp *sampler) memoryBytes() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var n int64
	for k, s := range sp.series {
		n += int64(len(k)) + 64
		for _, x := range s {
			n += 48 + 8*int64(cap(x.vals))
		}
	}
	return n
}
