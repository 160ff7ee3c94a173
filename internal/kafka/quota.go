package kafka

// Client quota enforcement (KIP-13, KIP-55, KIP-219).
//
// A Produce request's bytes count against producer_byte_rate, a Fetch
// answer's record bytes against consumer_byte_rate, of the quota that
// applies to the connection's (user, client id), found in Kafka's order
// of precedence:
//
//	user + client-id, user + default client-id, user,
//	default user + client-id, default user + default client-id,
//	default user, client-id, default client-id
//
// The unauthenticated principal is Kafka's ANONYMOUS. The bytes are
// measured per (user, client id) of the matched quota's entity: a quota
// set for a user alone is shared by all its clients, one for a client id
// alone by all users of it, and a default entity gives each user or
// client id a budget of its own, as Kafka's sensors do.
//
// Measuring is a budget that refills at the quota's rate and holds at
// most one second of it: bytes take from it, and a request that leaves it
// negative is answered at once with throttle_time_ms, the time the
// budget needs to come back to zero (at most maxThrottle); then the
// connection is muted, the broker reading nothing more from it for that
// time (KIP-219). Clients of KIP-219 also wait before sending. Over any
// stretch the bytes accepted are the rate times the stretch plus one
// second's worth.

import (
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	quotaProduce = "producer_byte_rate"
	quotaFetch   = "consumer_byte_rate"
)

// maxThrottle bounds one throttle (Kafka bounds it by its quota window).
const maxThrottle = 10 * time.Second

// quotaReload is how often the stored quotas are read again; a change
// through AlterClientQuotas takes effect at once.
const quotaReload = time.Second

// anonymousUser is the user of an unauthenticated connection in quota
// entities, as in Kafka.
const anonymousUser = "ANONYMOUS"

type quotaManager struct {
	load func() []broker.ClientQuota // the stored quotas

	mu      sync.Mutex
	quotas  map[string]map[string]float64 // by entity key, then quota key
	loaded  time.Time
	buckets map[bucketKey]*quotaBucket
	swept   time.Time
}

// bucketKey is what bytes are measured against: a quota key and the
// (user, client id) of the matched entity's types ("" for a type it lacks).
type bucketKey struct{ quota, user, client string }

type quotaBucket struct {
	credit float64 // bytes; negative: owed
	last   time.Time
}

func newQuotaManager(load func() []broker.ClientQuota) *quotaManager {
	return &quotaManager{load: load, buckets: map[bucketKey]*quotaBucket{}}
}

// invalidate makes the next request read the stored quotas.
func (m *quotaManager) invalidate() {
	m.mu.Lock()
	m.loaded = time.Time{}
	m.mu.Unlock()
}

// entityKey is the lookup key of an entity: user part, then client part;
// "\x00d" for a default, "\x00-" for a type the entity lacks.
func entityKey(user, client string) string { return user + "\x01" + client }

const (
	partDefault = "\x00d"
	partNone    = "\x00-"
)

func (m *quotaManager) reloadLocked(now time.Time) {
	if now.Sub(m.loaded) < quotaReload && !m.loaded.IsZero() {
		return
	}
	m.loaded = now
	m.quotas = map[string]map[string]float64{}
	for _, q := range m.load() {
		user, client := partNone, partNone
		for _, p := range q.Entity {
			v := p.Name
			if p.Default {
				v = partDefault
			}
			if p.Type == broker.QuotaUser {
				user = v
			} else {
				client = v
			}
		}
		m.quotas[entityKey(user, client)] = q.Values
	}
}

// record counts n units against quota for (user, client) and returns the
// throttle due, 0 when within the quota or none applies.
func (m *quotaManager) record(quota, user, client string, n int, now time.Time) time.Duration {
	if user == "" {
		user = anonymousUser
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reloadLocked(now)
	if len(m.quotas) == 0 {
		return 0
	}
	rate, key, ok := m.resolveLocked(quota, user, client)
	if !ok {
		return 0
	}
	b := m.buckets[key]
	if b == nil {
		b = &quotaBucket{credit: rate, last: now}
		m.buckets[key] = b
	}
	b.credit = min(b.credit+now.Sub(b.last).Seconds()*rate, rate)
	b.last = now
	b.credit -= float64(n)
	m.sweepLocked(now)
	if b.credit >= 0 {
		return 0
	}
	return min(time.Duration(-b.credit/rate*float64(time.Second)), maxThrottle)
}

// resolveLocked finds the quota that applies, in Kafka's precedence.
func (m *quotaManager) resolveLocked(quota, user, client string) (float64, bucketKey, bool) {
	for _, l := range [...]struct{ u, c string }{
		{user, client}, {user, partDefault}, {user, partNone},
		{partDefault, client}, {partDefault, partDefault}, {partDefault, partNone},
		{partNone, client}, {partNone, partDefault},
	} {
		if rate, ok := m.quotas[entityKey(l.u, l.c)][quota]; ok && rate > 0 {
			key := bucketKey{quota: quota}
			if l.u != partNone {
				key.user = user
			}
			if l.c != partNone {
				key.client = client
			}
			return rate, key, true
		}
	}
	return 0, bucketKey{}, false
}

// sweepLocked forgets buckets full again for a minute, so that client ids
// that come and go do not accumulate.
func (m *quotaManager) sweepLocked(now time.Time) {
	if now.Sub(m.swept) < time.Minute {
		return
	}
	m.swept = now
	for k, b := range m.buckets {
		if now.Sub(b.last) > time.Minute {
			delete(m.buckets, k)
		}
	}
}

// fetchRecordBytes is the record bytes of a Fetch answer.
func fetchRecordBytes(resp kmsg.Response) int {
	var fr *kmsg.FetchResponse
	n := 0
	switch r := resp.(type) {
	case *fetchAnswer:
		fr = r.FetchResponse
		for _, reg := range r.regions {
			if reg != nil {
				n += reg.Len()
			}
		}
	case *kmsg.FetchResponse:
		fr = r
	default:
		return 0
	}
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			n += len(fr.Topics[i].Partitions[j].RecordBatches)
		}
	}
	return n
}

// throttle puts a throttle in a response (keeping a longer one already
// there) and mutes the connection for it.
func (c *conn) throttle(resp kmsg.Response, d time.Duration) {
	if d <= 0 {
		return
	}
	if tr, ok := resp.(kmsg.SetThrottleResponse); ok {
		ms := int32(d / time.Millisecond)
		if old, _ := resp.(kmsg.ThrottleResponse).Throttle(); old < ms {
			tr.SetThrottle(ms)
		}
	}
	c.mute(d)
}

// mute makes the read loop read nothing more for d.
func (c *conn) mute(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		old := c.mutedUntil.Load()
		if old >= until || c.mutedUntil.CompareAndSwap(old, until) {
			return
		}
	}
}

// waitMuted waits while the connection is muted; false if it closes.
func (c *conn) waitMuted() bool {
	for {
		d := time.Until(time.Unix(0, c.mutedUntil.Load()))
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return false
		}
	}
}
