package auth

import (
	"fmt"
	"testing"
	"time"
)

func TestFailureLimiter(t *testing.T) {
	l := &FailureLimiter{Burst: 3, Refill: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	a, b := tcp("192.0.2.1"), tcp("192.0.2.2")
	aOtherPort := *a
	aOtherPort.Port = 1
	for i := range 3 {
		if !l.Allow(a, t0) {
			t.Fatalf("failure %d refused before the burst is spent", i)
		}
		l.Failed(a, t0)
	}
	if l.Allow(&aOtherPort, t0) {
		t.Error("allowed after the burst (another port, same address)")
	}
	if !l.Allow(b, t0) {
		t.Error("one address's failures limit another")
	}
	if !l.Allow(tcp("::ffff:192.0.2.2"), t0) {
		t.Error("mapped form of the other address limited")
	}
	if l.Allow(a, t0.Add(9*time.Second)) {
		t.Error("allowed before a refill")
	}
	if !l.Allow(a, t0.Add(10*time.Second)) {
		t.Error("refused after a refill")
	}
	l.Failed(a, t0.Add(10*time.Second))
	if l.Allow(a, t0.Add(11*time.Second)) {
		t.Error("the refilled try was spent, yet allowed again")
	}
	if !l.Allow(a, t0.Add(time.Hour)) {
		t.Error("refused long after")
	}
	var zero *FailureLimiter
	zero.Failed(a, t0)
	if !zero.Allow(a, t0) || !(&FailureLimiter{}).Allow(a, t0) {
		t.Error("a nil or zero limiter limits")
	}
}

func TestFailureLimiterBounded(t *testing.T) {
	l := &FailureLimiter{Burst: 2, Refill: time.Second, MaxAddrs: 100}
	t0 := time.Unix(0, 0)
	for i := range 1000 {
		l.Failed(tcp(fmt.Sprintf("10.0.%d.%d", i/256, i%256)), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := l.Tracked(); n > 100 {
		t.Errorf("tracks %d addresses, bound 100", n)
	}
	// The newest address is still limited after a second failure.
	last := tcp("10.0.3.231")
	l.Failed(last, t0.Add(time.Second))
	if l.Allow(last, t0.Add(time.Second)) {
		t.Error("the newest address lost its record")
	}
}
