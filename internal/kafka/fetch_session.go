package kafka

// Fetch sessions (KIP-227).
//
// A consumer that fetches the same partitions again and again need not
// list them all each time, nor read back every partition that has
// nothing new. A full fetch with epoch 0 creates a session: the broker
// remembers the partitions and their fetch offsets and answers a session
// id. The next requests carry that id and epoch 1, 2, ...: they list only
// the partitions whose fetch offset or limit changed and the partitions to
// forget, and the answer holds only the partitions that have records, an
// error, or a high watermark, last stable offset or log start offset
// other than the one the session last told the client.
//
// As in Kafka, the epoch decides what a request is: -1 is a sessionless
// full fetch (closing the session named, if any), 0 a full fetch that
// opens a new session (closing the one named), anything else continues a
// session. An unknown session id is FETCH_SESSION_ID_NOT_FOUND, a wrong
// epoch INVALID_FETCH_SESSION_EPOCH, a session used with and without topic
// ids (v13+) FETCH_SESSION_TOPIC_ID_ERROR; clients answer each of these by
// falling back to a full fetch.
//
// The cache is bounded (Config.FetchSessionCacheSlots, Kafka's
// max.incremental.fetch.session.cache.slots, default 1000). When it is
// full, a new session takes the place of one that has not been used for
// sessionEvictAfter, the least recently used first; failing that, of the
// smallest session that has existed for sessionEvictAfter, when the new
// one has more partitions; failing that, the full fetch is answered
// without a session (session id 0), as Kafka does. Sessions live in memory
// only: after a restart clients get FETCH_SESSION_ID_NOT_FOUND and start
// over.
//
// The cache is deterministic: time comes in as arguments.

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionEvictAfter is Kafka's min.incremental.fetch.session.eviction.ms:
// how long a session is safe from eviction after its last use, and how
// long it must exist before a bigger session may evict it.
const sessionEvictAfter = 120 * time.Second

// fetchKey names a partition in a session: by topic name before v13, by
// topic id from v13 (a session uses one or the other throughout).
type fetchKey struct {
	topic string
	id    [16]byte
	part  int32
}

// fetchTarget is one partition a fetch reads, with what the client asked.
type fetchTarget struct {
	fetchKey
	offset   int64
	maxBytes int32
}

// sessionPartition is a partition of a session: the client's last request
// for it and the offsets the last answer told it (-1 before any).
type sessionPartition struct {
	fetchTarget
	hw, lso, logStart int64
}

type fetchSession struct {
	id      int32
	epoch   int32 // the epoch the next request must carry
	usesIDs bool
	parts   []*sessionPartition // in fetch order
	index   map[fetchKey]*sessionPartition
	created time.Time
	used    time.Time
}

// sessionCache holds the fetch sessions of one server.
type sessionCache struct {
	mu       sync.Mutex
	slots    int
	sessions map[int32]*fetchSession
}

func newSessionCache(slots int) *sessionCache {
	return &sessionCache{slots: slots, sessions: make(map[int32]*fetchSession)}
}

// fetchPlan is what one Fetch request reads: the targets in order and,
// for a request in a session, the session.
type fetchPlan struct {
	targets []fetchTarget
	// session is the session this request opens or continues, nil for a
	// sessionless fetch.
	session *fetchSession
	// incremental: the answer leaves out partitions with nothing new.
	incremental bool
}

// begin decides what req reads and updates the session it names. A
// non-zero error code is the request's top-level error.
func (sc *sessionCache) begin(req *kmsg.FetchRequest, now time.Time) (fetchPlan, int16) {
	usesIDs := req.Version >= 13
	if req.Version < 7 || req.SessionEpoch == -1 || req.SessionEpoch == 0 {
		plan := fetchPlan{targets: requestTargets(req, usesIDs)}
		if req.Version < 7 {
			return plan, 0
		}
		sc.mu.Lock()
		defer sc.mu.Unlock()
		if req.SessionID != 0 {
			delete(sc.sessions, req.SessionID)
		}
		if req.SessionEpoch == 0 {
			plan.session = sc.createLocked(plan.targets, usesIDs, now)
		}
		return plan, 0
	}

	sc.mu.Lock()
	defer sc.mu.Unlock()
	s, ok := sc.sessions[req.SessionID]
	switch {
	case !ok:
		return fetchPlan{}, kerr.FetchSessionIDNotFound.Code
	case s.epoch != req.SessionEpoch:
		return fetchPlan{}, kerr.InvalidFetchSessionEpoch.Code
	case s.usesIDs != usesIDs:
		return fetchPlan{}, kerr.FetchSessionTopicIDError.Code
	}
	for _, t := range requestTargets(req, usesIDs) {
		if sp, ok := s.index[t.fetchKey]; ok {
			sp.fetchTarget = t
			continue
		}
		sp := &sessionPartition{fetchTarget: t, hw: -1, lso: -1, logStart: -1}
		s.index[t.fetchKey] = sp
		s.parts = append(s.parts, sp)
	}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			k := fetchKey{part: p}
			if usesIDs {
				k.id = ft.TopicID
			} else {
				k.topic = ft.Topic
			}
			if _, ok := s.index[k]; ok {
				delete(s.index, k)
				s.parts = removePart(s.parts, k)
			}
		}
	}
	s.epoch = nextEpoch(s.epoch)
	s.used = now
	plan := fetchPlan{session: s, incremental: true, targets: make([]fetchTarget, len(s.parts))}
	for i, sp := range s.parts {
		plan.targets[i] = sp.fetchTarget
	}
	return plan, 0
}

