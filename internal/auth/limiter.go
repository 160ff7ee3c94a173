package auth

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// FailureLimiter slows down password guessing without locking anyone
// out. Each source address has a bucket of Burst failed logins, refilled
// by one every Refill. A failure with tokens left is answered at once;
// past them, each failure is answered only after a delay that grows by
// Refill with every further failure (the k-th failure past the burst
// waits k×Refill, up to MaxDelay), so guesses from one address, however
// many connections they use, come at about one per Refill. A correct
// password is never delayed or refused, so a broken client retrying a
// wrong password does not keep a good one on the same host out, and one
// address's failures never affect another's. (Kafka's own answer is a
// fixed delay, connection.failed.authentication.delay.ms.) Time comes
// from the caller, so the limiter is deterministic. Safe for concurrent
// use. The zero value and nil never delay.
type FailureLimiter struct {
	// Burst is how many failures an address may have in a row before
	// they are delayed; 0 disables the limiter.
	Burst int
	// Refill is how long the bucket takes to win back one failure, and
	// the step by which delays grow.
	Refill time.Duration
	// MaxDelay caps one delay (default 30s).
	MaxDelay time.Duration
	// MaxAddrs bounds the addresses tracked (default 10000): past it,
	// the addresses whose buckets are full again are forgotten first and,
	// if that is not enough, the one whose last failure is oldest.
	MaxAddrs int

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64 // negative: failures past the burst, not yet refilled
	at     time.Time
}

// DefaultFailureLimiter is Sluice's setting: ten failures in a row from
// one address, then about one guess a second.
func DefaultFailureLimiter() *FailureLimiter {
	return &FailureLimiter{Burst: 10, Refill: time.Second}
}

// sourceAddr is the address a limit applies to: the IP of addr, without
// the port, IPv4-mapped forms unmapped.
func sourceAddr(addr net.Addr) netip.Addr {
	if t, ok := addr.(*net.TCPAddr); ok && t != nil {
		if a, ok := netip.AddrFromSlice(t.IP); ok {
			return a.Unmap()
		}
	}
	if addr == nil {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func (l *FailureLimiter) maxDelay() time.Duration {
	if l.MaxDelay > 0 {
		return l.MaxDelay
	}
	return 30 * time.Second
}

func (l *FailureLimiter) refilled(b *bucket, now time.Time) float64 {
	t := b.tokens
	if l.Refill > 0 && now.After(b.at) {
		t += float64(now.Sub(b.at)) / float64(l.Refill)
	}
	return min(t, float64(l.Burst))
}

// Failed records a failed login from addr at now and returns how long to
// wait before answering it (0 within the burst).
func (l *FailureLimiter) Failed(addr net.Addr, now time.Time) time.Duration {
	if l == nil || l.Burst <= 0 || l.Refill <= 0 {
		return 0
	}
	a := sourceAddr(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[netip.Addr]*bucket{}
	}
	b, ok := l.buckets[a]
	if !ok {
		l.evictLocked(now)
		b = &bucket{tokens: float64(l.Burst), at: now}
		l.buckets[a] = b
	}
	floor := -float64(l.maxDelay()) / float64(l.Refill)
	b.tokens = max(l.refilled(b, now)-1, floor)
	b.at = now
	if b.tokens >= 0 {
		return 0
	}
	return min(time.Duration(-b.tokens*float64(l.Refill)), l.maxDelay())
}

// evictLocked makes room for one more address.
func (l *FailureLimiter) evictLocked(now time.Time) {
	maxAddrs := l.MaxAddrs
	if maxAddrs <= 0 {
		maxAddrs = 10000
	}
	if len(l.buckets) < maxAddrs {
		return
	}
	var oldest netip.Addr
	var oldestAt time.Time
	for a, b := range l.buckets {
		if l.refilled(b, now) >= float64(l.Burst) {
			delete(l.buckets, a)
			continue
		}
		if oldestAt.IsZero() || b.at.Before(oldestAt) {
			oldest, oldestAt = a, b.at
		}
	}
	if len(l.buckets) >= maxAddrs {
		delete(l.buckets, oldest)
	}
}

// Tracked is how many addresses the limiter holds (for tests).
func (l *FailureLimiter) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
