package mgmt

import (
	"net/http"
	"sort"
	"sync"
	"time"
)

// Live curves: inflow, outflow and backlog of one queue or one topic,
// sampled every second, for the console to draw while a load (a peak
// shaving run, sluice bench shape) goes on. The message-rate sampler
// (sampler.go) keeps 5 s samples of everything; this keeps 1 s samples of
// what someone is looking at: an object is watched from the first request
// for its curves until nobody asked for liveWatchTTL, at most liveMaxWatched
// objects at a time (asking for one more drops the one asked for least
// recently), each with the last liveKeep samples. Memory stays bounded
// however many queues and topics there are.
//
//	GET /api/live/queues/{vhost}/{name}
//	GET /api/live/topics/{name}
//
// answer {"interval_ms", "watched_since", "samples": [...]}, oldest first,
// each {"timestamp" (ms), "inflow" and "outflow" (messages per second
// since the sample before; absent on the first), "backlog"} and, for a
// queue, "ready" and "unacked"; for a topic, "groups" (the consumer groups
// that committed offsets on it). A queue's inflow is messages published to
// it; its outflow, messages that left it: acked, delivered or got with no
// ack, dead-lettered, expired or dropped; its backlog, ready + unacked.
// A topic's inflow is records appended (log end offsets); its outflow, the
// progress of its groups' committed offsets; its backlog, their lag summed.
// A stream queue keeps no totals: its samples have the backlog only.

const (
	liveInterval   = time.Second
	liveKeep       = 300 // five minutes
	liveMaxWatched = 64
	liveWatchTTL   = 10 * time.Minute
)

// liveVals is one reading of an object. in and out are running totals
// (-1: not kept); groups holds a topic's committed offsets per group, so
// that a group joining or leaving between two samples adds no outflow.
type liveVals struct {
	in, out        int64
	backlog        int64
	ready, unacked int64
	groups         map[string]int64
	isQueue        bool
}

type liveSample struct {
	at time.Time
	liveVals
}

type liveSeries struct {
	read      func() (liveVals, bool) // false: the object is gone
	since     time.Time
	lastAsked time.Time
	samples   []liveSample // oldest first
}

type liveRing struct {
	now      func() time.Time
	interval time.Duration

	mu     sync.Mutex
	series map[string]*liveSeries
}

func newLiveRing(now func() time.Time) *liveRing {
	return &liveRing{now: now, interval: liveInterval, series: map[string]*liveSeries{}}
}

// watch returns key's series, starting one with read if there is none,
// and marks it asked for; it samples it if its last sample is an
// interval old (so that a request between ticks, or without Run, sees
// the present).
func (l *liveRing) watch(key string, read func() (liveVals, bool)) (*liveSeries, bool) {
	now := l.now()
	l.mu.Lock()
	s, ok := l.series[key]
	if !ok {
		if len(l.series) >= liveMaxWatched {
			var oldest string
			for k, x := range l.series {
				if oldest == "" || x.lastAsked.Before(l.series[oldest].lastAsked) {
					oldest = k
				}
			}
			delete(l.series, oldest)
		}
		s = &liveSeries{read: read, since: now}
		l.series[key] = s
	}
	s.lastAsked = now
	due := len(s.samples) == 0 || now.Sub(s.samples[len(s.samples)-1].at) >= l.interval
	l.mu.Unlock()
	if due && !l.sample(key, s, now) {
		return nil, false
	}
	return s, true
}

// sample reads s (without the ring's lock: reading takes the core's locks)
// and appends the reading; false if the object is gone, and then the
// series is dropped.
func (l *liveRing) sample(key string, s *liveSeries, now time.Time) bool {
	v, ok := s.read()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		if l.series[key] == s {
			delete(l.series, key)
		}
		return false
	}
	if n := len(s.samples); n > 0 && now.Sub(s.samples[n-1].at) < l.interval/2 {
		return true // a request and the ticker both sampled
	}
	if len(s.samples) >= liveKeep {
		n := copy(s.samples, s.samples[len(s.samples)-liveKeep+1:])
		s.samples = s.samples[:n]
	}
	s.samples = append(s.samples, liveSample{at: now, liveVals: v})
	return true
}