// finish records what the answer to plan tells the client and returns
// the partitions to send: all of them for a full fetch, and for an
// incremental one those with records, an error or changed offsets.
// Partitions that returned records move to the end of the session so that
// the next fetch serves the others first, as Kafka does.
func (sc *sessionCache) finish(plan fetchPlan, results []fetchResult) []fetchResult {
	if plan.session == nil {
		return results
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	s := plan.session
	send := results[:0:0]
	var moved []*sessionPartition
	for _, r := range results {
		sp := s.index[r.key]
		if sp == nil { // forgotten meanwhile by a newer request
			releaseResults([]fetchResult{r})
			continue
		}
		p := &r.sp
		changed := p.HighWatermark != sp.hw || p.LastStableOffset != sp.lso || p.LogStartOffset != sp.logStart
		sp.hw, sp.lso, sp.logStart = p.HighWatermark, p.LastStableOffset, p.LogStartOffset
		if !plan.incremental || changed || p.ErrorCode != 0 || r.size() > 0 {
			send = append(send, r)
		}
		if plan.incremental && r.size() > 0 {
			moved = append(moved, sp)
		}
	}
	for _, sp := range moved {
		s.parts = append(removePart(s.parts, sp.fetchKey), sp)
	}
	return send
}

// createLocked caches a new session for targets, evicting another if the
// cache is full and one may go; nil when none may.
func (sc *sessionCache) createLocked(targets []fetchTarget, usesIDs bool, now time.Time) *fetchSession {
	if sc.slots <= 0 {
		return nil
	}
	if len(sc.sessions) >= sc.slots && !sc.evictLocked(len(targets), now) {
		return nil
	}
	s := &fetchSession{epoch: 1, usesIDs: usesIDs, index: make(map[fetchKey]*sessionPartition, len(targets)), created: now, used: now}
	for _, t := range targets {
		if _, dup := s.index[t.fetchKey]; dup {
			continue
		}
		sp := &sessionPartition{fetchTarget: t, hw: -1, lso: -1, logStart: -1}
		s.index[t.fetchKey] = sp
		s.parts = append(s.parts, sp)
	}
	for {
		s.id = rand.Int32N(math.MaxInt32) + 1
		if _, taken := sc.sessions[s.id]; !taken {
			break
		}
	}
	sc.sessions[s.id] = s
	return s
}

// evictLocked frees a slot for a new session of size partitions.
func (sc *sessionCache) evictLocked(size int, now time.Time) bool {
	var stale, small *fetchSession
	for _, s := range sc.sessions {
		if now.Sub(s.used) >= sessionEvictAfter && (stale == nil || s.used.Before(stale.used)) {
			stale = s
		}
		if now.Sub(s.created) >= sessionEvictAfter && len(s.parts) < size &&
			(small == nil || len(s.parts) < len(small.parts) || (len(s.parts) == len(small.parts) && s.used.Before(small.used))) {
			small = s
		}
	}
	victim := stale
	if victim == nil {
		victim = small
	}
	if victim == nil {
		return false
	}
	delete(sc.sessions, victim.id)
	return true
}

// len is the number of cached sessions.
func (sc *sessionCache) len() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.sessions)
}

// requestTargets lists the partitions req names, in its order.
func requestTargets(req *kmsg.FetchRequest, usesIDs bool) []fetchTarget {
	var ts []fetchTarget
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			t := fetchTarget{fetchKey: fetchKey{part: rp.Partition}, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes}
			if usesIDs {
				t.id = rt.TopicID
			} else {
				t.topic = rt.Topic
			}
			ts = append(ts, t)
		}
	}
	return ts
}

func removePart(parts []*sessionPartition, k fetchKey) []*sessionPartition {
	for i, sp := range parts {
		if sp.fetchKey == k {
			return append(parts[:i:i], parts[i+1:]...)
		}
	}
	return parts
}

// nextEpoch follows Kafka: epochs count up from 1 and wrap to 1.
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}
