package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionRequest is a Fetch v12 naming partitions 0..n-1 of topic.
func sessionRequest(topic string, n int, id, epoch int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.SessionID, req.SessionEpoch = id, epoch
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for i := range n {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = int32(i)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// The cache evicts as Kafka's does (KIP-227): when full, a new session
// takes the slot of the least recently used session unused for the
// eviction time; failing that, of the smallest session that has existed
// for the eviction time, if the new one is bigger; failing that it gets
// no session.
func TestSessionCacheEviction(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	open := func(sc *sessionCache, topic string, n int, now time.Time) *fetchSession {
		t.Helper()
		plan, code := sc.begin(sessionRequest(topic, n, 0, 0), now)
		if code != 0 {
			t.Fatalf("full fetch: %v", kerr.ErrorForCode(code))
		}
		return plan.session
	}
	use := func(sc *sessionCache, s *fetchSession, now time.Time) {
		t.Helper()
		if _, code := sc.begin(sessionRequest("", 0, s.id, s.epoch), now); code != 0 {
			t.Fatalf("incremental fetch in session %d: %v", s.id, kerr.ErrorForCode(code))
		}
	}
	alive := func(sc *sessionCache, s *fetchSession) bool {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		return sc.sessions[s.id] == s
	}

	t.Run("no room, nothing evictable", func(t *testing.T) {
		sc := newSessionCache(2)
		a, b := open(sc, "a", 1, t0), open(sc, "b", 1, t0)
		if c := open(sc, "c", 5, t0.Add(time.Second)); c != nil {
			t.Fatalf("a third session in a full cache of young sessions: %d", c.id)
		}
		if !alive(sc, a) || !alive(sc, b) {
			t.Fatal("a young session was evicted")
		}
	})
	t.Run("stale, least recently used first", func(t *testing.T) {
		sc := newSessionCache(2)
		a, b := open(sc, "a", 3, t0), open(sc, "b", 3, t0)
		use(sc, a, t0.Add(10*time.Second))
		c := open(sc, "c", 1, t0.Add(sessionEvictAfter+5*time.Second))
		if c == nil || alive(sc, b) || !alive(sc, a) {
			t.Fatalf("want b (least recently used, stale) evicted for c; a alive %v b alive %v c %v", alive(sc, a), alive(sc, b), c != nil)
		}
	})
	t.Run("smaller old session gives way to a bigger one", func(t *testing.T) {
		sc := newSessionCache(2)
		small, big := open(sc, "small", 1, t0), open(sc, "big", 4, t0)
		later := t0.Add(sessionEvictAfter + time.Second)
		use(sc, small, later)
		use(sc, big, later)
		if c := open(sc, "equal", 1, later); c != nil {
			t.Fatal("a session no bigger than the smallest evicted it")
		}
		if c := open(sc, "bigger", 2, later); c == nil || alive(sc, small) || !alive(sc, big) {
			t.Fatal("want the 1-partition session evicted for the 2-partition one")
		}
	})
	t.Run("no slots, no sessions", func(t *testing.T) {
		sc := newSessionCache(-1)
		if s := open(sc, "a", 1, t0); s != nil {
			t.Fatal("a session in a cache without slots")
		}
	})
}

// The epoch and session id decide, as in Kafka.
func TestSessionEpochs(t *testing.T) {
	sc := newSessionCache(10)
	now := time.Unix(1_000_000, 0)
	plan, _ := sc.begin(sessionRequest("t", 2, 0, 0), now)
	s := plan.session
	if s == nil || s.id <= 0 || s.epoch != 1 || len(plan.targets) != 2 {
		t.Fatalf("epoch 0 opened %+v", plan)
	}
	for _, tc := range []struct {
		id, epoch int32
		want      *kerr.Error
	}{
		{s.id + 1, 1, kerr.FetchSessionIDNotFound},
		{s.id, 2, kerr.InvalidFetchSessionEpoch},
		{s.id, 1, nil},
		{s.id, 1, kerr.InvalidFetchSessionEpoch}, // replayed
		{s.id, 2, nil},
	} {
		req := sessionRequest("", 0, tc.id, tc.epoch)
		_, code := sc.begin(req, now)
		if got := kerr.TypedErrorForCode(code); got != tc.want {
			t.Errorf("session %d epoch %d: %v, want %v", tc.id, tc.epoch, got, tc.want)
		}
	}
	// A v13 request in a session made by name.
	req := sessionRequest("", 0, s.id, 3)
	req.Version = 13
	if _, code := sc.begin(req, now); code != kerr.FetchSessionTopicIDError.Code {
		t.Errorf("v13 in a by-name session: %v", kerr.ErrorForCode(code))
	}
	// Epoch -1 closes the session.
	sc.begin(sessionRequest("t", 1, s.id, -1), now)
	if _, code := sc.begin(sessionRequest("", 0, s.id, 3), now); code != kerr.FetchSessionIDNotFound.Code {
		t.Errorf("after closing: %v", kerr.ErrorForCode(code))
	}
	if sc.len() != 0 {
		t.Errorf("%d sessions left", sc.len())
	}
}
