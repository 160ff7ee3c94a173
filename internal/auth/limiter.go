package auth

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// FailureLimiter slows down password guessing: each source address has a
// bucket of Burst failed logins, refilled by one every Refill. While an
// address's bucket is empty its logins are refused without looking at
// the password; other addresses are not affected, and a successful login
// costs nothing. Time comes from the caller, so the limiter is
// deterministic. Safe for concurrent use. The zero value never limits.
type FailureLimiter struct {
	// Burst is how many failures an address may have in a row before it
	// is refused; 0 disables the limiter.
	Burst int
	// Refill is how long the bucket takes to win back one failure.
	Refill time.Duration
	// MaxAddrs bounds the addresses tracked (default 10000): past it,
	// the addresses whose buckets are full again are forgotten first and,
	// if that is not enough, the oldest failure is.
	MaxAddrs int

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// DefaultFailureLimiter is Sluice's setting: ten failures in a row, then
// one try every six seconds (ten a minute) from that address.
func DefaultFailureLimiter() *FailureLimiter {
	return &FailureLimiter{Burst: 10, Refill: 6 * time.Second}
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

func (l *FailureLimiter) refilled(b *bucket, now time.Time) float64 {
	t := b.tokens
	if l.Refill > 0 && now.After(b.at) {
		t += float64(now.Sub(b.at)) / float64(l.Refill)
	}
	return min(t, float64(l.Burst))
}

// Allow reports whether a login from addr may be tried now.
func (l *FailureLimiter) Allow(addr net.Addr, now time.Time) bool {
	if l == nil || l.Burst <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[sourceAddr(addr)]
	return !ok || l.refilled(b, now) >= 1
}

// Failed records a failed login from addr.
func (l *FailureLimiter) Failed(addr net.Addr, now time.Time) {
	if l == nil || l.Burst <= 0 {
		return
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
	b.tokens = max(l.refilled(b, now)-1, 0)
	b.at = now
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