// tick samples every watched series and forgets those nobody asked for.
func (l *liveRing) tick() {
	now := l.now()
	type item struct {
		key string
		s   *liveSeries
	}
	var due []item
	l.mu.Lock()
	for k, s := range l.series {
		if now.Sub(s.lastAsked) > liveWatchTTL {
			delete(l.series, k)
			continue
		}
		due = append(due, item{k, s})
	}
	l.mu.Unlock()
	for _, it := range due {
		l.sample(it.key, it.s, now)
	}
}

// Run samples every interval until stop is closed.
func (l *liveRing) Run(stop <-chan struct{}) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.tick()
		case <-stop:
			return
		}
	}
}

// json is s's answer: rates between consecutive samples.
func (l *liveRing) json(s *liveSeries) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]map[string]any, 0, len(s.samples))
	for i, x := range s.samples {
		m := map[string]any{"timestamp": x.at.UnixMilli(), "backlog": x.backlog}
		if x.isQueue {
			m["ready"], m["unacked"] = x.ready, x.unacked
		}
		if x.groups != nil {
			gs := make([]string, 0, len(x.groups))
			for g := range x.groups {
				gs = append(gs, g)
			}
			sort.Strings(gs)
			m["groups"] = gs
		}
		if i > 0 && x.in >= 0 {
			prev := s.samples[i-1]
			// Over the interval between the timestamps as shown, so that
			// rate × interval adds up to the messages counted.
			if dt := float64(x.at.UnixMilli()-prev.at.UnixMilli()) / 1000; dt > 0 && prev.in >= 0 {
				// A queue deleted and declared again restarts its
				// totals: no negative rates.
				m["inflow"] = float64(max(0, x.in-prev.in)) / dt
				var out int64
				if x.groups != nil {
					for g, c := range x.groups {
						if p, ok := prev.groups[g]; ok {
							out += max(0, c-p)
						}
					}
				} else {
					out = max(0, x.out-prev.out)
				}
				m["outflow"] = float64(out) / dt
			}
		}
		out = append(out, m)
	}
	return map[string]any{
		"interval_ms":   l.interval.Milliseconds(),
		"watched_since": s.since.UnixMilli(),
		"samples":       out,
	}
}

func (a *API) liveQueue(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	name := pathValue(r, "name")
	if _, err := a.opts.Router.QueueStatus(vh, name); err != nil {
		return nil, err
	}
	read := func() (liveVals, bool) {
		q, err := a.opts.Router.QueueStatus(vh, name)
		if err != nil {
			return liveVals{}, false
		}
		v := liveVals{in: -1, out: -1, backlog: q.Ready + q.Unacked, ready: q.Ready, unacked: q.Unacked, isQueue: true}
		if t := q.Totals; t != nil {
			v.in = t.Published
			v.out = t.Acked + t.DeliveredNoAck + t.GotNoAck + t.DeadLettered + t.Dropped
		}
		return v, true
	}
	series, ok := a.live.watch("q:"+vh+"\x00"+name, read)
	if !ok {
		return nil, notFound()
	}
	return a.live.json(series), nil
}

func (a *API) liveTopic(r *http.Request, s *session) (any, error) {
	name := pathValue(r, "name")
	if _, ok := a.opts.Kafka.Topic(name); !ok {
		return nil, notFound()
	}
	read := func() (liveVals, bool) {
		t, ok := a.opts.Kafka.Topic(name)
		if !ok {
			return liveVals{}, false
		}
		ends := make(map[int32]int64, len(t.Partitions))
		v := liveVals{groups: map[string]int64{}}
		for _, p := range t.Partitions {
			_, end, _ := p.Offsets()
			ends[p.Index] = end
			v.in += end
		}
		for _, g := range a.opts.Kafka.OffsetGroups() {
			for _, c := range a.opts.Kafka.GroupOffsets(g) {
				if c.Topic == name {
					v.groups[g] += c.Offset
					v.backlog += max(0, ends[c.Partition]-c.Offset)
				}
			}
		}
		return v, true
	}
	series, ok := a.live.watch("t:"+name, read)
	if !ok {
		return nil, notFound()
	}
	return a.live.json(series), nil
}
